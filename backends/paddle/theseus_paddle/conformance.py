"""The conformance suite on the paddle backend.

Run it with ``theseus conformance --backend paddle`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_paddle_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports paddle (the backend is considered once its framework is
imported); nothing else in ``theseus_paddle`` imports it.
"""

import pytest
import paddle  # noqa: F401

import theseus
from theseus_conformance import ConformanceSuite

__all__ = ["TestPaddleConformance"]


class TestPaddleConformance(ConformanceSuite):
    @pytest.fixture(scope="class")
    def backend(self):
        return theseus.get_backend("paddle")

    @pytest.fixture(scope="class")
    def mobilenet(self):
        from theseus_paddle import MobileNetV1

        return MobileNetV1

    @pytest.fixture(scope="class")
    def build(self):
        from theseus_paddle._zoo import build

        return build
