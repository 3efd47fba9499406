"""MindSpore traps the backend must get right; each test fails without the fix it covers.

Graph-mode and import-order checks run in subprocesses so that no context leaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections import OrderedDict

import numpy as np
import pytest

import theseus
from theseus_mindspore import MindSporeBackend, MobileNetV1
from theseus_mindspore._runtime import mindspore as ms
from theseus_mindspore._zoo import build

nn = ms.nn
B = MindSporeBackend()


def _run(code: str, timeout: int = 300) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line prefixed with RESULT.
    (A file, not ``-c``: MindSpore compiles graphs from source files only.)"""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "script.py")
        with open(script, "w") as fh:
            fh.write(textwrap.dedent(code))
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=timeout, cwd=tmp)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise AssertionError(f"no result (rc={proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}")


def _scaled(value: float) -> nn.Dense:
    d = nn.Dense(2, 2, has_bias=False)
    d.weight.set_data(ms.Tensor(np.eye(2, dtype=np.float32) * value))
    return d


def _names(net) -> list:
    return [p.name for p in net.get_parameters()]


# -- replacing children ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["seq", "named_seq"])
def test_sequentialcell_replacement_runs_the_new_layer(kind):
    cells = [_scaled(2.0), _scaled(3.0)]
    seq = nn.SequentialCell(cells if kind == "seq" else OrderedDict(zip(["a", "b"], cells)))
    name = B.children(seq)[1][0]
    B.replace_child(seq, name, _scaled(10.0))
    x = ms.Tensor(np.ones((1, 2), np.float32))
    assert seq(x).asnumpy().tolist() == [[20.0, 20.0]]       # setattr would leave 2*3 = 6
    assert [n for n, _ in B.children(seq)] == (["0", "1"] if kind == "seq" else ["a", "b"])


def test_celllist_celldict_and_plain_replacement_keep_name_and_position():
    spec = ["chain", [["lst", ["list", [["linear", 2, 2], ["linear", 2, 2]]]],
                      ["dct", ["dict", [["p", ["linear", 2, 2]], ["q", ["linear", 2, 2]]]]],
                      ["tail", ["linear", 2, 2]]]]
    net = build(spec)
    for parent, name in [(net.lst, "0"), (net.dct, "p"), (net, "tail")]:
        B.replace_child(parent, name, _scaled(1.0))
    B.replace_child(net.lst, "1", _scaled(2.0))
    B.replace_child(net.dct, "q", _scaled(3.0))
    B.after_surgery(net)
    x = ms.Tensor(np.ones((1, 2), np.float32))
    assert net(x).asnumpy().tolist() == [[6.0, 6.0]]
    assert [n for n, _ in B.children(net.dct)] == ["p", "q"]
    assert [n for n, _ in B.children(net)] == ["lst", "dct", "tail"]
    assert _names(net) == ["lst.0.weight", "lst.1.weight", "dct.p.weight", "dct.q.weight", "tail.weight"]


# -- parameter names ---------------------------------------------------------------------
def _dense_5x5(layer, pattern):
    return nn.Conv2d(layer.in_channels, layer.out_channels, 5, pad_mode="pad", padding=2)


def test_parameter_names_structural_after_upgrade_sublayer():
    net = MobileNetV1()
    before = _names(net)
    theseus.upgrade_sublayer(net, ["blocks[11].depthwise_conv.conv", "blocks[12].depthwise_conv.conv"], _dense_5x5)
    names = _names(net)
    assert names == before                                    # same names, same order
    assert len(set(names)) == len(names) == 137
    by_name = {p.name: p for p in net.get_parameters()}
    assert tuple(by_name["blocks.11.depthwise_conv.conv.weight"].shape) == (512, 512, 5, 5)
    assert tuple(by_name["blocks.12.depthwise_conv.conv.weight"].shape) == (1024, 1024, 5, 5)
    assert "conv.weight" not in by_name                       # what MindSpore names a late-attached conv
    nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    out = net(ms.Tensor(np.ones((1, 3, 64, 64), np.float32)))
    assert tuple(out.shape) == (1, 1000)


def test_parameter_names_after_stop_after_and_reset():
    net = MobileNetV1(scale=0.25)
    before = _names(net)
    theseus.stop_after(net, "blocks[0].depthwise_conv.conv")
    names = _names(net)
    assert names == ["conv.conv.weight", "conv.bn.moving_mean", "conv.bn.moving_variance", "conv.bn.gamma",
                     "conv.bn.beta", "blocks.0.depthwise_conv.conv.weight"]
    nn.SGD(net.trainable_params(), learning_rate=0.1)
    theseus.reset(net)
    assert _names(net) == before
    nn.SGD(net.trainable_params(), learning_rate=0.1)


