"""The conformance suite on the reference backend with one capability removed per class:
the capability's methods fall back to ``Backend``'s raising defaults, as in a backend that
never implemented them. Run by ``tests/test_capability_gating.py`` in a subprocess; every
scenario must pass or be skipped with a reason naming the removed capability."""

from __future__ import annotations

import pytest

import theseus
from theseus_conformance import ConformanceSuite
from theseus_conformance.reference import MobileNetV1, ReferenceBackend, build


def without(capability: str) -> type:
    """``ReferenceBackend`` minus ``capability``: its methods reset to the Backend defaults."""
    attrs = {m: getattr(theseus.Backend, m) for m in theseus.CAPABILITY_TABLE[capability].methods}
    attrs["capabilities"] = ReferenceBackend.capabilities - {capability}
    return type(f"ReferenceWithout_{capability}", (ReferenceBackend,), attrs)


def _suite(capability: str) -> type:
    always_eval = capability == "train_eval"   # a framework without modes always infers

    class Suite(ConformanceSuite):
        @pytest.fixture(scope="class")
        def backend(self):
            theseus.register_backend(without(capability)(), replace=True)
            yield theseus.get_backend("reference")
            theseus.register_backend(ReferenceBackend(), replace=True)

        @pytest.fixture(scope="class")
        def mobilenet(self):
            def make(*args, **kwargs):
                model = MobileNetV1(*args, **kwargs)
                return model.eval() if always_eval else model
            return make

        @pytest.fixture(scope="class")
        def build(self):
            return (lambda spec: build(spec).eval()) if always_eval else build

    Suite.__name__ = Suite.__qualname__ = f"TestWithout_{capability}"
    return Suite


for _cap in sorted(theseus.CAPABILITIES):
    globals()[f"TestWithout_{_cap}"] = _suite(_cap)
