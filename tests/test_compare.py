"""compare: per-layer judgment of ports with a round-off tolerance; fault localisation measured
on 6 fault kinds x 10 sites per destination framework; clean ports never flagged; BN
statistics untouched; nested outputs; certificates and verify without the source framework.

One recorded source run (torch MobileNetV1, BatchNorm statistics randomised, 1x3x64x64) is
judged against every injected fault, so the 180 injections cost 180 destination runs only.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import theseus_mindspore  # noqa: F401  (MindSpore's oneDNN first: paddle and mindspore in one process)
import paddle  # noqa: E402,F401  (loaded after MindSpore's oneDNN: the three frameworks in one process)
import torch  # noqa: E402

import theseus  # noqa: E402
from theseus import PortMismatchError, certify, judge, make_input, record, verify  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import compare_faults as cf  # noqa: E402

FWS = ["torch", "paddle", "mindspore"]
SCALE = 2.0   # input std: every ReLU of the recorded run sees values > 6 (so ReLU6 is visible)


@pytest.fixture(scope="module")
def weights():
    src = cf.Torch().mobilenet(seed=1, class_num=1024)   # class_num=1024: fc is square too
    cf.randomize_norms(src, 7)
    return src, theseus.state(src)


@pytest.fixture(scope="module")
def recording(weights):
    src, _ = weights
    rec = record(src, make_input((1, 3, 64, 64), 0, SCALE))
    assert rec.noise_method == "fan-in estimate, float64 on suspicion"
    return rec


_dst_cache: dict = {}


def destination(name: str, sd: dict):
    if name not in _dst_cache:
        fw = cf.FRAMEWORKS[name]()
        m = fw.mobilenet(seed=3, class_num=1024)
        theseus.load_state(m, sd)
        _dst_cache[name] = (fw, m)
    return _dst_cache[name]


@pytest.mark.parametrize("fw_name", FWS)
def test_faults_named_exactly(fw_name, weights, recording):
    fw, dst = destination(fw_name, weights[1])
    relu_inputs = [float(e.inputs[0].max()) for e in recording.entries if e.type == "ReLU"]
    assert min(relu_inputs) > 6.5, "the input must make every ReLU6 fault visible"
    assert judge(dst, recording).ok
    plan = cf.plan(fw, dst)
    assert len(plan) == 60 and {k for k, _, _ in plan} == set(cf.KINDS)
    misses = []
    for kind, desc, detail in plan:
        undo = cf.inject(fw, dst, kind, desc, detail)
        try:
            report = judge(dst, recording)
        finally:
            undo()
        f = report.first_fault
        named = f is not None and f.src_layer == desc and f.dst_layer == desc and f.iso is not None and f.iso.flagged
        if not named or cf.EXPECTED_CAUSE[kind] not in report.cause:
            misses.append((kind, desc, detail, report.first_divergence, report.cause))
    assert misses == []
    after = judge(dst, recording)
    assert after.ok and after.worst_ratio() < 1


def test_clean_ports_never_flagged_any_pair(weights):
    """20 seeded inputs (one batch) per source framework, judged on the two others."""
    x = np.concatenate([make_input((1, 3, 32, 32), s, SCALE) for s in range(20)])
    models = {n: destination(n, weights[1])[1] for n in FWS}
    worst = {}
    for a in FWS:
        rec = record(models[a], x)
        assert rec.noise_method == ("fan-in estimate" if a == "mindspore" else "fan-in estimate, float64 on suspicion")
        for b in FWS:
            if a != b:
                r = judge(models[b], rec)
                assert r.flagged == [], (a, b, r.table(5))
                worst[a, b] = r.worst_ratio()
    assert len(worst) == 6 and max(worst.values()) < 1


@pytest.mark.parametrize("fw_name", FWS)
def test_compare_keeps_modes_and_running_statistics(fw_name, weights):
    fw, _ = destination(fw_name, weights[1])
    a = fw.mobilenet(seed=5, class_num=10)
    b = fw.mobilenet(seed=5, class_num=10)
    B = fw.B
    B.set_training(a, True)
    B.set_training(b, True)
    bn = theseus.resolve(a, "blocks[1].depthwise_conv.bn")["blocks[1].depthwise_conv.bn"]
    B.set_training(bn, False, recurse=False)                 # a mixed-mode model
    before = {k: v.copy() for k, v in theseus.state(a).items()}
    flags = [B.is_training(n.layer) for n in theseus._walk.walk(B, a)]
    report = theseus.compare(a, b, input_shape=(2, 3, 32, 32))
    assert report.ok
    after = theseus.state(a)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [B.is_training(n.layer) for n in theseus._walk.walk(B, a)] == flags
    assert flags.count(False) == 1


class Heads(torch.nn.Module):
    """A model whose layers return a tuple and a dict (a feature pyramid's shape)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.p3 = torch.nn.Conv2d(4, 4, 1)
        self.p4 = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x):
        s = self.stem(x)
        return {"p3": self.p3(s), "pair": (self.p4(s), s.mean((2, 3)))}


