"""The conformance suite on the torch backend.

Run it with ``theseus conformance --backend torch`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_torch_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports torch (the backend is considered once its framework is
imported); nothing else in ``theseus_torch`` imports it.
"""

import torch  # noqa: F401

from theseus_conformance import suite_for

__all__ = ["TestTorchConformance"]

TestTorchConformance = suite_for("torch", "theseus_torch:MobileNetV1", "theseus_torch._zoo:build", name="TestTorchConformance")
