"""Paddle-specific traps of the theseus backend; each test fails without the fix it covers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
nn = paddle.nn

import theseus  # noqa: E402
import theseus_paddle  # noqa: E402
from theseus_paddle._adapter import PaddleBackend  # noqa: E402

B = PaddleBackend()
PATTERNS = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]


def _linear(w: np.ndarray, b: np.ndarray) -> nn.Linear:
    """A Linear with Paddle-layout weight ``w`` ([in, out]) and bias ``b``."""
    layer = nn.Linear(*w.shape)
    layer.weight.set_value(w.astype("float32"))
    layer.bias.set_value(b.astype("float32"))
    return layer


class _Holder(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(("a", _linear(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5]))),
                                  ("b", _linear(np.array([[2.0, 0.0], [0.0, 3.0]]), np.array([1.0, 1.0]))))

    def forward(self, x):
        return self.body(x)


X2 = np.array([[1.0, -1.0]], dtype="float32")


def _run(model) -> np.ndarray:
    return model(paddle.to_tensor(X2)).numpy()


# -- (a) named Sequential: replace by name, keep count/names/order, run the new layer ----
def test_named_sequential_upgrade_keeps_names_and_runs_new_layer():
    m = _Holder()
    np.testing.assert_allclose(_run(m), [[-2.0, -6.5]])  # a: [-1.5, -2.5] -> b: [-3, -7.5] + 1
    new = _linear(np.array([[10.0, 0.0], [0.0, 100.0]]), np.array([0.0, 0.0]))
    out = theseus.upgrade_sublayer(m, "body[1]", lambda layer, pat: new)
    assert list(out) == ["body[1]"] and out["body[1]"] is new
    assert [n for n, _ in m.body.named_children()] == ["a", "b"]
    assert m.body.b is new and len(m.body) == 2
    np.testing.assert_allclose(_run(m), [[-15.0, -250.0]])
    theseus.reset(m)
    np.testing.assert_allclose(_run(m), [[-2.0, -6.5]])
    assert [n for n, _ in m.body.named_children()] == ["a", "b"]


def test_named_sequential_stop_after_keeps_names():
    m = _Holder()
    assert theseus.stop_after(m, "body[0]") == ["body[1]"]
    assert [n for n, _ in m.body.named_children()] == ["a", "b"]
    assert isinstance(m.body.b, nn.Identity) and len(m.body) == 2
    np.testing.assert_allclose(_run(m), [[-1.5, -2.5]])  # layer a only


def test_replace_child_keeps_position_everywhere():
    seq = nn.Sequential(("x", nn.ReLU()), ("y", nn.ReLU()), ("z", nn.ReLU()))
    lst = nn.LayerList([nn.ReLU(), nn.ReLU()])
    dct = nn.LayerDict({"p": nn.ReLU(), "q": nn.ReLU()})
    for parent, name in ((seq, "y"), (lst, "0"), (dct, "q")):
        before = [n for n, _ in B.children(parent)]
        new = nn.Tanh()
        B.replace_child(parent, name, new)
        assert [n for n, _ in B.children(parent)] == before
        assert dict(B.children(parent))[name] is new
    assert lst[0] is not None and isinstance(lst[0], nn.Tanh) and isinstance(dct["q"], nn.Tanh)


# -- (b) the seed's three calls on MobileNetV1 ---------------------------------------------
@pytest.fixture(scope="module")
def x224():
    return paddle.to_tensor(np.random.RandomState(0).rand(2, 3, 224, 224).astype("float32"))


def _rep_func(layer, pattern):
    return nn.Conv2D(in_channels=layer._in_channels, out_channels=layer._out_channels, kernel_size=5, padding=2)


def test_seed_stop_after(x224):
    net = theseus_paddle.MobileNetV1()
    net.eval()
    assert net.stop_after(stop_layer_name="blocks[0].depthwise_conv.conv") is True
    assert tuple(net(x224).shape) == (2, 32, 112, 112)
    assert len(net.blocks) == 13 and all(isinstance(net.blocks[i], nn.Identity) for i in range(1, 13))
    assert isinstance(net.fc, nn.Identity) and isinstance(net.blocks[0].depthwise_conv.bn, nn.Identity)


def test_seed_update_res_upgrade_and_reset(x224):
    net = theseus_paddle.MobileNetV1()
    net.eval()
    base = net(x224).numpy()
    assert base.shape == (2, 1000)
    res = net.update_res(return_patterns=PATTERNS)
    assert list(res) == PATTERNS and res["blocks[2]"] is net.blocks[2]
    out = net(x224)
    assert list(out) == ["output"] + PATTERNS
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "output": (2, 1000), "blocks[0]": (2, 64, 112, 112), "blocks[2]": (2, 128, 56, 56),
        "blocks[4]": (2, 256, 28, 28), "blocks[10]": (2, 512, 14, 14)}
    np.testing.assert_array_equal(out["output"].numpy(), base)
    up = net.upgrade_sublayer(layer_name_pattern=["blocks[11].depthwise_conv.conv", "blocks[12].depthwise_conv.conv"],
                              handle_func=_rep_func)
    assert list(up) == ["blocks[11].depthwise_conv.conv", "blocks[12].depthwise_conv.conv"]
    assert [tuple(c._kernel_size) for c in up.values()] == [(5, 5), (5, 5)]
    assert [c._in_channels for c in up.values()] == [512, 1024]
    assert net.blocks[12].depthwise_conv.conv is up["blocks[12].depthwise_conv.conv"]
    out = net(x224)
    assert tuple(out["output"].shape) == (2, 1000)
    assert not np.array_equal(out["output"].numpy(), base)
    theseus.reset(net)
    np.testing.assert_array_equal(net(x224).numpy(), base)


def test_seed_constructor_return_patterns(x224):
    net = theseus_paddle.MobileNetV1(return_patterns=PATTERNS)
    net.eval()
    out = net(x224)
    assert list(out) == ["output"] + PATTERNS and tuple(out["blocks[10]"].shape) == (2, 512, 14, 14)


def test_mobilenet_is_deterministic():
    a, b = theseus_paddle.MobileNetV1(seed=3), theseus_paddle.MobileNetV1(seed=3)
    np.testing.assert_array_equal(a.fc.weight.numpy(), b.fc.weight.numpy())
    np.testing.assert_array_equal(a.blocks[5].pointwise_conv.conv.weight.numpy(),
                                  b.blocks[5].pointwise_conv.conv.weight.numpy())


# -- (c) BN statistics are not parameters; freezing flags round-trip -----------------------
@pytest.mark.parametrize("bn_cls", [nn.BatchNorm2D, nn.BatchNorm1D, nn.BatchNorm])
def test_bn_stats_not_parameters(bn_cls):
    layer = theseus_paddle.ConvBNLayer(3, 3, 4, 1, 1)
    layer.bn = bn_cls(4)
    assert B.is_norm(layer.bn) and not B.is_norm(layer.conv)
    assert [n for n, _ in B.parameters(layer)] == ["conv.weight", "bn.weight", "bn.bias"]
    assert [n for n, _ in B.parameters(layer.bn, recurse=False)] == ["weight", "bias"]
    assert [n for n, _ in B.parameters(layer, recurse=False)] == []


def test_freeze_round_trip():
    layer = theseus_paddle.ConvBNLayer(3, 3, 4, 1, 1)
    params = [p for _, p in B.parameters(layer)]
    assert all(B.is_trainable(p) for p in params)
    for p in params:
        B.set_trainable(p, False)
    assert [p.stop_gradient for p in params] == [True] * 3 and not any(B.is_trainable(p) for p in params)
    assert [n for n, _ in B.parameters(layer)] == ["conv.weight", "bn.weight", "bn.bias"]  # frozen still listed
    B.set_trainable(params[0], True)
    assert [B.is_trainable(p) for p in params] == [True, False, False]
    assert layer.bn._mean.stop_gradient is True


def test_training_flag_not_recursive():
    layer = theseus_paddle.ConvBNLayer(3, 3, 4, 1, 1)
    B.set_training(layer, False)
    assert not layer.training and not layer.bn.training
    B.set_training(layer, True, recurse=False)
    assert layer.training and B.is_training(layer) and not layer.bn.training and not layer.conv.training
    B.set_training(layer, True)
    assert layer.bn.training and layer.conv.training


# -- (d) neutral weights: Linear transposed, BN stats renamed, copies, dtype kept ----------
def test_export_import_linear_transpose():
    lin = nn.Linear(3, 2)
    raw = np.arange(6, dtype="float32").reshape(3, 2)
    lin.weight.set_value(raw)
    exp = B.export_local(lin)
    assert sorted(exp) == ["bias", "weight"] and exp["weight"].shape == (2, 3)
    np.testing.assert_array_equal(exp["weight"], raw.T)
    exp["weight"][0, 0] = 99.0  # a copy
    assert lin.weight.numpy()[0, 0] == 0.0
    new = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # float64, neutral [out, in]
    B.import_local(lin, {"weight": new, "bias": np.array([7.0, 8.0])})
    assert lin.weight.dtype == paddle.float32
    np.testing.assert_array_equal(lin.weight.numpy(), new.T.astype("float32"))
    out = lin(paddle.to_tensor(np.array([[1.0, 1.0, 1.0]], dtype="float32"))).numpy()
    np.testing.assert_allclose(out, [[6.0 + 7.0, 15.0 + 8.0]])


def test_export_import_bn_and_conv():
    bn = nn.BatchNorm2D(3)
    conv = nn.Conv2D(4, 6, 3, groups=2, bias_attr=False)
    assert sorted(B.export_local(bn)) == ["bias", "running_mean", "running_var", "weight"]
    assert list(B.export_local(conv)) == ["weight"] and B.export_local(conv)["weight"].shape == (6, 2, 3, 3)
    B.import_local(bn, {"running_mean": np.array([1.0, 2.0, 3.0]), "running_var": np.array([4.0, 5.0, 6.0])})
    np.testing.assert_array_equal(bn._mean.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(bn._variance.numpy(), [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(B.export_local(bn)["running_var"], [4.0, 5.0, 6.0])


# -- hooks, tensors, wrap, laziness -----------------------------------------------------------
def test_hooks_replace_output_and_pre_hook_return_ignored():
    lin = _linear(np.eye(2), np.zeros(2))
    seen = []
    h1 = B.add_forward_pre_hook(lin, lambda m, args: seen.append(len(args)) or paddle.zeros([1, 2]))
    h2 = B.add_forward_hook(lin, lambda m, args, out: {"o": out})
    out = lin(paddle.to_tensor(X2))
    assert seen == [1] and list(out) == ["o"]
    np.testing.assert_array_equal(out["o"].numpy(), X2)
    h1.remove(), h2.remove()
    assert isinstance(lin(paddle.to_tensor(X2)), paddle.Tensor)


def test_full_graph_to_static_refuses_hooks():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    B.check_hooks_usable(net)
    paddle.jit.to_static(net, full_graph=True)
    with pytest.raises(theseus.UnsupportedOperation) as err:
        theseus.update_res(net, ["[0]"])
    assert err.value.capability == "hooks"


def test_tensors_and_wrap():
    arr = np.arange(4, dtype="float64")
    t = B.from_numpy(arr)
    assert t.dtype == paddle.float64
    back = B.to_numpy(t)
    back[0] = 9
    assert B.to_numpy(t)[0] == 0
    lin = nn.Linear(2, 2)
    w = B.wrap(lin, lambda x: {"y": lin(x)}, "Extracted")
    assert type(w).__name__ == "Extracted" and w.model is lin
    assert list(w.state_dict()) == ["model.weight", "model.bias"]
    assert list(B.infer(w, paddle.to_tensor(X2))) == ["y"]


def test_import_does_not_load_paddle():
    code = "import theseus, theseus_paddle, sys; print('paddle' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    assert theseus.get_backend("paddle").name == "paddle"
    assert theseus.backend_of(nn.ReLU()).name == "paddle"


def test_importing_paddle_through_theseus_prints_no_ccache_warning():
    """Paddle warns "No ccache found" on import (about compiling C++ extensions, which
    theseus never does); through theseus_paddle the message is not printed."""
    import subprocess
    import sys

    code = "import theseus_paddle, paddle; from theseus_paddle import MobileNetV1; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert "ccache" not in proc.stderr
