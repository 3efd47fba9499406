"""Numeric agreement with the framework-free oracle, and neutral weights in and out."""

from __future__ import annotations

import numpy as np
import pytest

import theseus

from . import _expected as E
from theseus._layout import OPTIONAL_ROLES

from ._fixtures import Gated, requires, skip_unless
from .oracle import neutral_weights, oracle_net

def _optional(key: str) -> bool:
    return key.rpartition(".")[2] in OPTIONAL_ROLES


# Agreement with the oracle is judged by scale (theseus.assert_agree, default tolerances):
# float32 round-off grows with the magnitude of the values, a fixed atol does not.


@requires("state")
class BaseStateTests(Gated):
    def test_state_names_and_layouts(self, net):
        sd = theseus.state(net)
        # the 137 neutral tensors, plus optional roles only some frameworks keep (torch BN's
        # num_batches_tracked), in the framework's own order
        assert sorted(k for k in sd if not _optional(k)) == sorted(neutral_weights())
        assert {k.rpartition(".")[0] for k in sd if _optional(k)} <= {k.rpartition(".")[0] for k in sd
                                                                        if k.endswith(".running_var")}
        assert sd["blocks[0].depthwise_conv.conv.weight"].shape == (32, 1, 3, 3)
        assert sd["blocks[12].pointwise_conv.conv.weight"].shape == (1024, 1024, 1, 1)
        assert sd["fc.weight"].shape == (1000, 1024) and sd["fc.bias"].shape == (1000,)
        assert sorted(k.rpartition(".")[2] for k in sd if k.startswith("conv.bn.") and not _optional(k)) == [
            "bias", "running_mean", "running_var", "weight"]

    def test_load_then_state_round_trips_exactly(self, net):
        w = neutral_weights()
        report = theseus.load_state(net, w)
        assert report.ok and len(report.loaded) == 137
        got = {k: v for k, v in theseus.state(net).items() if not _optional(k)}
        assert sorted(got) == sorted(w)
        for k in w:
            np.testing.assert_array_equal(got[k], w[k])

    def test_native_dotted_keys_are_accepted(self, net):
        w = {k.replace("[", ".").replace("]", ""): v for k, v in neutral_weights().items()}
        assert theseus.load_state(net, w).ok

    def test_mismatch_is_an_error_and_loads_nothing(self, net):
        before = theseus.state(net)
        bad = neutral_weights()
        bad["fc.weight"] = bad["fc.weight"][:10]
        bad["extra.weight"] = np.zeros(3, np.float32)
        del bad["conv.bn.running_var"]
        with pytest.raises(theseus.StateMismatchError) as info:
            theseus.load_state(net, bad)
        r = info.value.report
        assert r.missing == ["conv.bn.running_var"] and r.unexpected == ["extra.weight"]
        assert r.mismatched == {"fc.weight": ((1000, 1024), (10, 1024))} and r.loaded == []
        after = theseus.state(net)
        assert all(np.array_equal(before[k], after[k]) for k in before)

    def test_partial_loads(self, mobilenet, net):
        small = mobilenet(class_num=10)
        r = theseus.load_state(small, neutral_weights(), skip_mismatched=True)
        assert list(r.mismatched) == ["fc.weight", "fc.bias"] and len(r.loaded) == 135
        r = theseus.load_state(net, {k: v for k, v in neutral_weights().items() if k.startswith("blocks")},
                               prefix="blocks")
        assert r.ok and len(r.loaded) == 13 * 2 * 5 and all(k.startswith("conv") or k.startswith("fc")
                                                           for k in r.skipped)
        r = theseus.load_state(net, {"fc.bias": np.zeros(1000, np.float32)}, strict=False)
        assert r.loaded == ["fc.bias"] and len(r.missing) == 136


@requires("state", "hooks")
class BaseNumericTests(Gated):
    @pytest.fixture(scope="class")
    def oracle(self, backend):
        """Oracle outputs on the seeded weights (computed once per class). Class-scoped, so it
        runs before ``Gated``'s check: it skips itself on a backend without the capabilities."""
        skip_unless(backend, BaseNumericTests._theseus_requires)
        w = neutral_weights()
        x = np.random.RandomState(7).standard_normal((2, 3, 224, 224)).astype(np.float32)
        ref = oracle_net(w)
        rb = theseus.backend_of(ref)
        run = lambda m: rb.to_numpy(m(x)) if not isinstance(m(x), dict) else {k: rb.to_numpy(v) for k, v in m(x).items()}  # noqa: E731
        out = {"x": x, "logits": run(ref)}
        theseus.update_res(ref, E.RETURN_PATTERNS)
        out["update_res"] = {k: rb.to_numpy(v) for k, v in ref(x).items()}
        theseus.reset(ref)
        for d in (E.STOP_AFTER, "blocks[5]", "blocks[12].pointwise_conv.bn"):
            theseus.stop_after(ref, d)
            out[d] = rb.to_numpy(ref(x))
            theseus.reset(ref)
        return out

    @pytest.fixture
    def loaded(self, net):
        theseus.load_state(net, neutral_weights())
        return net

    def test_logits(self, loaded, run, oracle):
        theseus.assert_agree(run(loaded, oracle["x"]), oracle["logits"], name="logits")

    def test_update_res_features(self, loaded, run, oracle):
        theseus.update_res(loaded, E.RETURN_PATTERNS)
        out = run(loaded, oracle["x"])
        assert list(out) == list(oracle["update_res"])
        theseus.assert_agree(out, oracle["update_res"], name="update_res")

    @pytest.mark.parametrize("descriptor", [E.STOP_AFTER, "blocks[5]", "blocks[12].pointwise_conv.bn"])
    def test_stop_after_outputs(self, loaded, run, oracle, descriptor):
        theseus.stop_after(loaded, descriptor)
        theseus.assert_agree(run(loaded, oracle["x"]), oracle[descriptor], name=f"stop_after({descriptor})")

    @requires("wrap")
    def test_features(self, loaded, run, oracle):
        outs = run(theseus.features(loaded, out_indices=[0, 1, 2, 3]), oracle["x"])
        theseus.assert_agree(list(outs), [oracle["update_res"][k] for k in E.RETURN_PATTERNS], name="features")
