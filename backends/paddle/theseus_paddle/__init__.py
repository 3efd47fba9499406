"""theseus backend for PaddlePaddle: ``PaddleBackend``, ``TheseusLayer``, ``MobileNetV1``.

Importing this package does not import paddle; the names that need it load on first use,
so that theseus can discover the backend without loading the framework.

Paddle warns on import when the ``ccache`` compiler cache is missing ("No ccache found"):
that is about compiling C++ extensions, which theseus never does, so importing this package
silences that one message (only it) for the process.
"""

from __future__ import annotations

import warnings
from typing import Any

warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

__all__ = ["PaddleBackend", "TheseusLayer", "MobileNetV1", "ConvBNLayer", "DepthwiseSeparable"]

_LAZY = {
    "PaddleBackend": "._adapter",
    "TheseusLayer": "._layer",
    "MobileNetV1": "._mobilenet",
    "ConvBNLayer": "._mobilenet",
    "DepthwiseSeparable": "._mobilenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'theseus_paddle' has no attribute {name!r}")
