"""Checks that need framework-specific models (functional code in ``forward``, token and
channels-last layouts, real optimiser steps). Each backend's tests build the models named
here in its own framework and call these checks, so every backend is held to the same
expected outcomes.

The models (same structure and names on every backend):

* ``TinyViT``: ``patch`` (conv 3->8, kernel 4, stride 4), a ``cls_token`` parameter (1, 1, 8),
  ``blocks`` = Sequential(Mix(8), Mix(8)), ``norm`` (LayerNorm 8), ``head`` (linear 8->10);
  forward: tokens = patch(x) flattened to (B, N, 8), class token prepended, blocks, norm,
  ``head(x[:, 0])`` (functional code after the blocks).
* ``TinyNHWC``: ``stem`` (conv 3->8, kernel 4, stride 4) whose output is permuted to
  (B, H, W, C), ``stages`` = Sequential(Mix(8), Down(8, 16), Mix(16)), ``head`` (linear
  16->10) on ``x.mean((1, 2))``. ``Mix(c)``: ``x + fc(x)`` (linear on the last axis).
  ``Down``: NHWC in and out, a conv with kernel 2 and stride 2 (child ``conv``).
* ``TinyTuple``: ``stem`` (conv 3->8, kernel 2, stride 2), ``stages`` = a list (ModuleList /
  LayerList / CellList) of ``Gated(8, 16)`` and ``Gated(16, 32)``, ``head`` (linear 32->10)
  on the spatial mean. ``Gated(cin, cout)`` (child ``conv``, kernel 2, stride 2) returns a
  TUPLE ``(y.mean over H, W, y)``: a (B, C) gate, then the map; the forward unpacks it
  (``g, x = stage(x)``) and feeds ``x * g[..., None, None]`` on.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import theseus
from theseus._compare import run_capturing

__all__ = ["check_token_model", "check_nhwc_model", "check_tuple_model", "check_freeze_survives_sgd"]


def _close(actual: np.ndarray, reference: np.ndarray, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Scale-aware: max|a - b| <= rtol * max|ref| + atol."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    return actual.shape == reference.shape and float(np.max(np.abs(actual - reference), initial=0.0)) <= (
        rtol * float(np.max(np.abs(reference), initial=0.0)) + atol)


def _np(backend: Any, out: Any) -> Any:
    if isinstance(out, (list, tuple)):
        return [backend.to_numpy(o) for o in out]
    return backend.to_numpy(out)


def check_token_model(backend: Any, model: Any, x: np.ndarray) -> None:
    """``features`` turns (B, N, C) tokens into maps; ``truncate`` exits early; ``stop_after``
    still runs the functional code (and says so in its docstring)."""
    backend.set_training(model, False)
    shape = (1,) + x.shape[1:]
    final, cap = run_capturing(model, x, ["blocks[0]", "blocks[1]", "norm"])
    assert final[0].shape == (x.shape[0], 10)
    feat = theseus.features(model, input_shape=shape)
    assert list(feat.feature_info) == [
        {"name": "blocks[0]", "channels": 8, "reduction": 4, "index": 0, "layout": "tokens", "prefix_tokens": 1},
        {"name": "blocks[1]", "channels": 8, "reduction": 4, "index": 1, "layout": "tokens", "prefix_tokens": 1},
    ]
    grid = (x.shape[2] // 4, x.shape[3] // 4)
    outs = _np(backend, backend.infer(feat, backend.from_numpy(x)))
    for out, d in zip(outs, ["blocks[0]", "blocks[1]"]):
        tokens = cap[d][0]
        expected = tokens[:, 1:, :].reshape(x.shape[0], grid[0], grid[1], 8).transpose(0, 3, 1, 2)
        assert _close(out, expected), d
    explicit = theseus.features(model, stages=["blocks[1]", "norm"], input_shape=shape)
    assert explicit.feature_info.names() == ["blocks[1]", "norm"]
    assert [f["layout"] for f in explicit.feature_info] == ["tokens", "tokens"]
    cut = theseus.truncate(model, "blocks[1]")
    assert _close(_np(backend, backend.infer(cut, backend.from_numpy(x))), cap["blocks[1]"][0])
    theseus.stop_after(model, "blocks[1]")
    try:  # the seed's semantics: the forward's own x[:, 0] still runs
        assert backend.to_numpy(backend.infer(model, backend.from_numpy(x))).shape == (x.shape[0], 8)
    finally:
        theseus.reset(model)


def check_nhwc_model(backend: Any, model: Any, x: np.ndarray) -> None:
    """Channels-last stage outputs are found, permuted to (B, C, H, W) and labelled."""
    backend.set_training(model, False)
    shape = (1,) + x.shape[1:]
    _, cap = run_capturing(model, x, ["stages[0]", "stages[2]"])
    feat = theseus.features(model, input_shape=shape)
    assert list(feat.feature_info) == [
        {"name": "stages[0]", "channels": 8, "reduction": 4, "index": 0, "layout": "NHWC"},
        {"name": "stages[2]", "channels": 16, "reduction": 8, "index": 1, "layout": "NHWC"},
    ]
    outs = _np(backend, backend.infer(feat, backend.from_numpy(x)))
    for out, d in zip(outs, ["stages[0]", "stages[2]"]):
        assert _close(out, cap[d][0].transpose(0, 3, 1, 2)), d
    explicit = theseus.features(model, stages=["stem", "stages[1]"], input_shape=shape)
    assert [(f["name"], f["channels"], f["reduction"], f.get("layout")) for f in explicit.feature_info] == [
        ("stem", 8, 4, None), ("stages[1]", 16, 8, "NHWC")]


def check_tuple_model(backend: Any, model: Any, x: np.ndarray) -> None:
    """A stage returning a tuple ``(gate, map)``: ``features`` takes its map element (the
    first element that is a map: index 1 here), says so in ``feature_info``, and returns
    exactly that tensor; explicit ``stages=`` does the same."""
    backend.set_training(model, False)
    shape = (1,) + x.shape[1:]
    _, cap = run_capturing(model, x, ["stem", "stages[0]", "stages[1]"])
    assert [a.shape for a in cap["stages[0]"]] == [(x.shape[0], 16), (x.shape[0], 16) + tuple(
        d // 4 for d in x.shape[2:])]
    feat = theseus.features(model, input_shape=shape)
    assert list(feat.feature_info) == [
        {"name": "stem", "channels": 8, "reduction": 2, "index": 0},
        {"name": "stages[0]", "channels": 16, "reduction": 4, "index": 1, "element": 1},
        {"name": "stages[1]", "channels": 32, "reduction": 8, "index": 2, "element": 1},
    ]
    outs = _np(backend, backend.infer(feat, backend.from_numpy(x)))
    assert _close(outs[0], cap["stem"][0])
    for out, d in zip(outs[1:], ["stages[0]", "stages[1]"]):
        assert _close(out, cap[d][1]), d
    explicit = theseus.features(model, stages=["stages[1]"], input_shape=shape)
    assert list(explicit.feature_info) == [
        {"name": "stages[1]", "channels": 32, "reduction": 8, "index": 0, "element": 1}]
    assert _close(_np(backend, backend.infer(explicit, backend.from_numpy(x)))[0], cap["stages[1]"][1])


def check_freeze_survives_sgd(backend: Any, model: Any, x: np.ndarray, sgd_step: Callable[[Any, Any], None],
                              norm: str) -> None:
    """MobileNetV1: ``freeze_stages(model, 1, norm)``, ``train()``, 3 SGD steps (``train()``
    again between them): frozen parameters and every held norm's statistics bit-identical,
    everything else changed; state keys unchanged."""
    frozen_prefixes = ("conv.", "blocks[0].", "blocks[1].", "blocks[2].")
    backend.set_training(model, True)
    keys = list(theseus.state(model))
    theseus.freeze_stages(model, 1, norm=norm, input_shape=(1,) + x.shape[1:])
    backend.set_training(model, True)
    before = theseus.state(model)
    xt = backend.from_numpy(x)
    for _ in range(3):
        sgd_step(model, xt)
        backend.set_training(model, True)   # a second train() does not undo the policy
    after = theseus.state(model)
    assert list(after) == keys
    stats = ("running_mean", "running_var", "num_batches_tracked")   # torch counts batches too
    for k in keys:
        frozen_part = k.startswith(frozen_prefixes)
        held_stat = k.endswith(stats) and (frozen_part or norm != "train")
        frozen_norm_param = norm == "frozen" and ".bn." in k
        if frozen_part or held_stat or frozen_norm_param:
            assert np.array_equal(before[k], after[k]), f"{k} changed (norm={norm!r})"
        else:
            assert not np.array_equal(before[k], after[k]), f"{k} did not change (norm={norm!r})"
    theseus.reset(model)
    assert theseus.frozen(model) == []
