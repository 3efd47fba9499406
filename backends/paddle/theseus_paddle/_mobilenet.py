"""MobileNetV1 with the seed's (PaddleClas) structure and names, deterministic weights."""

from __future__ import annotations

from theseus._mobilenet import mobilenet_classes
from theseus.architectures import MOBILENET_V1_BLOCKS

from ._layer import LAYERS, TheseusLayer

__all__ = ["MobileNetV1", "ConvBNLayer", "DepthwiseSeparable", "BLOCK_CONFIG"]

BLOCK_CONFIG = MOBILENET_V1_BLOCKS  # (in, out1, out2, groups, stride) per block, before scaling
_classes = mobilenet_classes(TheseusLayer, LAYERS, __name__)
ConvBNLayer, DepthwiseSeparable, MobileNetV1 = (_classes[n] for n in ("ConvBNLayer", "DepthwiseSeparable", "MobileNetV1"))
