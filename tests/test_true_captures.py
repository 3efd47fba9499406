"""Captured values are the layers' outputs as produced, whatever in-place op follows:
torch ReLU(inplace=True) and ``+=``, Paddle ``relu_`` and ``add_``. MindSpore 2.10 on CPU
has no working in-place op (see docs/framework-traps.md), so it is checked with plain ops."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import theseus

FRAMEWORKS = [f for f in ("torch", "paddle", "mindspore") if importlib.util.find_spec(f)]
X = np.random.RandomState(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


def _torch():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.relu(self.bn1(self.conv(x)))
            z = self.bn2(self.conv2(y))
            z += y                       # in place on bn2's output
            return self.relu(z)

    return Net().eval(), lambda a: torch.from_numpy(a)


def _paddle():
    import paddle
    from paddle import nn

    class Net(nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2D(4)
            self.conv2 = nn.Conv2D(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2D(4)

        def forward(self, x):
            y = nn.functional.relu_(self.bn1(self.conv(x)))
            z = self.bn2(self.conv2(y))
            z.add_(y)
            return nn.functional.relu(z)

    net = Net()
    net.eval()
    return net, lambda a: paddle.to_tensor(a)


def _mindspore():
    from theseus_mindspore._runtime import mindspore as ms
    from mindspore import nn

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, pad_mode="pad", padding=1, has_bias=True)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(4, 4, 3, pad_mode="pad", padding=1, has_bias=True)
            self.bn2 = nn.BatchNorm2d(4)

        def construct(self, x):
            y = self.relu(self.bn1(self.conv(x)))
            z = self.bn2(self.conv2(y))
            z += y
            return self.relu(z)

    net = Net()
    net.set_train(False)
    return net, lambda a: ms.Tensor(a)


def _build(fw):
    net, tensor = {"torch": _torch, "paddle": _paddle, "mindspore": _mindspore}[fw]()
    rs = np.random.RandomState(1)
    w = {k: (np.abs(rs.standard_normal(v.shape)) + 0.5 if k.endswith("running_var")
             else rs.standard_normal(v.shape) * 0.5).astype(v.dtype) if v.dtype.kind == "f" else v
         for k, v in theseus.state(net).items()}
    theseus.load_state(net, w)
    return net, tensor


def _relu(fw):
    if fw == "torch":
        import torch

        return torch.relu
    if fw == "paddle":
        import paddle

        return paddle.nn.functional.relu
    from theseus_mindspore._runtime import mindspore as ms

    return ms.ops.relu


def _true_outputs(fw):
    """bn1/bn2 outputs computed layer by layer, copied to numpy at once."""
    net, tensor = _build(fw)
    b = theseus.backend_of(net)

    def forward():
        a = net.bn1(net.conv(tensor(X)))
        bn1 = b.to_numpy(a)
        return bn1, b.to_numpy(net.bn2(net.conv2(_relu(fw)(a))))

    if fw == "torch":
        import torch

        with torch.no_grad():
            bn1, bn2 = forward()
    else:
        bn1, bn2 = forward()
    return {"bn1": bn1, "bn2": bn2}


@pytest.fixture(params=FRAMEWORKS)
def fw(request):
    return request.param


def test_update_res_values_are_taken_before_in_place_ops(fw):
    truth = _true_outputs(fw)
    assert truth["bn1"].min() < 0 and truth["bn2"].min() < 0
    net, tensor = _build(fw)
    b = theseus.backend_of(net)
    theseus.update_res(net, ["bn1", "bn2"])
    for _ in range(3):                 # first forward (learning) and the ones after
        out = b.infer(net, tensor(X))
        got = {k: b.to_numpy(out[k]) for k in ("bn1", "bn2")}
        theseus.assert_agree(got, truth, name=f"{fw} update_res", rtol=1e-6)
        assert got["bn1"].min() < 0
    if fw in ("torch", "paddle"):      # only the modified captures are copied after the first forward
        assert net is not None
        from theseus._record import peek_record

        cap = peek_record(net).capture
        assert cap.truth.copy_keys == {"bn1", "bn2"}


def test_extract_and_features_values_are_true(fw):
    truth = _true_outputs(fw)
    net, tensor = _build(fw)
    b = theseus.backend_of(net)
    ex = theseus.extract(net, ["bn1", "bn2"], include_output=True)
    for _ in range(2):
        out = b.infer(ex, tensor(X))
        theseus.assert_agree({k: b.to_numpy(out[k]) for k in ("bn1", "bn2")}, truth, name="extract", rtol=1e-6)


def test_no_copy_where_nothing_is_modified(fw):
    net, tensor = _build(fw)
    b = theseus.backend_of(net)
    theseus.update_res(net, ["conv", "conv2"])        # followed by BN: never modified in place
    b.infer(net, tensor(X))
    from theseus._record import peek_record

    assert peek_record(net).capture.truth.copy_keys == set()
    out = b.infer(net, tensor(X))
    assert b.to_numpy(out["conv"]).shape == (2, 4, 8, 8)