def test_surgery_keeps_the_prefix_of_an_attached_backbone():
    class Det(nn.Cell):
        def __init__(self):
            super().__init__()
            self.backbone = MobileNetV1(scale=0.25, class_num=4)

    det = Det()
    theseus.upgrade_sublayer(det.backbone, "blocks[12].depthwise_conv.conv", _dense_5x5)
    names = _names(det)
    assert len(set(names)) == len(names)
    assert "backbone.blocks.12.depthwise_conv.conv.weight" in names
    assert all(n.startswith("backbone.") for n in names)


def test_wrapping_never_renames_the_source_models_parameters():
    net = MobileNetV1(scale=0.25, class_num=4)
    before = _names(net)
    wrapper = B.wrap(net, lambda x: net(x) * 2, "Doubled")
    assert _names(net) == before                              # auto_prefix=True would give model.conv...
    assert [n for n, _ in B.children(wrapper)] == ["model"]
    B.after_surgery(wrapper)                                  # update_parameters_name() would prefix model.
    assert _names(net) == before
    x = ms.Tensor(np.ones((1, 3, 32, 32), np.float32))
    np.testing.assert_array_equal(wrapper(x).asnumpy(), net(x).asnumpy() * 2)
    assert type(wrapper).__name__ == "Doubled"


# -- convolution padding -----------------------------------------------------------------
def _conv_ref(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = xp.shape
    o, _, k, _ = w.shape
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, o, ho, wo), np.float64)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


@pytest.mark.parametrize("source", ["mobilenet", "zoo"])
def test_conv_padding_matches_explicit_padding_at_stride_2(source):
    conv = MobileNetV1(scale=0.25).conv.conv if source == "mobilenet" else build(["conv", 3, 4, 3, 2, 1, 1, False])
    x = np.random.RandomState(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    got = conv(ms.Tensor(x)).asnumpy()
    want = _conv_ref(x.astype(np.float64), conv.weight.asnumpy().astype(np.float64), 2, 1)
    assert got.shape == want.shape == (2, conv.out_channels, 4, 4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)   # pad_mode='same' pads bottom/right only


# -- weights in the neutral layout ---------------------------------------------------------
def test_export_import_local_maps_batchnorm_by_name_and_copies():
    bn = nn.BatchNorm2d(3, momentum=0.9)
    vals = {"weight": [1.0, 2.0, 3.0], "bias": [4.0, 5.0, 6.0], "running_mean": [7.0, 8.0, 9.0],
            "running_var": [10.0, 11.0, 12.0]}
    B.import_local(bn, {k: np.array(v) for k, v in vals.items()})
    assert bn.gamma.asnumpy().tolist() == vals["weight"] and bn.moving_variance.asnumpy().tolist() == vals["running_var"]
    assert bn.gamma.dtype == ms.float32
    out = B.export_local(bn)
    assert {k: v.tolist() for k, v in out.items()} == vals
    out["weight"][0] = 99.0                                   # asnumpy() alone would share memory
    assert bn.gamma.asnumpy()[0] == 1.0
    dense = nn.Dense(3, 2)
    assert {k: v.shape for k, v in B.export_local(dense).items()} == {"weight": (2, 3), "bias": (2,)}
    with pytest.raises(theseus.StateMismatchError):           # set_data would silently reshape
        B.import_local(dense, {"weight": np.zeros((3, 2), np.float32)})
    assert [n for n, _ in B.parameters(bn)] == ["gamma", "beta"]


def test_training_flags_and_frozen_parameters():
    net = build(["chain", [["c", ["conv", 3, 4, 3, 1, 1, 1, False]], ["bn", ["bn", 4]]]])
    assert B.is_training(net) is False                        # MindSpore cells start in eval mode
    B.set_training(net, True, recurse=False)
    assert (B.is_training(net), B.is_training(net.bn)) == (True, False)
    B.set_training(net, True)
    assert B.is_training(net.bn) is True
    B.set_trainable(net.c.weight, False)
    assert [n for n, _ in B.parameters(net)] == ["c.weight", "bn.gamma", "bn.beta"]
    assert B.is_trainable(net.c.weight) is False


# -- the seed scenario (PaddleClas TheseusLayer doc) on MindSpore ---------------------------
def test_seed_scenario_mobilenetv1_224():
    net = MobileNetV1()
    x = ms.Tensor(np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32))
    y0 = net(x).asnumpy()
    assert y0.shape == (2, 1000)
    res = net.update_res(["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"])
    assert list(res) == ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]
    out = net(x)                                              # the root's forward hook returned a dict
    assert isinstance(out, dict)
    assert [(k, tuple(v.shape)) for k, v in out.items()] == [
        ("output", (2, 1000)), ("blocks[0]", (2, 64, 112, 112)), ("blocks[2]", (2, 128, 56, 56)),
        ("blocks[4]", (2, 256, 28, 28)), ("blocks[10]", (2, 512, 14, 14))]
    np.testing.assert_array_equal(out["output"].asnumpy(), y0)
    assert net.stop_after("blocks[0].depthwise_conv.conv") is True
    theseus.update_res(net, [])
    assert tuple(net(x).shape) == (2, 32, 112, 112)
    theseus.reset(net)
    np.testing.assert_array_equal(net(x).asnumpy(), y0)


