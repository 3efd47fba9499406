"""extract (IntermediateLayerGetter done right), features (features_only) and freezing."""

from __future__ import annotations

import numpy as np
import pytest

import theseus
from theseus._compare import run_capturing

from . import spec
from ._fixtures import Gated, from_threads, requires, set_eval

STAGES = [
    {"name": "blocks[0]", "channels": 64, "reduction": 2, "index": 0},
    {"name": "blocks[2]", "channels": 128, "reduction": 4, "index": 1},
    {"name": "blocks[4]", "channels": 256, "reduction": 8, "index": 2},
    {"name": "blocks[10]", "channels": 512, "reduction": 16, "index": 3},
    {"name": "blocks[12]", "channels": 1024, "reduction": 32, "index": 4},
]


def _x(shape=(2, 3, 16, 16), seed=3):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


def _executed(backend, model, fn):
    """Descriptors of the layers that started running during ``fn()``, in order."""
    ran = []
    handles = [backend.add_forward_pre_hook(layer, lambda m, i, d=d: ran.append(d))
               for d, layer in theseus.resolve(model, "**").items()]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return ran


@requires("hooks", "wrap")
class BaseExtractTests(Gated):
    LAYERS = {"layer1[0].body[1]": "feat1", "layer1[1]": "feat2", "down[0]": "feat3", "layer2": "feat4"}

    def test_any_depth_any_topology_matches_independent_hooks(self, build, backend, run):
        model = build(spec.RESNETISH)
        set_eval(backend, model)
        x = _x()
        final, independent = run_capturing(model, x, list(self.LAYERS))
        ext = theseus.extract(model, self.LAYERS, include_output=True)
        got = run(ext, x)
        assert list(got) == ["output", "feat1", "feat2", "feat3", "feat4"]
        np.testing.assert_array_equal(got["output"], final[0])
        for d, name in self.LAYERS.items():
            np.testing.assert_array_equal(got[name], independent[d][0])

    def test_list_form_keys_are_canonical_descriptors(self, build, backend, run):
        model = build(spec.RESNETISH)
        set_eval(backend, model)
        got = run(theseus.extract(model, ["layer1.0.body.1", "layer2"]), _x())
        assert list(got) == ["layer1[0].body[1]", "layer2"]
        assert got["layer2"].shape == (2, 16, 4, 4)

    def test_source_model_is_not_changed(self, build, backend, run):
        model = build(spec.RESNETISH)
        set_eval(backend, model)
        x = _x()
        before, descs = run(model, x), theseus.list_descriptors(model)
        ext = theseus.extract(model, self.LAYERS)
        run(ext, x)
        np.testing.assert_array_equal(run(model, x), before)
        assert theseus.list_descriptors(model) == descs
        assert [n for n, _ in backend.children(ext)] == ["model"]

    def test_stops_after_the_last_requested_layer(self, build, backend):
        model = build(spec.RESNETISH)
        ext = theseus.extract(model, ["layer1[1]"])
        ran = _executed(backend, model, lambda: backend.infer(ext, backend.from_numpy(_x())))
        assert "layer1[1]" in ran and ran[-1].startswith("layer1[1]")
        assert not any(d.startswith(("down", "layer2", "avgpool", "fc")) for d in ran)

    def test_bad_input(self, build, backend):
        model = build(spec.RESNETISH)
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.extract(model, ["layer3"])
        with pytest.raises(theseus.InvalidArgumentError, match="matches 2 layers"):
            theseus.extract(model, {"layer1[*]": "x"})
        with pytest.raises(theseus.InvalidArgumentError, match="unique"):
            theseus.extract(model, {"layer1": "x", "layer2": "x"})


