"""The seed's operations (stop_after, update_res, upgrade_sublayer) and reset, with the
seed's exact outcomes, atomicity and thread safety, on every backend."""

from __future__ import annotations


import numpy as np
import pytest

import theseus

from . import _expected as E
from . import spec
from ._fixtures import Gated, from_threads, requires, set_eval


def _types(backend, model):
    return [(d, backend.type_name(layer)) for d, layer in theseus.resolve(model, "**").items()]


def _small(n=2, c=3, hw=8, seed=1):
    return np.random.RandomState(seed).standard_normal((n, c, hw, hw)).astype(np.float32)


class BaseStopAfterTests(Gated):
    def test_seed_identity_set_and_shape(self, net, backend, run, image):
        replaced = theseus.stop_after(net, E.STOP_AFTER)
        assert replaced == E.STOP_AFTER_IDENTITIES
        types = dict(_types(backend, net))
        assert [d for d in E.STOP_AFTER_IDENTITIES if types[d] == "Identity"] == E.STOP_AFTER_IDENTITIES
        assert types[E.STOP_AFTER] != "Identity"
        assert run(net, image).shape == E.STOP_AFTER_SHAPE

    @requires("hooks")  # the expected value is captured with update_res
    def test_output_is_the_named_layers_output(self, mobilenet, backend, run, image):
        full = mobilenet()
        set_eval(backend, full)
        theseus.update_res(full, ["blocks[5]"])
        expected = run(full, image)["blocks[5]"]
        cut = mobilenet()
        set_eval(backend, cut)
        theseus.stop_after(cut, "blocks[5]")
        np.testing.assert_array_equal(run(cut, image), expected)

    def test_nested_index_touches_only_what_follows(self, build, backend):
        model = build(spec.NESTED)
        before = dict(_types(backend, model))
        replaced = theseus.stop_after(model, "stages[1][0]")
        assert replaced == ["stages[1][1]", "stages[1][2]", 'heads["cls"]', 'heads["box"]', "res"]
        after = dict(_types(backend, model))
        changed = sorted(d for d in after if before.get(d) != after[d])
        assert changed == sorted(replaced)
        assert after["stages[0]"] == before["stages[0]"]

    def test_container_siblings_keep_their_place(self, build, backend, run):
        model = build(spec.NESTED)
        replaced = theseus.stop_after(model, "stages[0]")
        assert replaced == ["stages[1][0]", "stages[1][1]", "stages[1][2]", 'heads["cls"]', 'heads["box"]', "res"]
        types = dict(_types(backend, model))
        assert types["stages[1]"] != "Identity" and types["heads"] != "Identity"
        assert run(model, np.ones((2, 3, 8, 8), np.float32)).shape == (2, 4, 8, 8)

    def test_failing_call_changes_nothing(self, net, backend):
        before = _types(backend, net)
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.stop_after(net, "blocks[13]")
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.stop_after(net, "blocks[*]")
        assert _types(backend, net) == before

    def test_method_returns_bool_and_warns(self, net):
        assert net.stop_after(stop_layer_name="blocks[0].depthwise_conv.conv") is True
        with pytest.warns(theseus.TheseusWarning, match="index 99 is out of range"):
            assert net.stop_after("blocks[99]") is False


