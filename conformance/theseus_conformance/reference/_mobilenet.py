"""MobileNetV1 on the reference layers: the seed's (PaddleClas) structure and names,
deterministic weights from ``seed``."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from theseus._seeded import seeded_weights
from theseus.architectures import MOBILENET_V1_BLOCKS

from ._layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, TheseusLayer

__all__ = ["MobileNetV1", "ConvBNLayer", "DepthwiseSeparable", "BLOCK_CONFIG"]

BLOCK_CONFIG = MOBILENET_V1_BLOCKS  # (in, out1, out2, groups, stride) per block, before scaling


class ConvBNLayer(TheseusLayer):
    """Conv (no bias) -> BatchNorm -> ReLU, children ``conv``, ``bn``, ``relu``."""

    def __init__(self, num_channels: int, filter_size: int, num_filters: int, stride: int, padding: int,
                 num_groups: int = 1) -> None:
        super().__init__()
        self.conv = Conv2d(num_channels, num_filters, filter_size, stride=stride, padding=padding,
                           groups=num_groups, bias=False)
        self.bn = BatchNorm2d(num_filters)
        self.relu = ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.relu(self.bn(self.conv(x)))


class DepthwiseSeparable(TheseusLayer):
    """Children ``depthwise_conv`` (3×3, grouped) and ``pointwise_conv`` (1×1)."""

    def __init__(self, num_channels: int, num_filters1: int, num_filters2: int, num_groups: int, stride: int,
                 scale: float) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNLayer(num_channels, 3, int(num_filters1 * scale), stride, 1,
                                          num_groups=int(num_groups * scale))
        self.pointwise_conv = ConvBNLayer(int(num_filters1 * scale), 1, int(num_filters2 * scale), 1, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1(TheseusLayer):
    """MobileNetV1 as in PaddleClas: ``conv``, ``blocks[0..12]``, ``avg_pool``, ``flatten``, ``fc``.

    Args:
        scale: channel multiplier.
        class_num: classifier outputs.
        return_patterns: layers whose outputs ``forward`` also returns (see ``theseus.update_res``).
        seed: the deterministic initialisation's seed (numpy ``RandomState``).
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, return_patterns: Optional[Sequence[str]] = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.scale = scale
        self.class_num = class_num
        self.conv = ConvBNLayer(3, 3, int(32 * scale), 2, 1)
        self.blocks = Sequential(*[DepthwiseSeparable(int(i * scale), o1, o2, g, s, scale)
                                   for i, o1, o2, g, s in BLOCK_CONFIG])
        self.avg_pool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten(start_dim=1, end_dim=-1)
        self.fc = Linear(int(1024 * scale), class_num)
        params = dict(self.named_parameters())   # the numpy layers need no backend for this
        for name, array in seeded_weights({n: p.shape for n, p in params.items()}, seed).items():
            params[name].data = array
        self.init_res(return_patterns)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self.conv(x)
        x = self.blocks(x)
        x = self.avg_pool(x)
        x = self.flatten(x)
        return self.fc(x)
