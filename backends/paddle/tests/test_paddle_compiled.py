"""theseus under paddle.jit.to_static (default SOT mode and full_graph=True): correct on
every call, surgery after conversion takes effect, captures that cannot work raise."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

import theseus
from theseus_conformance import spec
from theseus_paddle._zoo import build

LAYERS = {"layer1[0].body[1]": "a", "layer1[1]": "b", "layer2": "c"}
MODES = [pytest.param(False, id="sot"), pytest.param(True, id="full_graph")]


@pytest.fixture
def model():
    paddle.seed(0)
    m = build(spec.RESNETISH)
    m.eval()
    return m


@pytest.fixture
def inputs():
    return [paddle.to_tensor(np.random.RandomState(i).standard_normal((2, 3, 16, 16)).astype("float32"))
            for i in range(2)]


def _same(a, b):
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("full_graph", MODES)
@pytest.mark.parametrize("make", [lambda m: theseus.extract(m, LAYERS),
                                  lambda m: theseus.features(m, input_shape=(1, 3, 16, 16))],
                         ids=["extract", "features"])
def test_to_static_is_correct_on_every_call(model, inputs, make, full_graph):
    eager = make(model)
    expected = [eager(x) for x in inputs]
    static = paddle.jit.to_static(make(model), full_graph=full_graph)
    got = [static(x) for x in inputs]
    assert all(_same(a, b) for a, b in zip(got, expected))
    assert not _same(got[0], got[1])


@pytest.mark.parametrize("full_graph", MODES)
def test_stop_after_on_a_converted_model_takes_effect(model, inputs, full_graph):
    static = paddle.jit.to_static(model, full_graph=full_graph)
    assert tuple(static(inputs[0]).shape) == (2, 10)
    theseus.stop_after(model, "layer1")
    assert tuple(static(inputs[0]).shape) == (2, 8, 8, 8)
    theseus.reset(model)
    assert tuple(static(inputs[0]).shape) == (2, 10)


def test_update_res_on_sot_model_is_correct(model, inputs):
    static = paddle.jit.to_static(model)
    static(inputs[0])
    theseus.update_res(model, ["layer1"])
    out = static(inputs[1])
    assert _same(out["layer1"], theseus.extract(model, ["layer1"])(inputs[1])["layer1"])


def test_update_res_on_full_graph_model_raises(model, inputs):
    static = paddle.jit.to_static(model, full_graph=True)
    static(inputs[0])
    with pytest.raises(theseus.UnsupportedOperation, match="full_graph=True"):
        theseus.update_res(model, ["layer1"])
    assert tuple(static(inputs[1]).shape) == (2, 10)   # unchanged