def test_nested_outputs_each_level_judged():
    torch.manual_seed(0)
    a, b = Heads(), Heads()
    b.load_state_dict(a.state_dict())
    report = theseus.compare(a, b, input_shape=(1, 3, 16, 16))
    outs = sorted(r.src for r in report.rows if r.src_layer == "<output>")
    assert outs == ['<output>:["p3"]', '<output>:["pair"][0]', '<output>:["pair"][1]'] and report.ok
    with torch.no_grad():
        b.p4.weight[[0, 1]] = b.p4.weight[[1, 0]].clone()
    report = theseus.compare(a, b, input_shape=(1, 3, 16, 16))
    assert report.first_divergence == "p4" and "channels 0 and 1 swapped" in report.cause
    flagged = {r.src for r in report.flagged}
    assert flagged == {"p4", '<output>:["pair"][0]'}


def test_table_and_plot(tmp_path, weights, recording):
    fw, dst = destination("paddle", weights[1])
    undo = cf.inject(fw, dst, "swap_stats", "blocks[4].depthwise_conv.bn")
    try:
        report = judge(dst, recording)
    finally:
        undo()
    table = report.table(5).splitlines()
    assert table[0].split()[:3] == ["#", "source", "layer"]
    marked = [line for line in table if line.startswith(">>")]
    assert len(marked) == 1 and "blocks[4].depthwise_conv.bn" in marked[0]
    ratios = [float(line.split()[-4]) for line in table[2:] if line.strip() and not line.startswith(">>")]  # acc x tol
    assert ratios == sorted(ratios, reverse=True)
    svg = report.plot(str(tmp_path / "p.svg"))
    text = open(svg).read()
    assert text.startswith("<svg") and "first fault: blocks[4].depthwise_conv.bn" in text
    assert text.count("<polyline") == 3
    with pytest.raises(theseus.TheseusError, match="svg or .png"):
        report.plot(str(tmp_path / "p.pdf"))


# ----------------------------------------------------------------------------------------
# certificates
# ----------------------------------------------------------------------------------------

def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "theseus", *args], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.fixture(scope="module")
def cert(tmp_path_factory, weights):
    d = tmp_path_factory.mktemp("cert")
    src, sd = weights
    dst = destination("mindspore", sd)[1]
    p1, p2 = str(d / "a.tcert"), str(d / "b.tcert")
    rec = record(src, make_input((1, 3, 64, 64), 0, SCALE))
    certify(src, dst, p1, input_shape=(1, 3, 64, 64), scale=SCALE, recording=rec)
    certify(src, dst, p2, input_shape=(1, 3, 64, 64), scale=SCALE, recording=rec)
    npz = str(d / "w.npz")
    theseus.save_state(npz, sd)
    return p1, p2, npz


def test_certificate_is_deterministic_and_small(cert):
    p1, p2, _ = cert
    assert open(p1, "rb").read() == open(p2, "rb").read()
    assert os.path.getsize(p1) < 2_000_000


@pytest.mark.parametrize("fw_name", FWS)
def test_verify_in_process(fw_name, cert, weights):
    fw, dst = destination(fw_name, weights[1])
    report = verify(cert[0], dst)
    assert report.ok, report.table(5)
    undo = cf.inject(fw, dst, "eps", "blocks[6].pointwise_conv.bn")
    try:
        bad = verify(cert[0], dst)
    finally:
        undo()
    assert bad.first_divergence == "blocks[6].pointwise_conv.bn" and not bad.ok


