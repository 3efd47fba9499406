"""Capability gating: every scenario declares each capability it uses, so a backend lacking
one gets skips that name it and no failures. The suite is run (in a subprocess) on the
reference backend re-registered with each capability removed in turn
(``tests/gating/crippled_suite.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import theseus
from theseus_conformance import requires
from theseus_conformance._fixtures import missing_capabilities

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def crippled_runs(tmp_path_factory):
    junit = tmp_path_factory.mktemp("gating") / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", os.path.join(HERE, "gating", "crippled_suite.py"), "-q",
         "-p", "no:cacheprovider", "-W", "error::pytest.PytestDeprecationWarning", f"--junitxml={junit}"],
        capture_output=True, text=True, cwd=os.path.dirname(HERE))
    runs: dict = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        cap = case.get("classname").rpartition("TestWithout_")[2]
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = (child.tag, child.get("message") or "")
        runs.setdefault(cap, []).append((case.get("name"), outcome))
    return proc, runs


def test_every_capability_removed_in_turn_gives_no_failure(crippled_runs):
    proc, runs = crippled_runs
    assert sorted(runs) == sorted(theseus.CAPABILITIES)
    broken = [(cap, name, o) for cap, cases in runs.items() for name, o in cases
              if o != "passed" and o[0] != "skipped"]
    assert broken == [], proc.stdout[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PytestDeprecationWarning" not in proc.stdout + proc.stderr


def test_every_skip_names_the_missing_capability(crippled_runs):
    _, runs = crippled_runs
    for cap, cases in runs.items():
        named = []
        for name, o in cases:
            if o == "passed":
                continue
            m = re.search(r"lacks capability: ([\w, ]+) \(", o[1])
            assert m, (cap, name, o)
            caps = set(m.group(1).split(", "))
            assert caps <= {cap, "gradients"}, (cap, name, caps)   # the reference never has gradients
            named.append(cap in caps)
        assert any(named), f"removing {cap!r} skipped nothing"


def test_requires_on_a_class_applies_to_its_tests_and_adds_up():
    @requires("hooks")
    class BaseX:
        @requires("state")
        def test_a(self):
            pass

        def test_b(self):
            pass

        def helper(self):
            pass

    class Partial:
        capabilities = frozenset({"hooks"})

    b = Partial()
    assert missing_capabilities(b, BaseX.test_a) == ["state"]
    assert missing_capabilities(b, BaseX.test_b) == []
    assert not hasattr(BaseX.helper, "_theseus_requires")


def test_requires_rejects_unknown_capability():
    with pytest.raises(ValueError, match="unknown capability hook; known: freeze, gradients, hooks"):
        requires("hook")


@pytest.mark.parametrize("cap", sorted(theseus.CAPABILITIES))
def test_optional_methods_raise_naming_their_capability(cap):
    class Minimal(theseus.Backend):
        name, framework = "minimal", None

        def is_layer(self, obj): return False
        def children(self, layer): return []
        def container_kind(self, layer): return theseus.ContainerKind.PLAIN
        def replace_child(self, parent, name, new): pass
        def identity(self): return None
        def to_numpy(self, tensor): return tensor
        def from_numpy(self, array): return array

    b = Minimal()
    for method in theseus.CAPABILITY_TABLE[cap].methods:
        with pytest.raises(theseus.UnsupportedOperation, match=f"lacks the capability '{cap}'") as info:
            getattr(b, method)(*[None] * (getattr(theseus.Backend, method).__code__.co_argcount - 1))
        assert info.value.capability == cap
