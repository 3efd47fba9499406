"""theseus: one model-surgery API for PyTorch, PaddlePaddle and MindSpore.

The core never imports a deep-learning framework; backends are discovered through the
``theseus.backends`` entry-point group and asked only when their framework is imported.

Example:
    >>> import theseus, theseus_torch                        # doctest: +SKIP
    >>> net = theseus_torch.MobileNetV1()                    # doctest: +SKIP
    >>> theseus.update_res(net, ["blocks[0]", "blocks[2]"])  # doctest: +SKIP
"""

from __future__ import annotations

from ._backend import (
    CAPABILITIES,
    CAPABILITY_TABLE,
    ENTRY_POINT_GROUP,
    Backend,
    ContainerKind,
    HookHandle,
    TensorEntry,
    backend_of,
    backends,
    get_backend,
    register_backend,
    unregister_backend,
)
from ._errors import (
    AmbiguousBackendError,
    BackendNotFoundError,
    ConfigError,
    UnknownTypeError,
    DescriptorSyntaxError,
    FrameworkConflictError,
    InvalidArgumentError,
    InvalidReplacementError,
    LayerNotFoundError,
    NotALayerError,
    StateFileError,
    StateMismatchError,
    TheseusError,
    UnsupportedOperation,
)
from ._grammar import Descriptor, parse
from ._ops import list_descriptors, reset, resolve, stop_after, update_res, upgrade_sublayer

# Everything else is imported when first used (PEP 562), so that ``import theseus`` stays
# cheap; ``theseus.features``, ``theseus.compare`` etc. behave as ordinary attributes.
_LAZY = {
    "._layer": ("TheseusLayerMixin", "TheseusWarning"),
    "._tree": ("tree",),
    "._state": ("LayoutEntry", "LoadReport", "load_state", "state", "state_layout"),
    "._files": ("read_state", "save_state"),
    "._seeded": ("seeded_init", "seeded_weights"),
    "._judge": ("DEFAULT_ATOL", "DEFAULT_RTOL", "Verdict", "agree", "assert_agree"),
    "._extract": ("extract",),
    "._features": ("FeatureInfo", "features", "truncate"),
    "._freeze": ("freeze", "freeze_before", "freeze_stages", "frozen", "unfreeze"),
    "._registry": ("KINDS", "register", "registered"),
    "._compare": ("CompareReport", "ToleranceModel", "compare", "judge", "make_input", "record"),
    "._certificate": ("PortMismatchError", "certify", "verify"),
    "._match": ("MatchError", "match"),
    "._portmap": ("PortMap",),
    "._port": ("PortReport", "PortVerificationError", "port"),
    "._build": ("InitReport", "build", "init_model", "load_config"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    import importlib

    module = _LAZY_NAMES.get(name)
    if module is None:
        if name.startswith("_") and not name.startswith("__"):  # a private submodule: theseus._state
            try:
                return importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module 'theseus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY_NAMES))


__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InitReport",
    "KINDS",
    "UnknownTypeError",
    "build",
    "init_model",
    "load_config",
    "register",
    "registered",
    "AmbiguousBackendError",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "Verdict",
    "agree",
    "assert_agree",
    "CompareReport",
    "FeatureInfo",
    "extract",
    "features",
    "freeze",
    "freeze_before",
    "freeze_stages",
    "truncate",
    "frozen",
    "unfreeze",
    "LoadReport",
    "compare",
    "certify",
    "judge",
    "make_input",
    "record",
    "verify",
    "PortMismatchError",
    "ToleranceModel",
    "load_state",
    "MatchError",
    "match",
    "PortMap",
    "PortReport",
    "PortVerificationError",
    "port",
    "read_state",
    "save_state",
    "seeded_init",
    "seeded_weights",
    "state",
    "Backend",
    "BackendNotFoundError",
    "CAPABILITIES",
    "CAPABILITY_TABLE",
    "ContainerKind",
    "Descriptor",
    "DescriptorSyntaxError",
    "ENTRY_POINT_GROUP",
    "FrameworkConflictError",
    "HookHandle",
    "LayoutEntry",
    "TensorEntry",
    "state_layout",
    "InvalidArgumentError",
    "InvalidReplacementError",
    "LayerNotFoundError",
    "NotALayerError",
    "StateFileError",
    "StateMismatchError",
    "TheseusError",
    "TheseusLayerMixin",
    "TheseusWarning",
    "UnsupportedOperation",
    "backend_of",
    "backends",
    "get_backend",
    "list_descriptors",
    "parse",
    "register_backend",
    "reset",
    "resolve",
    "stop_after",
    "tree",
    "unregister_backend",
    "update_res",
    "upgrade_sublayer",
]
