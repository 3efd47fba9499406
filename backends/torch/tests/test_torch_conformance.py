"""The conformance suite on the torch backend."""

import pytest
import torch  # noqa: F401  (the backend is considered once its framework is imported)

import theseus
from theseus_conformance import ConformanceSuite


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
