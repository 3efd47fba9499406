"""MobileNetV1 with the seed's (PaddleClas) structure and names, written once.

Each backend makes it native with :func:`mobilenet_classes` from its ``TheseusLayer`` and
its layer table (the conformance spec's node names: ``conv``, ``bn``, ``relu``, ``seq``,
``pool``, ``flatten``, ``linear``); the weights come from ``theseus.seeded_init``, so
``MobileNetV1(seed=1)`` is the same network on every backend.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ._parts import native_classes
from ._seeded import seeded_init
from .architectures import MOBILENET_V1_BLOCKS

__all__ = ["mobilenet_classes"]


class ConvBNLayer:
    """``conv`` (no bias) -> ``bn`` -> ``relu``."""

    _layers: Mapping

    def __init__(self, num_channels: int, filter_size: int, num_filters: int, stride: int, padding: int,
                 num_groups: int = 1) -> None:
        super().__init__()
        make = self._layers
        self.conv = make["conv"](num_channels, num_filters, filter_size, stride, padding, num_groups, False)
        self.bn = make["bn"](num_filters)
        self.relu = make["relu"]()

    def forward(self, x: Any) -> Any:
        return self.relu(self.bn(self.conv(x)))


class DepthwiseSeparable:
    """``depthwise_conv`` (3x3, grouped) -> ``pointwise_conv`` (1x1)."""

    def __init__(self, num_channels: int, num_filters1: int, num_filters2: int, num_groups: int, stride: int,
                 scale: float) -> None:
        super().__init__()
        conv_bn = self._native["ConvBNLayer"]
        self.depthwise_conv = conv_bn(num_channels, 3, int(num_filters1 * scale), stride, 1,
                                      num_groups=int(num_groups * scale))
        self.pointwise_conv = conv_bn(int(num_filters1 * scale), 1, int(num_filters2 * scale), 1, 0)

    def forward(self, x: Any) -> Any:
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1:
    """MobileNetV1 as in PaddleClas: ``conv``, ``blocks[0..12]``, ``avg_pool``, ``flatten``, ``fc``.

    Args:
        scale: channel multiplier.
        class_num: classifier outputs.
        return_patterns: layers whose outputs the forward also returns (see ``theseus.update_res``).
        seed: the deterministic initialisation's seed (nothing is downloaded).
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, return_patterns: Optional[Sequence[str]] = None,
                 seed: int = 0) -> None:
        super().__init__()
        make, block = self._layers, self._native["DepthwiseSeparable"]
        self.scale = scale
        self.class_num = class_num
        self.conv = self._native["ConvBNLayer"](3, 3, int(32 * scale), 2, 1)
        self.blocks = make["seq"]([block(int(i * scale), o1, o2, g, s, scale) for i, o1, o2, g, s in MOBILENET_V1_BLOCKS])
        self.avg_pool = make["pool"]()
        self.flatten = make["flatten"]()
        self.fc = make["linear"](int(1024 * scale), class_num)
        seeded_init(self, seed)
        self.init_res(return_patterns)

    def forward(self, x: Any) -> Any:
        x = self.conv(x)
        x = self.blocks(x)
        x = self.avg_pool(x)
        x = self.flatten(x)
        return self.fc(x)


def mobilenet_classes(theseus_layer: type, layers: Mapping, module: str, forward: str = "forward") -> dict[str, type]:
    """``{"ConvBNLayer", "DepthwiseSeparable", "MobileNetV1"}`` as subclasses of the backend's
    ``TheseusLayer``, built from its layer table ``layers``.

    Example:
        >>> globals().update(mobilenet_classes(TheseusLayer, LAYERS, __name__))   # doctest: +SKIP
    """
    return native_classes([ConvBNLayer, DepthwiseSeparable, MobileNetV1], theseus_layer, forward, module,
                          _layers=layers)
