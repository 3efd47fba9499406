"""Hostile arguments on every backend: each bad argument gets a ``TheseusError`` subclass
that names it, before the model changes or anything is allocated; and a hypothesis fuzz of
every public operation's descriptor and argument inputs (``THESEUS_FUZZ_EXAMPLES`` sets how
many examples per operation; CI runs a bounded number)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import theseus
from theseus._grammar import Attr, Descriptor, Index

from ._fixtures import Gated, requires, set_eval

FUZZ_EXAMPLES = int(os.environ.get("THESEUS_FUZZ_EXAMPLES", "10"))


def _snapshot(backend, model) -> tuple:
    """What a failing call must leave as it was: structure, layer identities, modes, flags."""
    layers = theseus.resolve(model, "**")
    modes = "train_eval" in backend.capabilities
    flags = tuple((n, backend.is_trainable(p)) for n, p in backend.parameters(model)) \
        if "freeze" in backend.capabilities else ()
    return tuple((d, id(layer), modes and backend.is_training(layer)) for d, layer in layers.items()), flags


BAD_SHAPES = [
    ("1,3,32,32", "sequence of positive integers"),
    ((1, 3.5, 32, 32), "positive integers"),
    ((1, 0, 32, 32), "positive integers"),
    ((1, -3, 32, 32), "positive integers"),
    ((1, True, 32, 32), "positive integers"),
    ([[1, 3], [32, 32]], "positive integers"),
    (b"\x01\x03", "sequence of positive integers"),
    ((100_000, 3, 100_000, 100_000), "elements; a probe input"),
    ((1,) * 40, "to 32 dimensions"),
    (np.zeros((2, 2), dtype=np.int64), "flat sequence"),
]

BAD_WEIGHTS = [
    ([[1.0, 2.0], [3.0]], "not a rectangular array"),
    ("0.5", "got a str"),
    (np.array(["0.5"]), "strings"),
    (np.array([object()]), "Python objects"),
    (np.ones(3, np.complex64), "complex"),
    (np.array(["2020-01-01"], dtype="M8[D]"), "datetimes"),
]


class BaseHostileArgumentTests(Gated):
    @requires("hooks")
    def test_tree_refuses_bad_input_shapes(self, net, backend):
        before = _snapshot(backend, net)
        for shape, words in BAD_SHAPES:
            with pytest.raises(theseus.InvalidArgumentError, match="input_shape") as err:
                theseus.tree(net, input_shape=shape)
            assert words in str(err.value) and len(str(err.value)) < 700, (shape, str(err.value))
        assert _snapshot(backend, net) == before

    @requires("hooks", "wrap")
    def test_features_refuses_bad_input_shapes(self, net, backend):
        before = _snapshot(backend, net)
        for shape, words in BAD_SHAPES:
            with pytest.raises(theseus.InvalidArgumentError, match="input_shape") as err:
                theseus.features(net, input_shape=shape)
            assert words in str(err.value), (shape, str(err.value))
        assert _snapshot(backend, net) == before

    @requires("hooks")
    @pytest.mark.parametrize("shape", [(1, 3), (1, 5, 32, 32)])
    def test_a_probe_the_model_cannot_run_names_input_shape(self, net, backend, shape):
        before = _snapshot(backend, net)
        with pytest.raises(theseus.InvalidArgumentError, match=r"probe forward on zeros of shape"):
            theseus.tree(net, input_shape=shape)
        assert _snapshot(backend, net) == before
        assert "->" not in theseus.tree(net)  # no shape was left behind by the failed probe

    @requires("hooks", "wrap")
    def test_features_refuses_non_integer_out_indices(self, net, backend):
        for value in (True, 2.5, "2", [1, 2.0], [True], {1: 2}, np.array([1.5])):
            with pytest.raises(theseus.InvalidArgumentError, match="out_indices"):
                theseus.features(net, out_indices=value, input_shape=(1, 3, 64, 64))

    @requires("hooks", "wrap")
    def test_features_takes_numpy_integers(self, net):
        by_numpy = theseus.features(net, out_indices=[np.int64(1), np.int32(-1)], input_shape=(1, 3, 64, 64))
        by_int = theseus.features(net, out_indices=[1, -1], input_shape=(1, 3, 64, 64))
        assert by_numpy.feature_info == by_int.feature_info and len(by_int.feature_info) == 2
        last = theseus.features(net, out_indices=np.int64(2), input_shape=(1, 3, 64, 64))
        assert last.feature_info.names() == theseus.features(net, out_indices=2,
                                                             input_shape=(1, 3, 64, 64)).feature_info.names()

    @requires("state")
    def test_load_state_refuses_non_numeric_weights(self, net, backend):
        before = theseus.state(net)
        for value, words in BAD_WEIGHTS:
            weights = {k: v + 1 for k, v in before.items()}
            weights["fc.bias"] = value
            with pytest.raises(theseus.InvalidArgumentError) as err:
                theseus.load_state(net, weights)
            assert "fc.bias" in str(err.value) and words in str(err.value)
            after = theseus.state(net)
            assert all(np.array_equal(after[k], before[k]) for k in before), "a refused load wrote weights"

    @requires("hooks")
    def test_pattern_arguments_of_the_wrong_kind(self, net, backend):
        before = _snapshot(backend, net)
        for patterns, words in [
            (b"blocks", "got bytes b'blocks'"),
            ([b"blocks"], "got bytes b'blocks'"),
            (np.array("blocks[0]"), "got an array"),
            (np.array(["blocks[0]", "blocks[1]"]), "got an array"),
            (5, "got int 5"),
            ([["blocks[0]"]], "got list"),
            ({"blocks[0]": 1}, "got dict"),
        ]:
            for op in (lambda: theseus.resolve(net, patterns), lambda: theseus.update_res(net, patterns),
                       lambda: theseus.upgrade_sublayer(net, patterns, lambda layer, p: layer)):
                with pytest.raises(theseus.InvalidArgumentError) as err:
                    op()
                assert words in str(err.value), str(err.value)
        assert _snapshot(backend, net) == before

    @requires("hooks")
    def test_return_patterns_array_is_refused(self, mobilenet):
        with pytest.raises(theseus.InvalidArgumentError, match="return_patterns"):
            mobilenet(scale=0.25, class_num=10, return_patterns=np.array(["blocks[0]"]))

    def test_huge_integers_are_syntax_errors(self, net):
        for text in ["blocks[" + "9" * 5000 + "]", "blocks[1:" + "9" * 5000 + "]", "blocks[-" + "9" * 5000 + ":]",
                     "blocks." + "9" * 5000, "blocks[" + "9" * 19 + "]"]:
            with pytest.raises(theseus.DescriptorSyntaxError, match="digits is too large") as err:
                theseus.resolve(net, text)
            assert len(str(err.value)) < 800

    def test_huge_glob_is_bounded(self, net):
        import time

        for text in ["*" * 100_000, "a*" * 50_000, "blocks[*]." + "?" * 99_990]:
            start = time.perf_counter()
            with pytest.raises(theseus.DescriptorSyntaxError) as err:
                theseus.resolve(net, text)
            assert time.perf_counter() - start < 1.0
            assert len(str(err.value)) < 800

    def test_hand_built_descriptors(self, net):
        good = Descriptor((Attr("blocks"), Index(0)))
        assert list(theseus.resolve(net, good)) == ["blocks[0]"]
        for bad in (lambda: Descriptor(("blocks", 0)), lambda: Descriptor([Attr("blocks")]),
                    lambda: Attr("blocks.0"), lambda: Attr(""), lambda: Index("0"), lambda: Index(True),
                    lambda: Index(10**30)):
            with pytest.raises(theseus.InvalidArgumentError, match="theseus.parse"):
                bad()


# -- fuzz ---------------------------------------------------------------------------------

def _strategies():
    from hypothesis import strategies as st

    names = st.sampled_from(["blocks", "conv", "bn", "fc", "depthwise_conv", "pointwise_conv", "relu", "avg_pool",
                             "flatten", "nope", "*", "b*", "?onv", "_x", "conv1"])
    ints = st.one_of(st.integers(-20, 20), st.integers(-10**25, 10**25))
    step = st.one_of(
        names.map(lambda n: "." + n), ints.map(lambda i: f"[{i}]"), ints.map(lambda i: f".{i}"),
        st.just("[*]"), st.just(".**"), st.tuples(st.one_of(st.none(), ints), st.one_of(st.none(), ints)).map(
            lambda t: f"[{'' if t[0] is None else t[0]}:{'' if t[1] is None else t[1]}]"),
        st.text(alphabet="\"'\\ab", max_size=4).map(lambda k: f'["{k}"]'),
    )
    structured = st.tuples(names, st.lists(step, max_size=5)).map(lambda t: t[0] + "".join(t[1]))
    noise = st.text(alphabet=" .[]*:-?\"'\\09abz_\t\n\x00é", max_size=30)
    descriptor = st.one_of(structured, structured, noise)
    junk = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.binary(max_size=8), st.booleans(),
                     st.just(np.array("blocks[0]")), st.just(np.array(["blocks[0]"])), st.just(object()),
                     st.just(Descriptor(())), st.just({"blocks[0]": "x"}))
    pattern_arg = st.one_of(descriptor, st.lists(descriptor, max_size=4), junk, st.lists(st.one_of(descriptor, junk),
                                                                                         max_size=3))
    return st, descriptor, junk, pattern_arg


def _fuzz(test):
    from hypothesis import HealthCheck, settings

    return settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))(test)


class BaseFuzzTests(Gated):
    """Every operation, fed generated descriptors and arguments: it succeeds or raises a
    ``TheseusError``; a failing call leaves the model exactly as it was."""

    def _run(self, backend, model, call, cleanup=None):
        before = _snapshot(backend, model)
        try:
            call()
        except theseus.TheseusError as err:
            assert len(str(err)) < 3000, "an error message echoes too much input"
            assert _snapshot(backend, model) == before, "a failing call changed the model"
        finally:
            if cleanup is not None:
                cleanup()

    @requires("hooks", "wrap", "freeze", "state", "train_eval")
    def test_fuzz_pattern_operations(self, mobilenet, backend):
        from hypothesis import given

        st, descriptor, junk, pattern_arg = _strategies()
        model = set_eval(backend, mobilenet(scale=0.25, class_num=10))
        ops = {
            "resolve": lambda p: theseus.resolve(model, p),
            "stop_after": lambda p: theseus.stop_after(model, p),
            "update_res": lambda p: theseus.update_res(model, p),
            "upgrade_sublayer": lambda p: theseus.upgrade_sublayer(model, p, lambda layer, pat: backend.identity()),
            "extract": lambda p: theseus.extract(model, p),
            "freeze": lambda p: theseus.freeze(model, p, norm_eval=True),
            "unfreeze": lambda p: theseus.unfreeze(model, p),
            "freeze_before": lambda p: theseus.freeze_before(model, p),
            "load_state_prefix": lambda p: theseus.load_state(model, {}, strict=False, prefix=p),
            "parse": lambda p: theseus.parse(p),
        }
        clean = theseus.list_descriptors(model)

        @_fuzz
        @given(st.sampled_from(sorted(ops)), pattern_arg)
        def check(op, arg):
            def cleanup():
                theseus.reset(model)
                theseus.unfreeze(model)
            self._run(backend, model, lambda: ops[op](arg), cleanup)
            assert theseus.list_descriptors(model) == clean

        check()

    @requires("hooks", "wrap")
    def test_fuzz_features_and_tree_arguments(self, mobilenet, backend):
        from hypothesis import given

        st, descriptor, junk, _ = _strategies()
        model = set_eval(backend, mobilenet(scale=0.25, class_num=10))
        dims = st.one_of(st.integers(-2, 40), st.integers(10**6, 10**12), st.floats(0, 40), st.booleans(),
                         st.just(np.int64(32)), st.none(), st.text(max_size=2))
        shapes = st.one_of(st.lists(dims, max_size=6), st.tuples(st.just(1), st.just(3), dims, dims), junk)
        indices = st.one_of(st.none(), st.integers(-8, 8), st.lists(st.integers(-8, 8), max_size=4),
                            st.lists(st.one_of(st.floats(), st.booleans(), st.just(np.int64(1))), max_size=3), junk)

        @_fuzz
        @given(shapes, indices, st.one_of(st.none(), st.lists(descriptor, max_size=3)))
        def check(shape, out_indices, stages):
            self._run(backend, model, lambda: theseus.features(model, out_indices=out_indices, stages=stages,
                                                               input_shape=shape))
            self._run(backend, model, lambda: theseus.tree(model, input_shape=shape))

        check()

    @requires("state")
    def test_fuzz_load_state_weights(self, mobilenet, backend):
        from hypothesis import given

        st, descriptor, junk, _ = _strategies()
        model = mobilenet(scale=0.25, class_num=10)
        reference = theseus.state(model)
        hashable = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.booleans())
        keys = st.one_of(st.sampled_from(sorted(reference)), descriptor.map(lambda d: d + ".weight"), hashable)
        values = st.one_of(st.sampled_from([v for v in reference.values()]), junk,
                           st.lists(st.one_of(st.floats(), st.text(max_size=3)), max_size=3),
                           st.just(np.ones(2, np.complex64)), st.just(np.array(["1.5"])))

        @_fuzz
        @given(st.dictionaries(keys, values, max_size=4), st.booleans())
        def check(weights, strict):
            before = theseus.state(model)
            try:
                theseus.load_state(model, weights, strict=strict)
            except theseus.TheseusError:
                after = theseus.state(model)
                assert all(np.array_equal(after[k], before[k]) for k in before), "a failing load changed weights"

        check()