@requires("hooks", "wrap")
class BaseFeaturesTests(Gated):
    def test_detected_stages_and_feature_info(self, net, run, image):
        feat = theseus.features(net)
        assert list(feat.feature_info) == STAGES
        assert feat.feature_info.channels() == [64, 128, 256, 512, 1024]
        assert feat.feature_info.reduction() == [2, 4, 8, 16, 32]
        outs = run(feat, image)
        assert [o.shape for o in outs] == [(2, 64, 112, 112), (2, 128, 56, 56), (2, 256, 28, 28),
                                           (2, 512, 14, 14), (2, 1024, 7, 7)]

    @pytest.mark.parametrize("out_indices,names", [
        ([1, 2, 3, 4], ["blocks[2]", "blocks[4]", "blocks[10]", "blocks[12]"]),
        ([-1], ["blocks[12]"]),
        (2, ["blocks[10]", "blocks[12]"]),
        ([3, 0], ["blocks[0]", "blocks[10]"]),       # output is always shallow to deep
    ])
    def test_out_indices(self, net, out_indices, names):
        assert theseus.features(net, out_indices=out_indices).feature_info.names() == names

    @pytest.mark.parametrize("bad", [[5], [-6], 0, 6, ["1"]])
    def test_out_of_range_is_an_error(self, net, bad):
        with pytest.raises(theseus.InvalidArgumentError, match="out"):
            theseus.features(net, out_indices=bad)

    def test_features_equal_update_res_outputs(self, mobilenet, backend, run, image):
        a, b = mobilenet(), mobilenet()
        for m in (a, b):
            set_eval(backend, m)
        x = image[:1]
        outs = run(theseus.features(a, out_indices=[0, 2]), x)
        theseus.update_res(b, ["blocks[0]", "blocks[4]"])
        ref = run(b, x)
        np.testing.assert_array_equal(outs[0], ref["blocks[0]"])
        np.testing.assert_array_equal(outs[1], ref["blocks[4]"])

    def test_no_layer_after_the_deepest_stage_runs(self, net, backend, image):
        feat = theseus.features(net, out_indices=[2])
        ran = _executed(backend, net, lambda: backend.infer(feat, backend.from_numpy(image[:1])))
        assert ran[-1] == "blocks[4].pointwise_conv.relu"
        assert len(ran) == 4 + 1 + 5 * 9    # conv (+3 leaves), blocks, blocks[0..4] (9 layers each)

    def test_feature_model_is_safe_from_threads(self, build, backend, run):
        """8 threads x 50 forwards; theseus serialises the calls where the framework is not
        thread-safe (backends without the 'threads' capability)."""
        model = build(spec.RESNETISH)
        set_eval(backend, model)
        feat = theseus.features(model, input_shape=(1, 3, 16, 16))
        inputs = [_x((1, 3, 16, 16), seed=i) for i in range(8)]
        assert from_threads(lambda x: run(feat, x), inputs, calls=50) == []

    @pytest.mark.parametrize("case", sorted(spec.STAGE_RULE))
    def test_stage_rule(self, build, backend, run, case):
        """The written stage rule on one structure per clause (README "Stage conventions")."""
        structure, expected = spec.STAGE_RULE[case]
        model = build(structure)
        set_eval(backend, model)
        feat = theseus.features(model, input_shape=(1, 3, 32, 32))
        assert [(f["name"], f["channels"], f["reduction"]) for f in feat.feature_info] == expected
        outs = run(feat, _x((2, 3, 32, 32)))
        assert [o.shape[:2] for o in outs] == [(2, c) for _, c, _ in expected]

    def test_explicit_stages(self, build):
        model = build(spec.RESNETISH)
        feat = theseus.features(model, stages=["stem", "layer1", "layer2"], input_shape=(1, 3, 16, 16))
        assert [(f["name"], f["channels"], f["reduction"]) for f in feat.feature_info] == [
            ("stem", 8, 2), ("layer1", 8, 2), ("layer2", 16, 4)]


