"""The conformance suite on the paddle backend."""

import pytest
import paddle  # noqa: F401  (the backend is considered once its framework is imported)

import theseus
from theseus_conformance import ConformanceSuite


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
