"""The conformance suite on the mindspore backend.

Run it with ``theseus conformance --backend mindspore`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_mindspore_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports mindspore (the backend is considered once its framework is
imported); nothing else in ``theseus_mindspore`` imports it.
"""

from theseus_mindspore._runtime import mindspore  # noqa: F401  (preloads its oneDNN: safe after paddle)

from theseus_conformance import suite_for

__all__ = ["TestMindSporeConformance"]

TestMindSporeConformance = suite_for("mindspore", "theseus_mindspore:MobileNetV1", "theseus_mindspore._zoo:build", name="TestMindSporeConformance")