@requires("freeze", "train_eval")
class BaseFreezeTests(Gated):
    @requires("gradients", "hooks")
    def test_frozen_parameters_get_no_gradient(self, build, backend):
        model = build(spec.RESNETISH)
        names = theseus.freeze(model, ["stem", "layer1[0]"])
        assert names == [n for n, _ in backend.parameters(model) if n.startswith(("stem.", "layer1.0."))]
        grads = backend.gradients(model, backend.from_numpy(_x()))
        assert sorted(n for n, g in grads.items() if not g) == sorted(names)
        assert theseus.unfreeze(model) == []
        assert all(backend.gradients(model, backend.from_numpy(_x())).values())

    @requires("state")
    @requires("hooks")   # the norm layers inside the frozen part are held by a pre-hook
    def test_freeze_before_and_state_keys_unchanged(self, net, backend):
        keys = list(theseus.state(net))
        names = theseus.freeze_before(net, "blocks[1]")
        assert len(names) == 15 and names[0].startswith("conv.") and names[-1].startswith("blocks.1.")
        assert list(theseus.state(net)) == keys
        assert theseus.freeze(net) == [n for n, _ in backend.parameters(net)]

    @requires("hooks", "state")  # norm_eval holds eval mode with a pre-hook
    def test_norm_eval_survives_train_and_keeps_statistics(self, build, backend, run):
        model = build(spec.RESNETISH)
        backend.set_training(model, True)
        theseus.freeze(model, "stem")                 # norms inside the frozen part are held
        backend.set_training(model, True)
        held = theseus.resolve(model, "stem[1]")["stem[1]"]
        free = theseus.resolve(model, "down[1]")["down[1]"]
        before_held, before_free = backend.export_local(held), backend.export_local(free)
        backend.infer(model, backend.from_numpy(_x()))
        assert not backend.is_training(held) and backend.is_training(free)
        np.testing.assert_array_equal(backend.export_local(held)["running_mean"], before_held["running_mean"])
        assert not np.array_equal(backend.export_local(free)["running_mean"], before_free["running_mean"])
        theseus.unfreeze(model)
        backend.set_training(model, True)
        assert backend.is_training(held)


@requires("hooks", "wrap", "train_eval", "state")
class BaseProbeLeavesModelAloneTests(Gated):
    def test_probes_keep_modes_and_statistics(self, build, backend):
        model = build(spec.RESNETISH)
        backend.set_training(model, True)
        held = theseus.resolve(model, "stem[1]")["stem[1]"]
        backend.set_training(held, False, recurse=False)       # a mixed-mode model
        flags = [backend.is_training(m) for m in theseus.resolve(model, "**").values()]
        stats = theseus.state(model)
        theseus.features(model, input_shape=(2, 3, 16, 16))
        theseus.tree(model, input_shape=(2, 3, 16, 16))
        assert [backend.is_training(m) for m in theseus.resolve(model, "**").values()] == flags
        after = theseus.state(model)
        assert all(np.array_equal(stats[k], after[k]) for k in stats)

    @requires("freeze")
    def test_policy_is_reapplied_by_train_and_norm_modes(self, build, backend):
        model = build(spec.RESNETISH)
        backend.set_training(model, True)
        theseus.freeze(model, "stem", norm="eval")
        stem_bn, down_bn = (theseus.resolve(model, d)[d] for d in ("stem[1]", "down[1]"))
        for _ in range(2):                            # a second train() does not undo it
            backend.set_training(model, True)
            assert not backend.is_training(stem_bn) and not backend.is_training(down_bn)
            assert backend.is_training(theseus.resolve(model, "stem[0]")["stem[0]"])
        assert theseus.frozen(model) == [n for n, _ in backend.parameters(model) if n.startswith("stem.")]
        theseus.freeze(model, "layer2", norm="frozen")   # every norm's parameters frozen too
        assert not any(backend.is_trainable(p) for _, p in backend.parameters(down_bn))
        assert backend.is_trainable(dict(backend.parameters(theseus.resolve(model, "down[0]")["down[0]"]))["weight"])

    @requires("freeze", "state")
    def test_reset_undoes_freeze(self, build, backend):
        model = build(spec.RESNETISH)
        backend.set_training(model, True)
        fc_w = dict(backend.parameters(model))
        first = [n for n in fc_w if n.startswith("fc.")][0]
        backend.set_trainable(fc_w[first], False)      # the user's own flag is kept by reset
        keys = list(theseus.state(model))
        theseus.freeze(model, ["stem", "layer1"], norm="frozen")
        assert len(theseus.frozen(model)) > 10 and list(theseus.state(model)) == keys
        theseus.reset(model)
        assert theseus.frozen(model) == [first]
        layers = [model] + list(theseus.resolve(model, "**").values())
        assert all(backend.is_training(m) for m in layers)
        stem_bn = theseus.resolve(model, "stem[1]")["stem[1]"]
        before = backend.export_local(stem_bn)["running_mean"]
        backend.infer(model, backend.from_numpy(_x()))   # no hold left: statistics move again
        assert not np.array_equal(backend.export_local(stem_bn)["running_mean"], before)
        backend.set_training(model, False)
        theseus.freeze(model, "stem")
        theseus.reset(model)                            # released to the model's mode (eval)
        assert not any(backend.is_training(m) for m in layers)

    @requires("freeze", "hooks")
    def test_freeze_stages(self, net, backend):
        names = theseus.freeze_stages(net, 1, input_shape=(1, 3, 64, 64))
        assert names == [n for n, _ in backend.parameters(net) if n.startswith(("conv.", "blocks.0.", "blocks.1.", "blocks.2."))]
        theseus.reset(net)
        assert theseus.freeze_stages(net, 0, input_shape=(1, 3, 64, 64)) == [
            n for n, _ in backend.parameters(net) if n.startswith(("conv.", "blocks.0."))]
        theseus.reset(net)
        assert theseus.freeze_stages(net, -1, input_shape=(1, 3, 64, 64)) == []
        for bad in (5, -2, 1.5, True, "1"):
            with pytest.raises(theseus.InvalidArgumentError, match="freeze_stages: n must be"):
                theseus.freeze_stages(net, bad, input_shape=(1, 3, 64, 64))
        with pytest.raises(theseus.InvalidArgumentError, match="norm must be one of"):
            theseus.freeze(net, "conv", norm="off")
        assert theseus.frozen(net) == []