# -- subprocesses: import order, laziness, graph mode ------------------------------------
def test_import_is_lazy_and_backend_is_discovered():
    r = _run("""
        import json, sys, theseus, theseus_mindspore
        lazy = "mindspore" not in sys.modules
        print("RESULT " + json.dumps([lazy, theseus.backends().get("mindspore")]))
    """)
    assert r == [True, "mindspore"]


def test_paddle_then_mindspore_import_conflict_is_fixed():
    plain = _run("""
        import json, paddle
        try:
            import mindspore
            print("RESULT " + json.dumps("ok"))
        except ImportError as e:
            print("RESULT " + json.dumps("dnnl_threadpool_interop_stream_create" in str(e)))
    """)
    assert plain is True, "plain `import paddle; import mindspore` no longer fails: the fix is untested"
    fixed = _run("""
        import json, numpy as np, paddle
        import theseus_mindspore
        from theseus_mindspore import MobileNetV1
        import mindspore
        y = MobileNetV1(scale=0.25, class_num=10)(mindspore.Tensor(np.ones((1, 3, 32, 32), np.float32)))
        z = float(paddle.to_tensor(np.ones(3, np.float32)).sum())
        print("RESULT " + json.dumps([list(y.shape), z]))
    """)
    assert fixed == [[1, 10], 3.0]


def test_importing_theseus_mindspore_after_paddle_lets_a_plain_mindspore_import_work():
    r = _run("""
        import json, sys, paddle
        import theseus_mindspore
        assert "mindspore" not in sys.modules      # the preload does not import mindspore
        import mindspore
        print("RESULT " + json.dumps(mindspore.ops.add(mindspore.Tensor([1.0]), 2.0).asnumpy().tolist()))
    """)
    assert r == [3.0]


def test_unfixable_import_conflict_raises_framework_conflict_error():
    r = _run("""
        import json, paddle, importlib.util, theseus
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == "mindspore" else real(name, *a)
        try:
            from theseus_mindspore import MobileNetV1
            print("RESULT " + json.dumps("imported"))
        except theseus.FrameworkConflictError as e:
            print("RESULT " + json.dumps(["import mindspore" in str(e), isinstance(e, ImportError)]))
    """)
    assert r == [True, True]


def test_numpy_2_warns():
    from theseus_mindspore import _runtime

    real = _runtime.np.__version__
    try:
        _runtime.np.__version__ = "2.1.0"
        with pytest.warns(_runtime.NumpyVersionWarning, match="numpy<2"):
            _runtime._check_numpy()
    finally:
        _runtime.np.__version__ = real