@requires("hooks")
class BaseUpdateResTests(Gated):
    def test_seed_keys_order_and_shapes(self, net, run, image):
        got = theseus.update_res(net, E.RETURN_PATTERNS)
        assert list(got) == E.RETURN_PATTERNS
        assert all(got[d] is theseus.resolve(net, d)[d] for d in E.RETURN_PATTERNS)
        out = run(net, image)
        assert list(out) == list(E.RETURN_SHAPES)
        assert {k: v.shape for k, v in out.items()} == E.RETURN_SHAPES

    def test_method_and_constructor_argument(self, mobilenet, backend, run, image):
        a = mobilenet(return_patterns=E.RETURN_PATTERNS)
        b = mobilenet()
        assert list(b.update_res(return_patterns=E.RETURN_PATTERNS)) == E.RETURN_PATTERNS
        for m in (a, b):
            set_eval(backend, m)
        oa, ob = run(a, image), run(b, image)
        assert list(oa) == list(ob) == list(E.RETURN_SHAPES)
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k])

    def test_order_follows_the_patterns(self, net, run, image):
        theseus.update_res(net, ["blocks[4]", "conv", "blocks[0:2]"])
        assert list(run(net, image[:1])) == ["output", "blocks[4]", "conv", "blocks[0]", "blocks[1]"]

    def test_recalling_replaces_never_accumulates(self, net, run, image):
        x = image[:1]
        plain = run(net, x)
        for _ in range(5):
            theseus.update_res(net, ["blocks[0]", "blocks[2]"])
        theseus.update_res(net, ["blocks[3]"])
        out = run(net, x)
        assert list(out) == ["output", "blocks[3]"]
        np.testing.assert_array_equal(out["output"], plain)
        assert theseus.update_res(net, []) == {}
        np.testing.assert_array_equal(run(net, x), plain)

    def test_captured_values_are_the_layers_outputs(self, build, backend, run):
        model = build(spec.NESTED)
        x = _small()
        theseus.update_res(model, ["stages[0]", "heads.cls"])
        out = run(model, x)
        theseus.reset(model)
        theseus.stop_after(model, "stages[0]")
        np.testing.assert_array_equal(out["stages[0]"], run(model, x))

    @requires("threads")
    def test_threads_each_get_their_own_features(self, build, backend, run):
        model = build(spec.NESTED)
        set_eval(backend, model)
        theseus.update_res(model, ["stages[0]", "stages[1]", "res"])
        inputs = [_small(n=1, seed=i) for i in range(8)]
        assert from_threads(lambda x: run(model, x), inputs, calls=50) == []

    def test_bad_pattern_changes_nothing(self, net, run, image):
        theseus.update_res(net, ["blocks[0]"])
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.update_res(net, ["blocks[2]", "blocks[42]"])
        assert list(run(net, image[:1])) == ["output", "blocks[0]"]


class BaseUpgradeTests(Gated):
    def _seed_func(self, build):
        def rep_func(layer, pattern):
            c = E.UPGRADE_CHANNELS[pattern]
            return build(["conv", c, c, 5, 1, 2, 1, True])

        return rep_func

    def test_seed_upgrade(self, net, build, run, image):
        got = theseus.upgrade_sublayer(net, E.UPGRADE_PATTERNS, self._seed_func(build))
        assert list(got) == E.UPGRADE_PATTERNS
        now = theseus.resolve(net, E.UPGRADE_PATTERNS)
        assert all(now[d] is got[d] for d in E.UPGRADE_PATTERNS)
        assert run(net, image[:1]).shape == (1, 1000)

    def test_method_api(self, net, build):
        got = net.upgrade_sublayer(layer_name_pattern=E.UPGRADE_PATTERNS, handle_func=self._seed_func(build))
        assert list(got) == E.UPGRADE_PATTERNS

    def test_named_sequence_keeps_names_order_and_runs_new_layer(self, build, backend, run):
        model = build(spec.NAMED_SEQ)  # a: identity, b: relu, c: identity
        x = _small()
        np.testing.assert_array_equal(run(model, x), np.maximum(x, 0))
        got = theseus.upgrade_sublayer(model, "[1]", lambda layer, p: build(["identity"]))
        assert list(got) == ["[1]"]
        assert [n for n, _ in backend.children(model)] == ["a", "b", "c"]
        assert [backend.type_name(m) for _, m in backend.children(model)] == ["Identity"] * 3
        np.testing.assert_array_equal(run(model, x), x)
        theseus.reset(model)
        np.testing.assert_array_equal(run(model, x), np.maximum(x, 0))

    def test_replaced_layer_is_the_one_that_runs(self, build, backend, run):
        model = build(["seq", [["relu"], ["identity"]]])
        x = _small()
        assert run(model, x).min() >= 0
        theseus.upgrade_sublayer(model, "[0]", lambda layer, p: build(["identity"]))
        np.testing.assert_array_equal(run(model, x), x)

    def test_failing_handle_func_changes_nothing(self, net, backend):
        before = _types(backend, net)

        def boom(layer, pattern):
            if pattern.endswith("[12].depthwise_conv.conv"):
                raise RuntimeError("boom")
            return layer

        with pytest.raises(RuntimeError, match="boom"):
            theseus.upgrade_sublayer(net, E.UPGRADE_PATTERNS, boom)
        with pytest.raises(theseus.InvalidReplacementError, match="must return"):
            theseus.upgrade_sublayer(net, E.UPGRADE_PATTERNS, lambda layer, p: "not a layer")
        with pytest.raises(theseus.InvalidReplacementError, match="both match"):
            theseus.upgrade_sublayer(net, ["blocks[0]", "blocks[0].pointwise_conv"], lambda layer, p: layer)
        assert _types(backend, net) == before


