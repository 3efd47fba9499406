"""compare's tolerance model: the fan-in estimate judges every output first; the source's
float64 round-off is measured only for the outputs the estimate flags, and
``noise = max(estimate, measured)`` (so a float64 re-run can clear an output, never flag one).
Each judged output names the term that set its noise; verdicts equal those of measuring every
output (``float64="always"``). Certificates: float32 digests judged with their rounding bound.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import theseus_mindspore  # noqa: F401  (MindSpore's oneDNN first: paddle and mindspore in one process)
import torch  # noqa: E402

import theseus  # noqa: E402
from theseus import judge, make_input, record  # noqa: E402
from theseus._certificate import digest, digest_error  # noqa: E402
from theseus._compare import FAN_IN, FLOAT64, ON_SUSPICION, Recording, ToleranceModel  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import compare_faults as cf  # noqa: E402

SCALE = 2.0
X = make_input((1, 3, 32, 32), 0, SCALE)
# (source, destination): two sources that can run float64, one that cannot (MindSpore)
PAIRS = [("torch", "paddle"), ("paddle", "mindspore"), ("mindspore", "torch")]


@pytest.fixture(scope="module")
def models():
    src = cf.Torch().mobilenet(seed=1, class_num=16)
    cf.randomize_norms(src, 7)
    sd = theseus.state(src)
    out = {"torch": src}
    for name in ("paddle", "mindspore"):
        m = cf.FRAMEWORKS[name]().mobilenet(seed=3, class_num=16)
        theseus.load_state(m, sd)
        out[name] = m
    return out


def _methods(report) -> set:
    return {m.noise_method for r in report.rows for m in (r.acc, r.iso) if m is not None}


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_clean_port_is_judged_on_the_estimate_alone(models, src, dst):
    rec = record(models[src], X)
    assert rec.noise_method == (FAN_IN if src == "mindspore" else ON_SUSPICION)
    report = judge(models[dst], rec)
    assert report.ok and report.worst_ratio() < 1
    assert _methods(report) == {FAN_IN}
    n = sum(1 + (r.iso is not None) for r in report.rows)
    assert f"tolerance: fan-in estimate for {n} of {n} judgments, max(fan-in estimate, float64 re-run) for 0" \
        in report.notes
    assert not any("re-judged" in note for note in report.notes)
    if src != "mindspore":
        assert rec.float64.twin is None and not rec.float64.leaf_twins    # no float64 copy was made
    else:
        assert rec.float64 is None and any("cannot run a float64 copy" in note for note in report.notes)


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_an_estimate_too_small_is_cleared_only_by_the_float64_rerun(models, src, dst):
    """Estimates set to 0 and no floor (tolerance = 16 x the measured round-off alone): some
    outputs of the clean port exceed the estimate's tolerance (0); the float64 re-run of the
    source clears every one of them (sources that can run float64), while the estimate alone
    (or MindSpore, which cannot run float64) keeps them flagged."""
    tm = ToleranceModel(floor=0.0)

    def zeroed(rec):
        for e in rec.entries:
            e.noise_acc = {p: 0.0 for p in e.noise_acc}
            e.noise_iso = {p: 0.0 for p in e.noise_iso}
        rec.output_noise = {p: 0.0 for p in rec.output_noise}
        return rec

    alone = judge(models[dst], zeroed(record(models[src], X, float64=False)), tolerance=tm)
    assert len(alone.flagged) >= 5 and _methods(alone) == {FAN_IN}
    report = judge(models[dst], zeroed(record(models[src], X)), tolerance=tm)
    if src == "mindspore":
        assert [r.src for r in report.flagged] == [r.src for r in alone.flagged]
        return
    assert report.ok, report.table(5)
    suspects = [r for r in report.rows if r.acc.noise_method == FLOAT64
                or (r.iso is not None and r.iso.noise_method == FLOAT64)]
    assert {r.src for r in alone.flagged} <= {r.src for r in suspects}
    assert FAN_IN in _methods(report)                                   # the others were not re-run
    note = next(n for n in report.notes if "re-judged" in n)
    assert note.endswith(f": {len(alone.flagged)} cleared")


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_a_fault_is_confirmed_by_the_float64_rerun_with_the_verdicts_of_measuring_everywhere(models, src, dst):
    fw = cf.FRAMEWORKS[dst]()
    bn = "blocks[3].pointwise_conv.bn"
    undo = cf.inject(fw, models[dst], "eps", bn)
    try:
        lazy = judge(models[dst], record(models[src], X))
        full = judge(models[dst], record(models[src], X, float64="always"))
    finally:
        undo()
    assert lazy.first_divergence == full.first_divergence == bn
    assert "eps differs" in lazy.cause
    assert [r.src for r in lazy.flagged] == [r.src for r in full.flagged]
    f = lazy.first_fault
    first_line = next(ln for ln in lazy.table(3).splitlines() if ln.startswith(">>"))
    assert first_line.endswith("est/est" if src == "mindspore" else "f64/f64")
    if src == "mindspore":
        assert _methods(lazy) == _methods(full) == {FAN_IN}
    else:
        assert f.iso.noise_method == FLOAT64 and f.iso.flagged          # flagged, then confirmed
        assert all(m.noise_method == FLOAT64 for r in lazy.flagged for m in (r.acc, r.iso)
                   if m is not None and m.flagged)
        assert _methods(full) == {FLOAT64} and _methods(lazy) == {FAN_IN, FLOAT64}


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_certificate_tolerances_are_measured_everywhere(models, src, dst, tmp_path):
    """certify measures the float64 round-off of every output (tolerances independent of the
    destination certified); verify says which noise the certificate used, on every row."""
    path = str(tmp_path / "p.tcert")
    report = theseus.certify(models[src], models[dst], path, input_shape=X.shape, scale=SCALE)
    want = FAN_IN if src == "mindspore" else FLOAT64
    assert _methods(report) == {want}
    v = theseus.verify(path, models[dst])
    assert v.ok and _methods(v) == {want}
    assert f"tolerances certified with noise from: {FAN_IN if src == 'mindspore' else FLOAT64}" in v.notes


@pytest.mark.parametrize("src,dst", PAIRS[:2], ids=[f"{a}->{b}" for a, b in PAIRS[:2]])
def test_a_source_changed_after_recording_is_never_measured(models, src, dst):
    """A recording judged after its source changed: the float64 re-run would measure another
    network, so the suspects stay judged on the estimate (flagged) and the report says why."""
    rec = record(models[src], X)
    model = models[src]
    sd = theseus.state(model)
    changed = {k: (v * 1.5 if k == "fc.weight" else v) for k, v in sd.items()}
    fw = cf.FRAMEWORKS[dst]()
    bn = "blocks[3].pointwise_conv.bn"
    theseus.load_state(model, changed)
    undo = cf.inject(fw, models[dst], "eps", bn)
    try:
        report = judge(models[dst], rec)
    finally:
        undo()
        theseus.load_state(model, sd)
    assert report.first_divergence == bn and not report.ok
    assert _methods(report) == {FAN_IN}
    assert any("no longer reproduces its recording" in n for n in report.notes)
    assert rec.float64.twin is None and not rec.float64.leaf_twins


def test_float64_argument_is_checked(models):
    with pytest.raises(theseus.InvalidArgumentError, match="float64 must be"):
        record(models["torch"], X, float64="sometimes")


def test_saved_recording_carries_the_float64_measurement(models, tmp_path):
    rec = record(models["torch"], X)
    path = str(tmp_path / "rec.zip")
    rec.save(path)
    assert rec.noise_method == FLOAT64 and rec.float64 is None
    back = Recording.load(path)
    assert back.noise_method == FLOAT64
    assert all(set(e.f64_acc) == set(e.outputs) for e in back.entries)
    assert all(set(e.f64_iso) == set(e.outputs) for e in back.entries if e.leaf)
    report = judge(models["paddle"], back)
    assert report.ok and _methods(report) == {FLOAT64}


@pytest.mark.parametrize("shape", [(1, 8, 112, 112), (2, 16, 33, 33), (1, 4, 1000), (3, 5), (1, 2, 1, 1)])
def test_digest_rounding_within_its_bound(shape):
    rng = np.random.RandomState(0)
    for a in (rng.standard_normal(shape), np.abs(rng.standard_normal(shape)) + 10,
              rng.standard_normal(shape) * 1e3 + 1e4):
        a = a.astype(np.float32)
        a64 = a.astype(np.float64).reshape(a.shape if a.ndim >= 2 else (1, -1))
        flat = np.moveaxis(a64, 1, 0).reshape(a64.shape[1], -1)
        exact = np.stack([flat.mean(1), np.sqrt((flat ** 2).mean(1))])
        got = digest(a)
        assert got.dtype == np.float64 and got.shape == exact.shape
        assert np.max(np.abs(got - exact)) <= digest_error(flat.shape[1]) * np.max(np.abs(a))
        np.testing.assert_array_equal(got, digest(a.copy()))              # deterministic


def test_a_container_and_its_last_child_share_one_read():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), torch.nn.ReLU()).eval()
    rec = record(m, make_input((1, 3, 8, 8), 0))
    e = rec.by_key()
    assert e["[0]"].outputs[""] is e["[0][0]"].outputs[""]
    assert e["[1]"].outputs[""] is not e["[0]"].outputs[""]
