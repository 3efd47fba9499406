"""Models are freed: after any theseus operation, ``del model`` (and of what the operation
returned) lets the garbage collector reclaim the model; nothing theseus keeps (records,
captures, hooks, wrappers' clean-up) holds it alive."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import theseus

from ._fixtures import Gated, requires, set_eval


def _x() -> np.ndarray:
    return np.random.RandomState(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


def _forward(backend, model) -> None:
    backend.infer(model, backend.from_numpy(_x()))


def _update_res(backend, m):
    theseus.update_res(m, ["blocks[0]", "blocks[2]"])
    _forward(backend, m)


def _update_res_twice_then_stop(backend, m):
    theseus.update_res(m, ["blocks[0]"])
    theseus.update_res(m, "blocks[1]")
    theseus.update_res(m, [])


def _stop_after(backend, m):
    theseus.stop_after(m, "blocks[3].depthwise_conv")
    _forward(backend, m)


def _upgrade_top_level(backend, m):
    theseus.upgrade_sublayer(m, "fc", lambda layer, pattern: backend.identity())


def _upgrade_nested(backend, m):
    theseus.upgrade_sublayer(m, "blocks[*].depthwise_conv.relu", lambda layer, pattern: backend.identity())


def _capture_then_surgery(backend, m):
    theseus.update_res(m, ["blocks[0]", "blocks[4]"])
    theseus.stop_after(m, "blocks[4]")
    _forward(backend, m)


def _freeze(backend, m):
    theseus.freeze(m, "blocks[0:4]", norm_eval=True)


def _tree(backend, m):
    theseus.tree(m, input_shape=(1, 3, 32, 32))


def _state(backend, m):
    theseus.load_state(m, theseus.state(m))


def _reset_after_all(backend, m):
    theseus.update_res(m, ["blocks[0]"])
    theseus.stop_after(m, "blocks[6]")
    theseus.upgrade_sublayer(m, "conv", lambda layer, pattern: backend.identity())
    theseus.reset(m)


PLAIN = {
    "stop_after": _stop_after,
    "upgrade_top_level_child": _upgrade_top_level,
    "upgrade_nested": _upgrade_nested,
}
WITH_HOOKS = {
    "update_res": _update_res,
    "update_res_replaced_and_stopped": _update_res_twice_then_stop,
    "capture_then_surgery": _capture_then_surgery,
    "tree": _tree,
    "reset": _reset_after_all,
}


def _collected(ref: weakref.ref) -> bool:
    for _ in range(3):
        gc.collect()
        if ref() is None:
            return True
    return False


def _referrers(obj) -> str:
    """For the failure message: what still refers to the model."""
    return ", ".join(sorted({type(r).__name__ for r in gc.get_referrers(obj)}))[:300]


def _check(mobilenet, backend, operation) -> None:
    m = set_eval(backend, mobilenet(scale=0.25, class_num=10))
    operation(backend, m)
    ref = weakref.ref(m)
    del m
    assert _collected(ref), f"the model is still alive; referrers: {_referrers(ref())}"


class BaseLifetimeTests(Gated):
    @pytest.mark.parametrize("operation", sorted(PLAIN))
    def test_model_is_collectable_after(self, mobilenet, backend, operation):
        _check(mobilenet, backend, PLAIN[operation])

    @requires("hooks")
    @pytest.mark.parametrize("operation", sorted(WITH_HOOKS))
    def test_model_is_collectable_after_hooks(self, mobilenet, backend, operation):
        _check(mobilenet, backend, WITH_HOOKS[operation])

    @requires("freeze", "train_eval", "hooks")
    def test_model_is_collectable_after_freeze_norm_eval(self, mobilenet, backend):
        _check(mobilenet, backend, _freeze)

    @requires("state")
    def test_model_is_collectable_after_state_and_load_state(self, mobilenet, backend):
        _check(mobilenet, backend, _state)

    @requires("hooks")
    def test_return_patterns_model_is_collectable(self, mobilenet, backend):
        m = set_eval(backend, mobilenet(scale=0.25, class_num=10, return_patterns=["blocks[0]", "blocks[2]"]))
        _forward(backend, m)
        ref = weakref.ref(m)
        del m
        assert _collected(ref), f"the model is still alive; referrers: {_referrers(ref())}"

    @requires("hooks", "wrap")
    @pytest.mark.parametrize("how", ["extract", "extract_with_output", "features"])
    def test_extracted_module_and_model_are_collectable(self, mobilenet, backend, how):
        m = set_eval(backend, mobilenet(scale=0.25, class_num=10))
        if how == "features":
            new = theseus.features(m, out_indices=[1, 2], input_shape=(1, 3, 32, 32))
        else:
            new = theseus.extract(m, ["blocks[0]", "blocks[3]"], include_output=how.endswith("output"))
        _forward(backend, new)
        refs = [weakref.ref(m), weakref.ref(new)]
        del m, new
        assert all(_collected(r) for r in refs), "the model or its extracted module is still alive"

    @requires("hooks", "wrap")
    def test_dropping_the_extracted_module_removes_its_hooks(self, mobilenet, backend, run):
        m = set_eval(backend, mobilenet(scale=0.25, class_num=10))
        before = run(m, _x())
        new = theseus.extract(m, ["blocks[0]"])
        ref = weakref.ref(new)
        del new
        assert _collected(ref)
        after = theseus.update_res(m, ["blocks[1]"])  # the model still works, with its own capture
        assert list(after) == ["blocks[1]"]
        out = run(m, _x())
        np.testing.assert_array_equal(out["output"], before)
