"""The seed walkthrough (examples/walkthrough.py) runs and prints the seed's outcomes."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "walkthrough.py"


def test_walkthrough_on_torch(capsys):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("walkthrough", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--backend", "torch"]) == 0
    out = capsys.readouterr().out
    assert "   torch      18: blocks[0].depthwise_conv.bn ... fc" in out
    assert "   torch      (2, 32, 112, 112)" in out
    assert ("   torch      {'output': (2, 1000), 'blocks[0]': (2, 64, 112, 112), 'blocks[2]': (2, 128, 56, 56), "
            "'blocks[4]': (2, 256, 28, 28), 'blocks[10]': (2, 512, 14, 14)}") in out
    assert "== reset(): output identical\n   torch      True" in out
