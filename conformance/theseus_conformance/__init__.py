"""theseus_conformance: the suite any theseus backend is held against.

Subclass ``ConformanceSuite`` (or single ``Base*Tests`` classes together with ``Fixtures``)
in a test module named ``test_*.py`` and override the ``backend``, ``mobilenet`` and
``build`` fixtures; see this package's README.
"""

from __future__ import annotations

from ._fixtures import Fixtures, Gated, requires, set_eval, to_numpy_tree
from ._tests_features import (BaseExtractTests, BaseFeaturesTests, BaseFreezeTests, BaseProbeLeavesModelAloneTests,
                              BaseStageRuleTests, BaseTruncateTests)
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
    BaseProbeLeavesModelAloneTests,
    BaseStateTests,
    BaseNumericTests,
    BaseLifetimeTests,
    BaseHostileArgumentTests,
    BaseFuzzTests,
):
    """Every scenario; subclass it as ``Test<YourBackend>Conformance`` and override the fixtures."""
