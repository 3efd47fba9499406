"""features / truncate / freeze_stages on unmodified timm models (random init, nothing
downloaded): a ViT (token maps) and a ConvNeXt-V2 (stage outputs, not the LayerNorm that
opens the next downsampling block), against timm's own feature_info."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import theseus
from _torch_stage_checks import assert_stage_outputs
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


#: Real models for each clause of the stage rule: (timm name, kwargs, probe size, stage names).
#: Channels and reductions must equal timm's own feature_info.
STAGE_RULE_MODELS = [
    # a stem of blocks /2 -> /4 before the /4 stage: its /2 block is internal (was a stage)
    ("fastvit_t8", {}, 64, ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]),
    # a deep stem of plain layers: stem.act1 (/2) is inside the stem (was a stage)
    ("repvit_m1", {}, 64, ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]),
    ("hgnet_tiny", {}, 64, ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]),
    # unpadded convs, 224 -> 111 -> 109 -> 54 -> 52 -> 25 -> 12 -> 5: no stage was found
    ("inception_v3", {}, 224, ["Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"]),
    # a whole-trunk Sequential: its children at each resolution (denseblock1, not the conv
    # inside transition1 before its pool)
    ("densenet121", {}, 64, ["features[1]", "features[3]", "features[5]", "features[7]", "features"]),
    # a Sequential subclass with its own forward (concatenating dense stage) is one block
    ("rdnet_tiny", {}, 64, ["dense_stages[0]", "dense_stages[1]", "dense_stages[5]", "dense_stages[6]"]),
    # ceil-mode 7 -> 4 token grid at 224: /64, not 224 / 4 = 56 (the last stage was missed)
    ("levit_128s", {}, 224, ["stages[0]", "stages[1]", "stages[2]"]),
    # isotropic: every block, not the class-attention blocks that add a class token
    ("xcit_nano_12_p16_224", {}, 224, [f"blocks[{i}]" for i in range(12)]),
    # the body inside a plain wrapper (encoder.blocks): one stage ("encoder") was found
    ("qwen3_vit_88m", {"depth": 2, "img_size": 64}, 64, ["encoder.blocks[0]", "encoder.blocks[1]"]),
    # isotropic: every block of the body container, also the last two that add a class token
    ("convit_tiny", {"img_size": 64}, 64, [f"blocks[{i}]" for i in range(12)]),
    # a 1x1 expansion conv of another class appended to the flat list of blocks (185 -> 1280)
    # is the head: the /32 stage is the last bottleneck (was features[16], 1280 channels)
    ("rexnet_100", {}, 64, ["features[0]", "features[2]", "features[4]", "features[10]", "features[15]"]),
    # a deep stem (conv1..conv3 at /2, then a pool): timm taps stem.conv3 at /2, theseus lists
    # no layer inside a stem (measured: opening stems loses more models than it gains)
    ("cspresnet50", {}, 64, ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]),
    # stages returning tuples: PiT (x, cls_tokens), MViT-v2 (x, feat_size): element 0 is the map
    # (at 224: its first grid, 27, is inexact; the nominal stride is the nearest integer, 8)
    ("pit_ti_224", {}, 224, ["transformers[0]", "transformers[1]", "transformers[2]"]),
    ("mvitv2_tiny", {"img_size": 64}, 64, ["stages[0]", "stages[1]", "stages[2]", "stages[3]"]),
]

#: timm's feature_info entries theseus does not list, by model (the stem tap above)
_PEER_ONLY = {"cspresnet50": 1}


@pytest.mark.parametrize("name,kwargs,size,names", STAGE_RULE_MODELS, ids=[m[0] for m in STAGE_RULE_MODELS])
def test_stage_rule_on_timm_models(name, kwargs, size, names):
    torch.manual_seed(0)
    model = timm.create_model(name, **kwargs).eval()
    feat = theseus.features(model, input_shape=(1, 3, size, size))
    assert feat.feature_info.names() == names
    assert [(f["channels"], f["reduction"]) for f in feat.feature_info] == _timm_info(model)[_PEER_ONLY.get(name, 0):]
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    assert_stage_outputs(model, feat, x)   # exactly the stage's output (or its map element)
    assert all(f["element"] == 0 for f in feat.feature_info if "element" in f)   # PiT, MViT: (x, ...)
