"""features / truncate / freeze_stages on unmodified timm models (random init, nothing
downloaded): a ViT (token maps) and a ConvNeXt-V2 (stage outputs, not the LayerNorm that
opens the next downsampling block), against timm's own feature_info."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import theseus
from theseus_conformance.layouts import _close

timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=64).eval()


@pytest.fixture(scope="module")
def convnext():
    torch.manual_seed(0)
    return timm.create_model("convnextv2_atto").eval()


def _timm_info(model):
    return [(f["num_chs"], f["reduction"]) for f in model.feature_info]


def test_vit_token_stages(vit):
    x = torch.randn(2, 3, 64, 64)
    feat = theseus.features(vit, out_indices=3, input_shape=(1, 3, 64, 64))
    full = theseus.features(vit, input_shape=(1, 3, 64, 64)).feature_info
    assert [(f["channels"], f["reduction"]) for f in full] == _timm_info(vit)
    assert feat.feature_info.names() == ["blocks[9]", "blocks[10]", "blocks[11]"]
    assert all(f["layout"] == "tokens" and f["prefix_tokens"] == 1 for f in feat.feature_info)
    tokens = {}
    h = vit.blocks[11].register_forward_hook(lambda m, i, o: tokens.setdefault("t", o))
    with torch.no_grad():
        final = vit(x)
        outs = feat(x)
    h.remove()
    assert final.shape == (2, 1000) and [tuple(o.shape) for o in outs] == [(2, 192, 4, 4)] * 3
    expected = tokens["t"][:, 1:].reshape(2, 4, 4, 192).permute(0, 3, 1, 2)
    assert _close(outs[-1].numpy(), expected.numpy())
    with torch.no_grad():    # the forward pools tokens after the blocks; truncate does not
        assert _close(theseus.truncate(vit, "blocks[11]")(x).numpy(), tokens["t"].numpy())


def test_vit_freeze_stages_takes_the_stem_and_tokens(vit):
    names = theseus.freeze_stages(vit, 2, input_shape=(1, 3, 64, 64))
    try:
        assert names == [n for n, _ in vit.named_parameters()
                         if n.startswith(("cls_token", "pos_embed", "patch_embed.", "blocks.0.", "blocks.1."))]
    finally:
        theseus.reset(vit)
    assert theseus.frozen(vit) == []


def test_convnext_stages_are_stage_outputs(convnext):
    feat = theseus.features(convnext, input_shape=(1, 3, 64, 64))
    assert feat.feature_info.names() == ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]
    assert [(f["channels"], f["reduction"]) for f in feat.feature_info] == _timm_info(convnext)
    x = torch.randn(1, 3, 64, 64)
    seen = []
    hooks = [convnext.stages[i].register_forward_hook(lambda m, i, o: seen.append(o)) for i in range(4)]
    with torch.no_grad():
        outs = feat(x)
    for h in hooks:
        h.remove()
    assert all(torch.equal(a, b) for a, b in zip(outs, seen))
    assert np.isfinite(outs[-1].numpy()).all()