def test_graph_mode_never_returns_stale_or_empty_captures():
    r = _run("""
        import json, numpy as np, mindspore as ms, theseus
        from mindspore import nn
        from theseus_mindspore._zoo import build
        spec = ["chain", [["conv", ["conv", 3, 4, 3, 1, 1, 1, False]], ["relu", ["relu"]],
                          ["pool", ["pool"]], ["flatten", ["flatten"]], ["fc", ["linear", 4, 2]]]]
        x = ms.Tensor(np.ones((1, 3, 8, 8), np.float32))
        def call(f):
            try:
                out = f(x)
                return sorted(out) if isinstance(out, dict) else list(out.shape)
            except theseus.UnsupportedOperation as e:
                return ["UnsupportedOperation", e.capability]
            except RuntimeError as e:
                return ["RuntimeError", "cannot run in MindSpore GRAPH_MODE" in str(e)]
        res = {}
        net = build(spec)
        ms.set_context(mode=ms.GRAPH_MODE)
        try:
            theseus.update_res(net, ["relu"]); res["refused"] = "accepted"
        except theseus.UnsupportedOperation as e:
            res["refused"] = [e.capability, "GRAPH_MODE" in str(e)]
        res["compiled_before"] = call(net)                 # compiled without hooks
        ms.set_context(mode=ms.PYNATIVE_MODE)
        theseus.update_res(net, ["relu"])
        res["pynative"] = call(net)
        ms.set_context(mode=ms.GRAPH_MODE)
        res["graph_after_capture"] = call(net)             # a cached graph would return a bare tensor
        ms.set_context(mode=ms.PYNATIVE_MODE)
        theseus.reset(net)
        @ms.jit
        def f(t):
            return net(t)
        res["jit_plain"] = call(f)
        theseus.update_res(net, ["relu"])
        res["jit_after_capture"] = call(f)
        theseus.reset(net)
        theseus.upgrade_sublayer(net, "fc", lambda l, p: nn.Dense(4, 3))
        res["jit_after_surgery"] = call(f)                 # a cached graph would still give 2 outputs
        ms.set_context(mode=ms.GRAPH_MODE)
        res["graph_after_surgery"] = call(net)
        print("RESULT " + json.dumps(res))
    """)
    assert r == {
        "refused": ["hooks", True],
        "compiled_before": [1, 2],
        "pynative": ["output", "relu"],
        "graph_after_capture": ["RuntimeError", True],
        "jit_plain": [1, 2],
        "jit_after_capture": ["RuntimeError", True],
        "jit_after_surgery": [1, 3],
        "graph_after_surgery": [1, 3],
    }


def test_extract_and_features_modules_refuse_graph_mode_clearly():
    r = _run("""
        import json, numpy as np, mindspore as ms, theseus
        from theseus_mindspore._zoo import build
        from theseus_conformance import spec
        m = build(spec.RESNETISH)
        m.set_train(False)
        x = ms.Tensor(np.random.RandomState(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
        ext = theseus.extract(m, ["layer1[1]", "layer2"])
        feat = theseus.features(m, input_shape=(1, 3, 16, 16))
        res = {"pynative": [list(v.shape) for v in ext(x).values()] + [list(v.shape) for v in feat(x)]}
        ms.set_context(mode=ms.GRAPH_MODE)
        for name, mod in (("extract", ext), ("features", feat)):
            try:
                mod(x); res[name] = "ran"
            except theseus.UnsupportedOperation as e:
                res[name] = [e.capability, "PyNative" in str(e)]
        ms.set_context(mode=ms.PYNATIVE_MODE)
        jitted = ms.jit(ext.construct)
        try:
            jitted(x); res["jit"] = "ran"
        except RuntimeError as e:
            res["jit"] = "PyNative" in str(e)
        res["pynative_again"] = [list(v.shape) for v in ext(x).values()]
        print("RESULT " + json.dumps(res))
    """)
    assert r == {
        "pynative": [[2, 8, 8, 8], [2, 16, 4, 4], [2, 8, 8, 8], [2, 16, 4, 4]],
        "extract": ["hooks", True],
        "features": ["hooks", True],
        "jit": True,
        "pynative_again": [[2, 8, 8, 8], [2, 16, 4, 4]],
    }


def test_suite_modules_collect_after_paddle_in_one_process():
    """pytest collecting the paddle suite before the mindspore one (paddle imported first)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         os.path.join(root, "paddle", "theseus_paddle", "conformance.py"),
         os.path.join(root, "mindspore", "theseus_mindspore", "conformance.py")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "TestMindSporeConformance" in proc.stdout and "TestPaddleConformance" in proc.stdout


def test_building_and_loading_weights_calls_no_deprecated_mindspore_api():
    """MindSpore logs a warning line per call of a deprecated interface (dtype_to_nptype
    printed one per tensor); building MobileNetV1 and a weight round trip print none."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "script.py")
        with open(script, "w") as fh:
            fh.write("import theseus, theseus_mindspore\nfrom theseus_mindspore import MobileNetV1\n"
                     "m = MobileNetV1(scale=0.25)\nassert theseus.load_state(m, theseus.state(m)).ok\nprint('ok')\n")
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300, cwd=tmp)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert "deprecated" not in proc.stderr, proc.stderr[-2000:]
