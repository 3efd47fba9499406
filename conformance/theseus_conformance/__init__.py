"""theseus_conformance: the suite any theseus backend is held against.

Subclass ``ConformanceSuite`` (or single ``Base*Tests`` classes together with ``Fixtures``)
in a test module named ``test_*.py`` and override the ``backend``, ``mobilenet`` and
``build`` fixtures; see this package's README.
"""

from __future__ import annotations

import importlib
from typing import Optional

import pytest

import theseus

from ._fixtures import Fixtures, Gated, requires, set_eval, to_numpy_tree
from ._tests_features import (BaseExtractTests, BaseFeaturesTests, BaseFreezeTests, BaseLayoutTests,
                              BaseProbeLeavesModelAloneTests, BaseStageRuleTests, BaseTruncateTests)
from ._tests_hostile import BaseFuzzTests, BaseHostileArgumentTests
from ._tests_lifetime import BaseLifetimeTests
from ._tests_numeric import BaseNumericTests, BaseStateTests
from ._tests_structure import BaseDescriptorTests, BaseDiscoveryTests, BaseTreeTests
from ._tests_surgery import (
    BaseBadInputTests,
    BaseCaptureFollowsSurgeryTests,
    BaseResetTests,
    BaseStopAfterTests,
    BaseUpdateResTests,
    BaseUpgradeTests,
)

__all__ = [
    "BaseBadInputTests",
    "BaseCaptureFollowsSurgeryTests",
    "BaseDescriptorTests",
    "BaseNumericTests",
    "BaseProbeLeavesModelAloneTests",
    "BaseStateTests",
    "BaseExtractTests",
    "BaseFeaturesTests",
    "BaseFreezeTests",
    "BaseFuzzTests",
    "BaseHostileArgumentTests",
    "BaseLayoutTests",
    "BaseLifetimeTests",
    "BaseStageRuleTests",
    "BaseTruncateTests",
    "BaseDiscoveryTests",
    "BaseResetTests",
    "BaseStopAfterTests",
    "BaseTreeTests",
    "BaseUpdateResTests",
    "BaseUpgradeTests",
    "ConformanceSuite",
    "Fixtures",
    "Gated",
    "requires",
    "suite_for",
    "set_eval",
    "to_numpy_tree",
]


class ConformanceSuite(
    Fixtures,
    BaseDiscoveryTests,
    BaseDescriptorTests,
    BaseTreeTests,
    BaseStopAfterTests,
    BaseUpdateResTests,
    BaseUpgradeTests,
    BaseResetTests,
    BaseBadInputTests,
    BaseCaptureFollowsSurgeryTests,
    BaseExtractTests,
    BaseFeaturesTests,
    BaseFreezeTests,
    BaseTruncateTests,
    BaseStageRuleTests,
    BaseLayoutTests,
    BaseProbeLeavesModelAloneTests,
    BaseStateTests,
    BaseNumericTests,
    BaseLifetimeTests,
    BaseHostileArgumentTests,
    BaseFuzzTests,
):
    """Every scenario; subclass it as ``Test<YourBackend>Conformance`` and override the fixtures."""


def suite_for(backend: str, mobilenet: str, build: str, name: Optional[str] = None) -> type:
    """A ``ConformanceSuite`` subclass for the backend registered as ``backend``, whose
    ``mobilenet`` and ``build`` fixtures are the objects at ``"module:attribute"`` (imported
    when the fixtures first run). Assign it to a ``Test*`` name in a test module.

    Example:
        >>> TestTorchConformance = suite_for("torch", "theseus_torch:MobileNetV1",
        ...                                  "theseus_torch._zoo:build")   # doctest: +SKIP
    """

    def load(ref: str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)

    class Suite(ConformanceSuite):
        @pytest.fixture(scope="class")
        def backend(self):
            return theseus.get_backend(backend)

        @pytest.fixture(scope="class")
        def mobilenet(self):
            return load(mobilenet)

        @pytest.fixture(scope="class")
        def build(self):
            return load(build)

    Suite.__name__ = Suite.__qualname__ = name or f"Test{backend.capitalize()}Conformance"
    return Suite
