"""theseus modules under torch.compile and torch.jit.trace: correct on every call, and
surgery on an already-compiled model takes effect or raises — never a stale graph."""

from __future__ import annotations

import pytest
import torch

import theseus
from theseus_conformance import spec
from theseus_torch._zoo import build

LAYERS = {"layer1[0].body[1]": "a", "layer1[1]": "b", "layer2": "c"}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build(spec.RESNETISH).eval()


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, 16, 16, generator=g) for _ in range(2)]


def _same(a, b):
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return torch.allclose(a, b, atol=1e-5, rtol=1e-5)


def _features(model):
    return theseus.features(model, input_shape=(1, 3, 16, 16))


@pytest.mark.parametrize("make", [lambda m: theseus.extract(m, LAYERS), _features], ids=["extract", "features"])
def test_torch_compile_is_correct_on_every_call(model, inputs, make):
    torch._dynamo.reset()
    eager = make(model)
    compiled = torch.compile(eager)
    with torch.no_grad():
        for x in inputs:
            assert _same(compiled(x), eager(x))
        assert not _same(compiled(inputs[0]), compiled(inputs[1]))


@pytest.mark.parametrize("make", [lambda m: theseus.extract(m, LAYERS), _features], ids=["extract", "features"])
def test_jit_trace_is_correct_on_every_call(model, inputs, make):
    eager = make(model)
    with torch.no_grad():
        traced = torch.jit.trace(eager, inputs[0], strict=False)
        for x in inputs:
            assert _same(traced(x), eager(x))


def test_stop_after_on_a_compiled_model_takes_effect(model, inputs):
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.no_grad():
        assert tuple(compiled(inputs[0]).shape) == (2, 10)
        theseus.stop_after(model, "layer1")
        assert tuple(compiled(inputs[0]).shape) == (2, 8, 8, 8)
        theseus.reset(model)
        assert tuple(compiled(inputs[0]).shape) == (2, 10)


def test_update_res_on_a_compiled_model_raises_or_is_correct(model, inputs):
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.no_grad():
        compiled(inputs[0])
        theseus.update_res(model, ["layer1"])
        try:
            out = compiled(inputs[1])
        except theseus.UnsupportedOperation as err:
            assert "compile again" in str(err)
        else:  # if it runs, it must be right
            assert _same(out["layer1"], theseus.extract(model, ["layer1"])(inputs[1])["layer1"])
        torch._dynamo.reset()
        out = torch.compile(model)(inputs[1])
        assert _same(out["layer1"], theseus.extract(model, ["layer1"])(inputs[1])["layer1"])
