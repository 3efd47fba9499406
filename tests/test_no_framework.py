"""The core never imports a framework: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "paddle", "mindspore")


def _modules_after(code: str) -> list[str]:
    probe = code + f"\nimport sys; print([m for m in {FRAMEWORKS!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_import_theseus_imports_no_framework():
    assert _modules_after("import theseus") == []


def test_discovery_imports_no_framework():
    assert _modules_after("import theseus; theseus.backends(); theseus.backends(active_only=True)") == []


def test_backend_packages_import_no_framework():
    code = "import theseus\nfor m in ('theseus_torch', 'theseus_paddle', 'theseus_mindspore'):\n" \
           "    try: __import__(m)\n    except ImportError: pass"
    assert _modules_after(code) == []


def test_unknown_model_error_imports_no_framework():
    code = ("import theseus\ntry: theseus.backend_of(object())\n"
            "except theseus.BackendNotFoundError as e: assert 'builtins.object' in str(e)")
    assert _modules_after(code) == []
