"""The third-party peer models build offline, random init, all in one process.

Order matters and is part of the test: paddle (PaddleClas) is imported before MindSpore
(MindCV), which fails without the oneDNN preload the peers hook performs.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from theseus_conformance import peers

if not peers.available():
    pytest.skip("the peer models are not installed (README's test command installs them)",
                allow_module_level=True)

# parameters + persistent buffers of each model, counted the framework's own way
# (PaddleClas and MindCV list BatchNorm statistics as parameters; torch as buffers).
EXPECTED = {
    ("ppcls", "MobileNetV1"): (137, 4253864),
    ("ppcls", "ResNet50"): (267, 25610152),
    ("mindcv", "mobilenet_v1_100"): (137, 4253864),
    ("mindcv", "resnet50"): (267, 25610152),
    ("timm", "mobilenetv1_100"): (137, 4253864),
    ("timm", "resnet50"): (267, 25610152),
}


@pytest.fixture(scope="module")
def built():
    """Every peer model, built once with the network switched off."""
    def refuse(*args, **kwargs):
        raise AssertionError("a peer model tried to use the network")

    real = socket.socket.connect
    socket.socket.connect = refuse
    try:
        import paddle  # noqa: F401  (first: the hook must make mindcv work after it)

        models = {
            ("ppcls", "MobileNetV1"): peers.ppcls_model("MobileNetV1"),
            ("ppcls", "ResNet50"): peers.ppcls_model("ResNet50"),
            ("mindcv", "mobilenet_v1_100"): peers.mindcv_model("mobilenet_v1_100"),
            ("mindcv", "resnet50"): peers.mindcv_model("resnet50"),
            ("timm", "mobilenetv1_100"): peers.timm_model("mobilenetv1_100", act_layer="relu"),
            ("timm", "resnet50"): peers.timm_model("resnet50"),
        }
    finally:
        socket.socket.connect = real
    return models


def _count(kind, net):
    if kind == "mindcv":
        tensors = list(net.parameters_dict().values())
    elif kind == "ppcls":
        tensors = list(net.state_dict().values())
    else:
        tensors = [t for k, t in net.state_dict().items() if not k.endswith("num_batches_tracked")]
    return len(tensors), sum(int(np.prod(t.shape)) for t in tensors)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_peer_builds_with_random_init(built, key):
    assert _count(key[0], built[key]) == EXPECTED[key]


@pytest.mark.parametrize("kind,name", [("ppcls", "ResNet50"), ("mindcv", "resnet50"), ("timm", "resnet50")])
def test_peer_forward_gives_logits(built, kind, name):
    x = np.random.RandomState(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    net = built[(kind, name)]
    if kind == "timm":
        import torch

        with torch.no_grad():
            out = net(torch.from_numpy(x)).numpy()
    elif kind == "ppcls":
        import paddle

        out = net(paddle.to_tensor(x)).numpy()
    else:
        import mindspore

        out = net(mindspore.Tensor(x)).asnumpy()
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_ppcls_comes_from_inside_the_paddleclas_wheel(built):
    import sys

    assert "paddleclas" not in sys.modules  # its __init__ (OpenCV, inference tools) never ran
    assert "cv2" not in sys.modules
    assert "/paddleclas/ppcls/" in sys.modules["ppcls.arch.backbone.legendary_models.resnet"].__file__


def test_torchvision_imports_and_its_missing_c_ops_say_so(built):
    import torch
    import torchvision

    if torchvision.extension._has_ops():
        pytest.skip("this torchvision's C ops load beside this torch: nothing to work around")
    with pytest.raises(RuntimeError, match="Couldn't load custom C\\+\\+ ops"):
        torchvision.ops.nms(torch.zeros(2, 4), torch.zeros(2), 0.5)
