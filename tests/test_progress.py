"""Progress of long commands: one short line per step on stderr when it is a terminal,
nothing under --quiet or when stderr is not a terminal; stdout untouched."""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys

import pytest

from theseus._progress import Progress

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_step_on_a_terminal():
    tty = _Tty()
    p = Progress(3, stream=tty)
    for label in ("torch", "paddle  \n mindspore", "x"):
        p.step(label)
    p.step("beyond")
    assert tty.getvalue().splitlines() == ["[1/3] torch ...", "[2/3] paddle mindspore ...", "[3/3] x ...",
                                           "[4/3] beyond ..."]


@pytest.mark.parametrize("stream, kwargs, shown", [
    (_Tty(), {"quiet": True}, False),
    (io.StringIO(), {}, False),                       # not a terminal
    (io.StringIO(), {"force": True}, True),
    (_Tty(), {"indent": 2}, True),
])
def test_when_progress_is_shown(stream, kwargs, shown):
    Progress(1, stream=stream, **kwargs).step("a")
    expected = " " * kwargs.get("indent", 0) + "[1/1] a ...\n"
    assert stream.getvalue() == (expected if shown else "")


def test_benchmark_rounds_report_progress_and_quiet_silences_them(monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setitem(_common._progress, "quiet", False)
    _common.interleaved({"a": lambda: None, "b": lambda: None}, reps=2, warmup=0)
    assert tty.getvalue().splitlines() == ["  [1/2] round: a, b ...", "  [2/2] round: a, b ..."]
    import argparse

    ap = argparse.ArgumentParser()
    _common.add_timing_args(ap)
    assert ap.parse_args(["--quiet"]).quiet is True
    tty.truncate(0), tty.seek(0)
    _common.interleaved({"a": lambda: None}, reps=2, warmup=0)
    assert tty.getvalue() == ""


def test_scripts_print_no_progress_when_stderr_is_not_a_terminal():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--reps", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "[1/" not in out.stderr and "[1/" not in out.stdout
    assert out.stdout.startswith("backend reference: ")
