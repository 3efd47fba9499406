"""Complete state on unmodified third-party models (random init, nothing downloaded): timm
ViT (cls_token, pos_embed) and ConvNeXt (layer-scale gamma), MindCV ConvNeXt-V2 (LayerNorm
gamma/beta, the tensors the old state dropped). Every tensor the framework lists is in
``theseus.state``; loading it into a fresh instance gives bitwise-equal outputs."""

from __future__ import annotations

import numpy as np
import pytest

import theseus
from theseus_conformance import peers

if not peers.available():
    pytest.skip("the peer models are not installed (README's test command installs them)",
                allow_module_level=True)

X = np.random.RandomState(0).standard_normal((1, 3, 64, 64)).astype(np.float32)


def _torch_case(name, **kw):
    import torch

    def make(seed):
        torch.manual_seed(seed)
        return peers.timm_model(name, **kw).eval()

    def run(net):
        with torch.no_grad():
            return net(torch.from_numpy(X)).numpy()

    return make, run, lambda net: list(net.state_dict())


def _mindcv_case(name):
    def make(seed):
        from theseus_mindspore._runtime import mindspore as ms

        ms.set_seed(seed)
        net = peers.mindcv_model(name)
        net.set_train(False)
        return net

    def run(net):
        from theseus_mindspore._runtime import mindspore as ms

        return net(ms.Tensor(X)).asnumpy()

    return make, run, lambda net: [n for n, _ in net.parameters_and_names()]


CASES = {
    "timm-vit_tiny": lambda: _torch_case("vit_tiny_patch16_224", img_size=64),
    "timm-convnext_atto": lambda: _torch_case("convnext_atto"),
    "mindcv-convnextv2_atto": lambda: _mindcv_case("convnextv2_atto"),
}
MUST_HAVE = {
    "timm-vit_tiny": ["cls_token", "pos_embed", "blocks[0].norm1.weight", "blocks[0].attn.qkv.weight"],
    "timm-convnext_atto": ["stages[0].blocks[0].gamma", "stages[0].blocks[0].norm.weight"],
    "mindcv-convnextv2_atto": [],
}


@pytest.mark.parametrize("case", list(CASES))
def test_third_party_state_is_complete_and_round_trips_bitwise(case):
    make, run, natives = CASES[case]()
    a, b = make(1), make(2)
    sd = theseus.state(a)
    layout = theseus.state_layout(a)
    assert sorted(n for e in layout for n in e.native) == sorted(natives(a))
    assert len(sd) == len(natives(a))
    for key in MUST_HAVE[case]:
        assert key in sd, key
    if case.startswith("mindcv"):            # LayerNorm gamma/beta exported as weight/bias (GRN keeps its own)
        owner = {k: type(next(iter(theseus.resolve(a, k.rpartition(".")[0]).values()))).__name__ for k in sd}
        assert sorted({owner[k] for k in sd if k.endswith((".gamma", ".beta"))}) == ["GRN"]
        assert len([k for k in sd if k.endswith(".norm.weight") and owner[k] == "ConvNextLayerNorm"]) >= 10
        assert len(sd) == 140
    assert not np.array_equal(run(a), run(b))
    report = theseus.load_state(b, sd)
    assert report.ok and len(report.loaded) == len(sd)
    np.testing.assert_array_equal(run(b), run(a))
