"""Complete, honest, atomic neutral state on torch, paddle and MindSpore (issue 8, 14.4).

The per-framework test model (tests/_state_models.py) holds a root-level parameter, a
per-block scale, Embedding, LayerNorm, multi-head attention, PReLU, GroupNorm, BatchNorm1d
and Linear. Paddle and MindSpore share this process through theseus_mindspore's oneDNN
preload (the model builder imports mindspore through it).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import theseus
from _state_models import FRAMEWORKS, VOCAB, build, framework_count, random_state, run

IDS = np.random.RandomState(1).randint(0, VOCAB, (2, 5))


def _native_names(fw, net):
    if fw == "mindspore":
        return [n for n, _ in net.parameters_and_names()]
    return list(net.state_dict())


@pytest.fixture(params=FRAMEWORKS)
def fw(request):
    return request.param


@pytest.fixture
def loaded(fw):
    """A model of ``fw`` holding seeded random values in every tensor."""
    net = build(fw)
    assert theseus.load_state(net, random_state(theseus.state(net))).ok
    return net


def test_state_holds_every_native_tensor(fw):
    net = build(fw)
    sd = theseus.state(net)
    layout = theseus.state_layout(net)
    assert [e.key for e in layout] == list(sd)
    covered = [n for e in layout for n in e.native]
    assert sorted(covered) == sorted(_native_names(fw, net))      # nothing dropped, nothing twice
    assert len(covered) == framework_count(fw, net)
    # paddle fuses q/k/v into in_proj (2 neutral tensors from 6 native ones per attention)
    assert len(sd) == framework_count(fw, net) - (8 if fw == "paddle" else 0)
    expected = {"cls_token": (1, 1, 8), "embed.weight": (10, 8), "blocks[0].gamma": (8,),
                "blocks[1].norm.weight": (8,), "blocks[0].attn.in_proj_weight": (24, 8),
                "blocks[0].attn.in_proj_bias": (24,), "blocks[0].attn.out_proj.weight": (8, 8),
                "blocks[0].act.weight": (1,), "gn.weight": (8,), "gn.bias": (8,), "bn.running_var": (8,),
                "head.weight": (4, 8)}
    assert {k: sd[k].shape for k in expected} == expected


def test_state_into_a_fresh_instance_gives_bitwise_equal_outputs(fw, loaded):
    fresh = build(fw)
    assert not np.array_equal(run(fw, fresh, IDS), run(fw, loaded, IDS))
    report = theseus.load_state(fresh, theseus.state(loaded))
    assert report.ok and not report.missing and len(report.loaded) == len(theseus.state(loaded))
    np.testing.assert_array_equal(run(fw, fresh, IDS), run(fw, loaded, IDS))


@pytest.mark.parametrize("src, dst", [p for p in itertools.permutations(FRAMEWORKS, 2)],
                         ids=lambda f: f)
def test_port_across_frameworks_agrees_under_the_judge(src, dst):
    a = build(src)
    theseus.load_state(a, random_state(theseus.state(a)))
    b = build(dst)
    report = theseus.port(a, b)
    assert report.ok and not report.missing and not report.unexpected
    assert report.ignored == (["bn.num_batches_tracked"] if src == "torch" else [])
    assert report.defaulted == (["bn.num_batches_tracked"] if dst == "torch" else [])
    theseus.assert_agree(run(dst, b, IDS), run(src, a, IDS), name=f"{src}->{dst} logits")


def test_load_state_is_atomic_when_writing_fails(fw, loaded, monkeypatch):
    before = theseus.state(loaded)
    backend = theseus.backend_of(loaded)
    calls = []
    original = type(backend).write_tensor

    def failing(self, layer, native, array):
        calls.append(native)
        if len(calls) == 3:
            raise RuntimeError("injected failure on the 3rd tensor")
        return original(self, layer, native, array)

    monkeypatch.setattr(type(backend), "write_tensor", failing)
    new = random_state(before, seed=5)
    with pytest.raises(RuntimeError, match="injected"):
        theseus.load_state(loaded, new)
    monkeypatch.undo()
    after = theseus.state(loaded)
    assert len(calls) > 3                                   # two written, one failed, then restored
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_strict_prefix_and_typo_cases(fw, loaded):
    before = theseus.state(loaded)
    good = random_state(before, seed=3)
    # a prefix that names nothing: an error naming the closest prefixes, nothing loaded
    with pytest.raises(theseus.InvalidArgumentError, match=r"prefix 'blok' matches no weight.*'blocks'"):
        theseus.load_state(loaded, good, prefix="blok")
    # a typo in a key: missing + unexpected under strict, nothing loaded
    typo = dict(good)
    typo["blocks[0].gama"] = typo.pop("blocks[0].gamma")
    with pytest.raises(theseus.StateMismatchError) as info:
        theseus.load_state(loaded, typo)
    assert info.value.report.missing == ["blocks[0].gamma"] and info.value.report.unexpected == ["blocks[0].gama"]
    assert all(np.array_equal(v, before[k]) for k, v in theseus.state(loaded).items())
    # not strict: what fits is loaded, the report is not ok
    r = theseus.load_state(loaded, typo, strict=False)
    assert not r.ok and r.missing == ["blocks[0].gamma"] and "cls_token" in r.loaded
    # a valid prefix loads only that part and reports the rest as skipped
    r = theseus.load_state(loaded, good, prefix="blocks[1]")
    assert r.ok and r.loaded and all(k.startswith("blocks[1].") for k in r.loaded)
    assert "cls_token" in r.skipped
    # a shape mismatch
    bad = dict(good)
    bad["head.weight"] = np.zeros((3, 8), np.float32)
    with pytest.raises(theseus.StateMismatchError, match=r"head.weight model \(4, 8\) vs state \(3, 8\)"):
        theseus.load_state(loaded, bad)
