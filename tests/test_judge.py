"""The scale-aware judge (framework-free): tolerances, nested structures, messages."""

from __future__ import annotations

import numpy as np
import pytest

import theseus
from theseus import DEFAULT_ATOL, DEFAULT_RTOL, agree, assert_agree


def _ref(seed=0, shape=(2, 8, 5, 5), scale=60.0):
    return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(np.float32)


def test_defaults_are_documented_values():
    assert (DEFAULT_RTOL, DEFAULT_ATOL) == (3e-5, 1e-6)


def test_float32_round_off_scaled_by_magnitude_passes_where_a_fixed_atol_failed():
    # the case: 1.02e-4 difference where values reach 62 (1.6e-6 relative)
    ref = _ref()
    ref.flat[0] = 62.0
    got = ref.copy()
    got.flat[7] += 1.02e-4
    v = agree(got, ref, name="stop_after(blocks[12].pointwise_conv.bn)")
    assert v and v.ok and v.index == np.unravel_index(7, ref.shape)
    assert v.max_abs == pytest.approx(1.02e-4, rel=0.05)
    assert v.max_ref == pytest.approx(float(np.abs(ref).max()))
    assert v.ratio == pytest.approx(v.max_abs / v.max_ref)


def test_failure_message_names_tensor_numbers_and_position():
    ref = _ref()
    got = ref.copy()
    got[1, 2, 3, 4] += 1.0
    v = agree(got, ref, name="logits")
    assert not v and v.failures == ("logits",) and v.index == (1, 2, 3, 4)
    m = v.message
    assert m.startswith("logits: max|a-b| = 1 at [1, 2, 3, 4]")
    assert f"max|ref| = {v.max_ref:.3g}" in m and f"ratio {v.ratio:.3g}" in m and "> tolerance" in m
    with pytest.raises(AssertionError) as info:
        assert_agree(got, ref, name="logits")
    assert str(info.value) == m


def test_nested_structures_name_each_leaf():
    ref = {"output": _ref(1, (2, 10)), "blocks[0]": _ref(2, (2, 4, 3, 3))}
    got = {k: v.copy() for k, v in ref.items()}
    got["blocks[0]"][0, 1, 2, 2] *= 1.01
    v = agree(got, ref, name="features")
    assert not v and v.failures == ("features['blocks[0]']",) and v.index == (0, 1, 2, 2)
    assert agree([ref["output"], (ref["blocks[0]"],)], [ref["output"], (ref["blocks[0]"],)])
    bad = agree([got["output"], (got["blocks[0]"],)], [ref["output"], (ref["blocks[0]"],)], name="outs")
    assert bad.failures == ("outs[1][0]",)


@pytest.mark.parametrize("got, ref, text", [
    (np.zeros((2, 3)), np.zeros((3, 2)), "x: shape (2, 3) != reference shape (3, 2)"),
    ([np.zeros(1)], [np.zeros(1), np.zeros(1)], "x: length 1 != reference length 2"),
    ({"a": np.zeros(1)}, {"b": np.zeros(1)}, "x: keys differ: missing ['b'], unexpected ['a']"),
    (np.zeros(1), {"b": np.zeros(1)}, "x: is a ndarray, reference is a mapping"),
])
def test_structure_mismatches_fail_with_a_message(got, ref, text):
    v = agree(got, ref, name="x")
    assert not v and v.message.splitlines()[0] == text


def test_non_finite_values():
    ref = np.array([1.0, np.inf, np.nan])
    assert agree(ref.copy(), ref)
    assert not agree(np.array([1.0, np.inf, 0.0]), ref)
    assert not agree(np.array([np.nan, np.inf, np.nan]), ref)


def test_zero_reference_uses_atol_and_explicit_tolerances():
    assert agree(np.full(3, 5e-7), np.zeros(3))
    assert not agree(np.full(3, 5e-6), np.zeros(3))
    assert agree(np.full(3, 5e-6), np.zeros(3), atol=1e-5)
    ref = np.array([100.0])
    assert not agree(ref + 0.01, ref) and agree(ref + 0.01, ref, rtol=1e-4)


def test_bad_inputs_are_theseus_errors():
    with pytest.raises(theseus.InvalidArgumentError, match="dtype"):
        agree(np.array(["a"]), np.array(["a"]))
    with pytest.raises(theseus.InvalidArgumentError, match="rtol"):
        agree(np.zeros(1), np.zeros(1), rtol=-1)


def test_verdict_is_truthy_only_when_ok():
    assert bool(agree(np.ones(2), np.ones(2))) is True
    assert bool(agree(np.ones(2), np.zeros(2))) is False
