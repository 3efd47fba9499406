"""The framework-free reference backend of theseus: a tiny numpy layer library,
``ReferenceBackend``, ``MobileNetV1`` and the neutral-spec ``build``.

It needs nothing but numpy, so the conformance suite (and a third-party backend author) can
run every scenario without a deep-learning framework. Register it explicitly:

Example:
    >>> import theseus
    >>> from theseus_conformance.reference import ReferenceBackend
    >>> theseus.register_backend(ReferenceBackend(), replace=True)
"""

from __future__ import annotations

from ._backend import ReferenceBackend
from ._layers import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Identity,
    Layer,
    LayerDict,
    LayerList,
    Linear,
    Parameter,
    ReLU,
    Sequential,
    TheseusLayer,
    conv2d,
    manual_seed,
)
from ._mobilenet import ConvBNLayer, DepthwiseSeparable, MobileNetV1
from ._zoo import build

__all__ = [
    "AdaptiveAvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "ConvBNLayer",
    "DepthwiseSeparable",
    "Flatten",
    "Identity",
    "Layer",
    "LayerDict",
    "LayerList",
    "Linear",
    "MobileNetV1",
    "Parameter",
    "ReLU",
    "ReferenceBackend",
    "Sequential",
    "TheseusLayer",
    "build",
    "conv2d",
    "manual_seed",
]
