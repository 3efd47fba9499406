"""The conformance suite on the torch backend.

Run it with ``theseus conformance --backend torch`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_torch_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports torch (the backend is considered once its framework is
imported); nothing else in ``theseus_torch`` imports it.
"""

import pytest
import torch  # noqa: F401

import theseus
from theseus_conformance import ConformanceSuite

__all__ = ["TestTorchConformance"]


class TestTorchConformance(ConformanceSuite):
    @pytest.fixture(scope="class")
    def backend(self):
        return theseus.get_backend("torch")

    @pytest.fixture(scope="class")
    def mobilenet(self):
        from theseus_torch import MobileNetV1

        return MobileNetV1

    @pytest.fixture(scope="class")
    def build(self):
        from theseus_torch._zoo import build

        return build