@requires("hooks", "wrap")
class BaseTruncateTests:
    def test_returns_exactly_the_layer_output_and_stops(self, mobilenet, backend, run, image):
        a, b = set_eval(backend, mobilenet()), set_eval(backend, mobilenet())
        theseus.update_res(b, ["blocks[4]"])
        ref = run(b, image)["blocks[4]"]
        cut = theseus.truncate(a, "blocks[4]")
        np.testing.assert_array_equal(run(cut, image), ref)
        ran = _executed(backend, a, lambda: backend.infer(cut, backend.from_numpy(image[:1])))
        assert ran[-1] == "blocks[4].pointwise_conv.relu"
        assert theseus.list_descriptors(a) == theseus.list_descriptors(b)   # source unchanged
        assert run(a, image).shape == (2, 1000)

    def test_bad_input(self, net):
        with pytest.raises(theseus.LayerNotFoundError, match="pattern"):
            theseus.truncate(net, "blocks[*]")
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.truncate(net, "blocks[13]")
        with pytest.raises(theseus.InvalidArgumentError):
            theseus.truncate(net, 3)


@requires("hooks", "wrap")
class BaseStageRuleTests:
    def test_resnetish_stages_are_stage_containers(self, build):
        model = build(spec.RESNETISH)
        info = theseus.features(model, input_shape=(1, 3, 16, 16)).feature_info
        assert [(f["name"], f["channels"], f["reduction"]) for f in info] == [("layer1", 8, 2), ("layer2", 16, 4)]

    @requires("freeze", "train_eval")
    def test_freeze_stages_counts_the_stem(self, build, backend):
        model = build(spec.RESNETISH)
        names = theseus.freeze_stages(model, 0, input_shape=(1, 3, 16, 16))
        assert names == [n for n, _ in backend.parameters(model) if n.startswith(("stem.", "layer1."))]
        theseus.reset(model)
        names = theseus.freeze_stages(model, 1, input_shape=(1, 3, 16, 16))
        assert names == [n for n, _ in backend.parameters(model) if not n.startswith("fc.")]


@requires("layouts")
class BaseLayoutTests:
    """The tensor operations ``features`` uses on token and channels-last maps."""

    def test_permute_reshape_slice(self, backend):
        x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)          # (B, N, C) tokens
        tokens = backend.slice_from(backend.from_numpy(x), 1, 1)             # drop a class token
        np.testing.assert_array_equal(backend.to_numpy(tokens), x[:, 1:])
        grid = backend.reshape(tokens, (2, 2, 2, 3))                         # (B, H, W, C)
        np.testing.assert_array_equal(backend.to_numpy(grid), x[:, 1:].reshape(2, 2, 2, 3))
        nchw = backend.permute(grid, (0, 3, 1, 2))
        np.testing.assert_array_equal(backend.to_numpy(nchw), x[:, 1:].reshape(2, 2, 2, 3).transpose(0, 3, 1, 2))
        assert backend.shape(backend.reshape(tokens, (2, -1))) == (2, 12)
