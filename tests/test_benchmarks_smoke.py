"""The benchmark scripts README quotes still run (one tiny round each: a smoke test, no
timing is judged here; the figures come from running them in full)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

CASES = {
    "overhead": (["overhead.py", "--backend", "torch", "--batch", "1", "--reps", "1", "--steady-malloc"],
                 "glibc mmap/trim thresholds raised"),
    "features": (["features.py", "--backend", "torch", "--batch", "1", "--reps", "1", "--clock", "cpu"],
                 "features()/plain"),
    "inplace": (["inplace.py", "--batch", "1", "--reps", "1"], "captures not modified"),
    "peers-timm": (["peers.py", "--only", "timm", "--batch", "1", "--reps", "1"], "features vs timm features_only"),
    "peers-processes": (["peers.py", "--only", "timm", "--batch", "1", "--reps", "1", "--processes", "2"],
                        "median ratio"),
    "peers-paddleclas": (["peers.py", "--only", "paddleclas", "--batch", "1", "--reps", "1"],
                         "hook chain per forward"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_benchmark_runs(case):
    args, expect = CASES[case]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, *args], cwd=BENCH, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert expect in r.stdout, r.stdout
    assert "A/A" in r.stdout, r.stdout   # every timing table shows its noise floor


def test_bad_clock_is_a_usage_error():
    r = subprocess.run([sys.executable, "overhead.py", "--clock", "sundial"], cwd=BENCH, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--clock" in r.stderr