VERIFY_SCRIPT = """
import sys, json
import theseus._cli as cli
rc = cli.main(sys.argv[1:])
print("RESULT", json.dumps({"rc": rc, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("target", ["theseus_paddle:MobileNetV1", "theseus_mindspore:MobileNetV1"])
def test_verify_never_imports_the_source_framework(tmp_path, cert, target):
    script = tmp_path / "v.py"
    script.write_text(VERIFY_SCRIPT)
    # the target needs class_num=1024: a tiny module building it
    mod = tmp_path / "target_model.py"
    pkg, cls = target.split(":")
    mod.write_text(f"import {pkg}\n\ndef build():\n    return {pkg}.{cls}(class_num=1024)\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, str(script), "verify", cert[0], "--model", "target_model:build",
                           "--weights", cert[2]], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr[-2000:]
    import json

    res = json.loads(line[0][7:])
    assert res == {"rc": 0, "torch": False}, proc.stdout
    assert "all agree" in proc.stdout


def test_certify_refuses_a_broken_port(tmp_path, weights, recording):
    fw, dst = destination("torch", weights[1])
    undo = cf.inject(fw, dst, "transpose", "blocks[2].pointwise_conv.conv")
    try:
        with pytest.raises(PortMismatchError) as err:
            certify(weights[0], dst, str(tmp_path / "x.tcert"), input_shape=(1, 3, 64, 64), scale=SCALE,
                    recording=recording)
    finally:
        undo()
    assert err.value.report.first_divergence == "blocks[2].pointwise_conv.conv"
    assert not (tmp_path / "x.tcert").exists()


def test_compare_paddle_to_mindspore_in_one_call(tmp_path, weights):
    """The source given as module:callable is recorded in a subprocess (Paddle and MindSpore
    never share a process); the report says so."""
    npz = str(tmp_path / "w.npz")
    theseus.save_state(npz, weights[1])
    mod = tmp_path / "src_model.py"
    mod.write_text("import theseus_paddle\n\ndef build():\n    return theseus_paddle.MobileNetV1(class_num=1024)\n")
    sys.path.insert(0, str(tmp_path))
    os.environ["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    try:
        dst = destination("mindspore", weights[1])[1]
        report = theseus.compare("src_model:build", dst, input_shape=(1, 3, 32, 32), src_weights=npz)
    finally:
        sys.path.remove(str(tmp_path))
        os.environ["PYTHONPATH"] = os.environ["PYTHONPATH"].split(os.pathsep, 1)[1]
    assert report.ok and report.src_backend == "paddle" and report.dst_backend == "mindspore"
    assert any("subprocess" in n for n in report.notes)


def test_cli_bad_arguments(tmp_path):
    r = _cli("verify", str(tmp_path / "missing.tcert"), "--model", "theseus_torch:MobileNetV1")
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.tcert"
    bad.write_text("not a zip")
    r = _cli("verify", str(bad), "--model", "theseus_torch:MobileNetV1")
    assert r.returncode == 2 and "not a theseus" in r.stderr
    r = _cli("compare", "theseus_torch:MobileNetV1", "theseus_torch:MobileNetV1", "--plot", str(tmp_path / "a.pdf"))
    assert r.returncode == 2 and "--plot" in r.stderr
    r = _cli("certify", "theseus_torch:MobileNetV1", "theseus_torch:MobileNetV1", "-o",
             str(tmp_path / "no" / "x.tcert"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_compare_through_a_portmap(weights):
    """A theseus.match PortMap pairs the layers (its ``layers`` list); a fault is named on
    both sides."""
    src = weights[0]
    fw, dst = destination("paddle", weights[1])
    pm = theseus.match(src, dst, make_input((1, 3, 64, 64), 0))
    report = theseus.compare(src, dst, map=pm, input_shape=(1, 3, 64, 64), scale=SCALE)
    assert report.ok and len(report.rows) > 50
    undo = cf.inject(fw, dst, "swap_stats", "blocks[3].depthwise_conv.bn")
    try:
        report = theseus.compare(src, dst, map=pm, input_shape=(1, 3, 64, 64), scale=SCALE)
    finally:
        undo()
    assert report.first_fault.src_layer == report.first_fault.dst_layer == "blocks[3].depthwise_conv.bn"


class InPlace(torch.nn.Module):
    """conv -> bn -> x += 1 (in place) -> ReLU(inplace=True) -> conv: the recording reuses a
    layer's output array as the next layer's input only while the tensor is unchanged."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.relu = torch.nn.ReLU(inplace=True)
        self.head = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.bn(self.conv(x))
        y += 1.0
        return self.head(self.relu(y))


def test_recording_is_true_under_in_place_ops():
    torch.manual_seed(0)
    m = InPlace().eval()
    x = make_input((1, 3, 8, 8), 0)
    rec = record(m, x)
    e = rec.by_key()
    with torch.no_grad():
        bn_out = m.bn(m.conv(torch.from_numpy(x))).numpy()
    np.testing.assert_array_equal(e["bn"].outputs[""], bn_out)                  # not relu'd, not +1
    np.testing.assert_array_equal(e["relu"].inputs[0], bn_out + np.float32(1))  # the += is seen
    np.testing.assert_array_equal(e["head"].inputs[0], np.maximum(bn_out + np.float32(1), 0))
    assert e["bn"].inputs[0] is e["conv"].outputs[""]                           # unchanged: shared
    assert theseus.compare(m, m, x).ok
