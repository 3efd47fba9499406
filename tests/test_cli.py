"""The ``theseus`` command line, run as ``python -m theseus`` in subprocesses (the frameworks
are imported there, never in this process)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from theseus import read_state, save_state
from theseus_conformance.runner import Run, build_table, exit_status, failure_details, parse_junit


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "theseus", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_torch = pytest.mark.skipif(not (_installed("torch") and _installed("theseus_torch")), reason="needs torch")
needs_paddle = pytest.mark.skipif(not (_installed("paddle") and _installed("theseus_paddle")), reason="needs paddle")


def test_cli_imports_no_framework():
    code = ("import sys, theseus._cli\n"
            "theseus._cli.main(['backends'])\n"
            "print([m for m in ('torch', 'paddle', 'mindspore') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@needs_torch
@needs_paddle
def test_backends_lists_torch_and_paddle():
    out = cli("backends")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["backend", "framework", "version"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["torch"][1] == "torch" and rows["torch"][-1] == "theseus_torch.conformance"
    assert rows["paddle"][1] == "paddle" and rows["paddle"][-1] == "theseus_paddle.conformance"
    import importlib.metadata as md

    assert rows["paddle"][2] == md.version("paddlepaddle")
    assert "hooks" in rows["torch"][3].split(",")


@needs_torch
def test_tree_first_lines():
    out = cli("tree", "theseus_torch:MobileNetV1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:7] == [
        "MobileNetV1 (MobileNetV1)",
        "├── conv (ConvBNLayer)",
        "│   ├── conv.conv (Conv2d)",
        "│   ├── conv.bn (BatchNorm2d)",
        "│   └── conv.relu (ReLU)",
        "├── blocks (Sequential)",
        "│   ├── blocks[0] (DepthwiseSeparable)",
    ]


@pytest.mark.parametrize("spec,fragment", [
    ("theseus_torch", "MODEL must be 'module:callable'"),
    ("no_such_module_xyz:Net", "cannot import module 'no_such_module_xyz'"),
    ("theseus:NoSuchThing", "has no attribute 'NoSuchThing'"),
    ("theseus:__version__x", "has no attribute"),
])
def test_tree_bad_model_spec(spec, fragment):
    out = cli("tree", spec)
    assert out.returncode == 2
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_conformance_unknown_backend():
    out = cli("conformance", "--backend", "no-such-backend")
    assert out.returncode == 2
    assert "no theseus backend named 'no-such-backend'" in out.stderr and "Traceback" not in out.stderr


@needs_torch
def test_conformance_torch_seed(tmp_path):
    out = cli("conformance", "--backend", "torch", "-k", "seed", "--junit-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["scenario", "torch"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["test_seed_identity_set_and_shape"] == ["pass"]
    assert rows["failed"] == ["0"] and rows["run"] == ["ok"]
    assert "[1/1] torch: running theseus_torch.conformance" in out.stderr and "theseus: torch: ok" in out.stderr
    assert (tmp_path / "torch.xml").is_file()
    quiet = cli("conformance", "--backend", "torch", "-k", "seed_identity", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="5">
<testcase classname="m.TestXConformance" name="test_a" time="0.1"/>
<testcase classname="m.TestXConformance" name="test_b[blocks[*]-x]" time="0.1">
  <failure message="AssertionError: logits: max|a-b| = 0.1 at [0, 3]; max|ref| = 60&#10;second line">trace</failure></testcase>
<testcase classname="m.TestXConformance" name="test_c" time="0.1">
  <skipped type="pytest.skip" message="backend 'x' does not support 'threads'">m.py:1: ...</skipped></testcase>
<testcase classname="m.TestXConformance" name="test_d" time="0.1">
  <error message="failed on setup with &quot;RuntimeError&quot;">trace</error></testcase>
<testcase classname="m.TestXConformance" name="test_e" time="0.1">
  <skipped type="pytest.skip" message="Skipped: no reason given">m.py:1: ...</skipped></testcase>
</testsuite></testsuites>
"""


