"""Build small reference models from the conformance suite's neutral model spec
(``theseus_conformance.spec``), with the same structure as every other backend's ``build``."""

from __future__ import annotations

from typing import Any

from ._layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Layer, LayerDict, LayerList,
                      Linear, ReLU, Sequential)
from ..spec import builder

__all__ = ["build", "Chain", "Residual"]


class Chain(Layer):
    """A plain layer whose children are attributes, run in definition order (list/dict
    children: their items in order)."""

    def __init__(self, children: list) -> None:
        super().__init__()
        for name, child in children:
            setattr(self, name, child)

    def forward(self, x: Any) -> Any:
        for child in list(self.children()):
            if isinstance(child, (LayerDict, LayerList)):
                for m in (child.values() if isinstance(child, LayerDict) else list(child)):
                    x = m(x)
            else:
                x = child(x)
        return x


class Residual(Layer):
    """``x + body(x)``."""

    def __init__(self, body: Layer) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Any) -> Any:
        return x + self.body(x)


build = builder({
    "conv": lambda cin, cout, k, stride, padding, groups, bias: Conv2d(
        cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias),
    "bn": BatchNorm2d, "relu": ReLU, "identity": Identity, "flatten": Flatten,
    "pool": lambda: AdaptiveAvgPool2d(1), "linear": Linear,
    "seq": lambda kids: Sequential(*kids), "named_seq": Sequential, "list": LayerList,
    "dict": LayerDict, "chain": Chain, "residual": Residual,
})
"""A reference layer for one node of the neutral spec.

Example:
    >>> type(build(["seq", [["relu"], ["identity"]]])).__name__
    'Sequential'
"""
