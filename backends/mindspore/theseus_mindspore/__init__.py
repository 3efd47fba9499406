"""theseus backend for MindSpore: ``MindSporeBackend``, ``TheseusLayer``, ``MobileNetV1``.

Importing this package does not import mindspore; the names that need it load on first use
(through ``_runtime``, which also works around the oneDNN clash with an earlier
``import paddle``), so that theseus can discover the backend without loading the framework.
"""

from __future__ import annotations

from typing import Any

from ._dnnl import preload_dnnl

# `import paddle; import theseus_mindspore; import mindspore` works: MindSpore's own oneDNN
# is loaded here, before anything imports mindspore (see _dnnl).
preload_dnnl()

__all__ = ["MindSporeBackend", "TheseusLayer", "MobileNetV1", "ConvBNLayer", "DepthwiseSeparable"]

_LAZY = {
    "MindSporeBackend": "._adapter",
    "TheseusLayer": "._layer",
    "MobileNetV1": "._mobilenet",
    "ConvBNLayer": "._mobilenet",
    "DepthwiseSeparable": "._mobilenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'theseus_mindspore' has no attribute {name!r}")
