"""The conformance suite on the mindspore backend.

Run it with ``theseus conformance --backend mindspore`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_mindspore_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports mindspore (the backend is considered once its framework is
imported); nothing else in ``theseus_mindspore`` imports it.
"""

import pytest
from theseus_mindspore._runtime import mindspore  # noqa: F401  (preloads its oneDNN: safe after paddle)

import theseus
from theseus_conformance import ConformanceSuite

__all__ = ["TestMindSporeConformance"]


class TestMindSporeConformance(ConformanceSuite):
    @pytest.fixture(scope="class")
    def backend(self):
        return theseus.get_backend("mindspore")

    @pytest.fixture(scope="class")
    def mobilenet(self):
        from theseus_mindspore import MobileNetV1

        return MobileNetV1

    @pytest.fixture(scope="class")
    def build(self):
        from theseus_mindspore._zoo import build

        return build