class BaseResetTests(Gated):
    @requires("hooks")
    def test_reset_restores_everything(self, net, build, backend, run, image):
        x = image[:1]
        before_out = run(net, x)
        before_types = _types(backend, net)
        theseus.upgrade_sublayer(net, E.UPGRADE_PATTERNS, BaseUpgradeTests()._seed_func(build))
        theseus.stop_after(net, "blocks[11]")
        theseus.update_res(net, ["blocks[0]", "blocks[11]"])
        theseus.reset(net)
        assert _types(backend, net) == before_types
        np.testing.assert_array_equal(run(net, x), before_out)

    def test_reset_after_stop_after(self, net, backend, run, image):
        x = image[:1]
        before = run(net, x)
        theseus.stop_after(net, E.STOP_AFTER)
        theseus.stop_after(net, "conv")
        theseus.reset(net)
        np.testing.assert_array_equal(run(net, x), before)

    def test_reset_untouched_model_is_a_no_op(self, net, backend):
        before = _types(backend, net)
        theseus.reset(net)
        assert _types(backend, net) == before


class BaseBadInputTests(Gated):
    @pytest.mark.parametrize("text,error,fragment", E.BAD_DESCRIPTORS)
    def test_bad_descriptor(self, net, backend, weight_name, bias_name, text, error, fragment):
        text = text.format(weight=weight_name, bias=bias_name)
        before = _types(backend, net)
        for op in (
            lambda: theseus.resolve(net, text),
            lambda: theseus.stop_after(net, text),
            lambda: theseus.update_res(net, ["blocks[0]", text]),
            lambda: theseus.upgrade_sublayer(net, text, lambda layer, p: layer),
        ):
            with pytest.raises(theseus.TheseusError) as info:
                op()
            assert type(info.value).__name__ == error
            assert fragment in str(info.value)
        assert _types(backend, net) == before

    def test_not_found_names_prefix_children_and_suggestions(self, net):
        with pytest.raises(theseus.LayerNotFoundError) as info:
            theseus.resolve(net, "blocks[0].depthwise_conv.cnv")
        err = info.value
        assert err.resolved == "blocks[0].depthwise_conv"
        assert err.children == ("blocks[0].depthwise_conv.conv", "blocks[0].depthwise_conv.bn",
                                "blocks[0].depthwise_conv.relu")
        assert err.suggestions[0] == "blocks[0].depthwise_conv.conv"

    @pytest.mark.parametrize("bad", [3, None, ["blocks[0]", 7]])
    def test_wrong_types(self, net, bad):
        with pytest.raises(theseus.TheseusError):
            theseus.resolve(net, bad)


@requires("hooks")
class BaseCaptureFollowsSurgeryTests(Gated):
    def test_capture_follows_a_replaced_layer(self, build, backend, run):
        model = build(["seq", [["relu"], ["identity"]]])
        x = _small()
        theseus.update_res(model, ["[0]"])
        np.testing.assert_array_equal(run(model, x)["[0]"], np.maximum(x, 0))
        theseus.upgrade_sublayer(model, "[0]", lambda layer, p: build(["identity"]))
        out = run(model, x)
        assert list(out) == ["output", "[0]"]
        np.testing.assert_array_equal(out["[0]"], x)

    def test_capture_of_a_removed_layer_says_so(self, net, image):
        theseus.update_res(net, ["blocks[11].depthwise_conv.conv"])
        theseus.stop_after(net, "blocks[5]")
        backend = theseus.backend_of(net)
        with pytest.raises(Exception, match=r"blocks\[11\]\.depthwise_conv\.conv did not run"):
            backend.infer(net, backend.from_numpy(image[:1]))