def test_table_and_exit_status_from_junit(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(_JUNIT)
    bad = Run("x", "m")
    parse_junit(str(path), bad)
    assert bad.results == {
        "test_a": "pass",
        "test_b[blocks[*]-x]": "FAIL",
        "test_c": "skip: backend 'x' does not support 'threads'",
        "test_d": "FAIL",
        "test_e": "skip: no reason given",
    }
    assert (bad.passed, bad.failed, bad.skipped) == (1, 2, 2)
    good = Run("y", "n", results={"test_a": "pass"}, passed=1, seconds=1.25)
    table = build_table([good, bad]).splitlines()
    assert table[0].split() == ["scenario", "y", "x"]
    assert table[2].split() == ["test_a", "pass", "pass"]
    assert table[3].split() == ["test_b[blocks[*]-x]", "-", "FAIL"]
    assert "1.2s" in table[-1] or "1.3s" in table[-1]
    assert exit_status([good]) == 0
    assert exit_status([good, bad]) == 1
    broken = Run("z", "o", error="pytest exited with status 4")
    assert exit_status([good, broken]) == 1
    assert exit_status([]) == 1
    # the table says FAIL; the details below it say why (the judge's numbers)
    details = failure_details([good, bad]).splitlines()
    assert details == ["FAIL x: test_b[blocks[*]-x]",
                       "    AssertionError: logits: max|a-b| = 0.1 at [0, 3]; max|ref| = 60",
                       "    second line",
                       "FAIL x: test_d",
                       '    failed on setup with "RuntimeError"']
    assert failure_details([good]) == ""


def test_port_needs_from_for_dash(tmp_path):
    out = cli("port", "-", str(tmp_path / "x.npz"), "--to", "theseus:tree")
    assert out.returncode == 2 and "--from" in out.stderr and "Traceback" not in out.stderr


@needs_torch
@needs_paddle
def test_port_round_trip(tmp_path):
    # '-': the torch model's own weights, moved into paddle
    first = cli("port", "-", str(tmp_path / "a.npz"), "--from", "theseus_torch:MobileNetV1",
                "--to", "theseus_paddle:MobileNetV1")
    assert first.returncode == 0, first.stderr
    assert "backend paddle" in first.stdout and "loaded 137" in first.stdout
    shapes = {k: v.shape for k, v in read_state(tmp_path / "a.npz").items()}
    assert len(shapes) == 137 and shapes["blocks[0].depthwise_conv.conv.weight"] == (32, 1, 3, 3)

    # a known source: .npz -> paddle -> .npz -> torch -> .npz, every array unchanged
    rs = np.random.RandomState(0)
    src = {k: np.abs(rs.standard_normal(s)).astype(np.float32) + 0.5 for k, s in shapes.items()}
    save_state(tmp_path / "src.npz", src)
    to_paddle = cli("port", str(tmp_path / "src.npz"), str(tmp_path / "p.npz"), "--to", "theseus_paddle:MobileNetV1")
    assert to_paddle.returncode == 0, to_paddle.stderr
    to_torch = cli("port", str(tmp_path / "p.npz"), str(tmp_path / "t.npz"), "--to", "theseus_torch:MobileNetV1")
    assert to_torch.returncode == 0, to_torch.stderr
    for name in ("p.npz", "t.npz"):
        got = read_state(tmp_path / name)
        # torch also keeps BN's num_batches_tracked (an optional role paddle has not)
        assert sorted(k for k in got if not k.endswith(".num_batches_tracked")) == sorted(src)
        for k in src:
            np.testing.assert_array_equal(got[k], src[k], err_msg=f"{name}: {k}")

    # strict: a missing key is a one-line error and nothing is written; --no-strict loads the rest
    del src["fc.bias"]
    save_state(tmp_path / "missing.npz", src)
    strict = cli("port", str(tmp_path / "missing.npz"), str(tmp_path / "m.npz"), "--to", "theseus_torch:MobileNetV1")
    assert strict.returncode == 2 and "missing 1: fc.bias" in strict.stderr and "Traceback" not in strict.stderr
    assert not (tmp_path / "m.npz").exists()

    # a prefix that names no part of the model (a typo) is a one-line error naming the closest
    typo = cli("port", str(tmp_path / "src.npz"), str(tmp_path / "typo.npz"), "--to", "theseus_torch:MobileNetV1",
               "--prefix", "blok")
    assert typo.returncode == 2 and "Traceback" not in typo.stderr and len(typo.stderr.strip().splitlines()) == 1
    assert "prefix 'blok' matches no weight of the model" in typo.stderr and "'blocks'" in typo.stderr
    assert not (tmp_path / "typo.npz").exists()
