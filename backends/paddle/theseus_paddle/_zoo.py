"""Build small Paddle models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure, so a scenario is written once and checked on every framework.
"""

from __future__ import annotations

from collections import OrderedDict

import paddle
import paddle.nn as nn
from theseus_conformance.spec import builder

__all__ = ["build", "Chain", "Residual"]


class Chain(nn.Layer):
    """A plain layer whose children are attributes, run in definition order."""

    def __init__(self, children: list) -> None:
        super().__init__()
        for name, child in children:
            setattr(self, name, child)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for child in self._sub_layers.values():
            if child is None:
                continue
            if isinstance(child, nn.LayerDict):
                for m in child.values():
                    x = m(x)
            elif isinstance(child, nn.LayerList):
                for m in child:
                    x = m(x)
            else:
                x = child(x)
        return x


class Residual(nn.Layer):
    """``x + body(x)``."""

    def __init__(self, body: nn.Layer) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x + self.body(x)


build = builder({
    "conv": lambda cin, cout, k, stride, padding, groups, bias: nn.Conv2D(
        cin, cout, k, stride=stride, padding=padding, groups=groups, bias_attr=None if bias else False),
    "bn": nn.BatchNorm2D, "relu": nn.ReLU, "identity": nn.Identity, "flatten": nn.Flatten,
    "pool": lambda: nn.AdaptiveAvgPool2D(1), "linear": nn.Linear,
    "seq": lambda kids: nn.Sequential(*kids), "named_seq": lambda kids: nn.Sequential(*kids),
    "list": nn.LayerList, "dict": lambda kids: nn.LayerDict(OrderedDict(kids)),
    "chain": Chain, "residual": Residual,
})
"""A paddle layer for one node of the neutral spec."""
