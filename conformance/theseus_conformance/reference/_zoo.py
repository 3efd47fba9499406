"""Build small reference models from the conformance suite's neutral model spec
(``theseus_conformance.spec``), with the same structure as every other backend's ``build``."""

from __future__ import annotations

from typing import Any

from ._layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Layer, LayerDict, LayerList,
                      Linear, ReLU, Sequential)

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


def build(spec: list) -> Layer:
    """A reference layer for one node of the neutral spec.

    Example:
        >>> type(build(["seq", [["relu"], ["identity"]]])).__name__
        'Sequential'
    """
    kind, *args = spec
    if kind == "conv":
        cin, cout, k, stride, padding, groups, bias = args
        return Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias)
    simple = {"relu": ReLU, "identity": Identity, "flatten": Flatten, "pool": lambda: AdaptiveAvgPool2d(1)}
    if kind in simple:
        return simple[kind]()
    if kind == "bn":
        return BatchNorm2d(args[0])
    if kind == "linear":
        return Linear(args[0], args[1])
    if kind == "seq":
        return Sequential(*[build(c) for c in args[0]])
    if kind == "named_seq":
        return Sequential([(n, build(c)) for n, c in args[0]])
    if kind == "list":
        return LayerList([build(c) for c in args[0]])
    if kind == "dict":
        return LayerDict([(n, build(c)) for n, c in args[0]])
    if kind == "chain":
        return Chain([(n, build(c)) for n, c in args[0]])
    if kind == "residual":
        return Residual(build(args[0]))
    raise ValueError(f"unknown spec node {kind!r}")
