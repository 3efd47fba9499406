"""Build small Paddle models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure, so a scenario is written once and checked on every framework.
"""

from __future__ import annotations

from collections import OrderedDict

import paddle
import paddle.nn as nn

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


def build(spec: list) -> nn.Layer:
    """A Paddle layer for one node of the neutral spec."""
    kind, *args = spec
    if kind == "conv":
        cin, cout, k, stride, padding, groups, bias = args
        return nn.Conv2D(cin, cout, k, stride=stride, padding=padding, groups=groups,
                         bias_attr=None if bias else False)
    if kind == "bn":
        return nn.BatchNorm2D(args[0])
    if kind == "relu":
        return nn.ReLU()
    if kind == "identity":
        return nn.Identity()
    if kind == "flatten":
        return nn.Flatten()
    if kind == "pool":
        return nn.AdaptiveAvgPool2D(1)
    if kind == "linear":
        return nn.Linear(args[0], args[1])
    if kind == "seq":
        return nn.Sequential(*[build(c) for c in args[0]])
    if kind == "named_seq":
        return nn.Sequential(*[(n, build(c)) for n, c in args[0]])
    if kind == "list":
        return nn.LayerList([build(c) for c in args[0]])
    if kind == "dict":
        return nn.LayerDict(OrderedDict((n, build(c)) for n, c in args[0]))
    if kind == "chain":
        return Chain([(n, build(c)) for n, c in args[0]])
    if kind == "residual":
        return Residual(build(args[0]))
    raise ValueError(f"unknown spec node {kind!r}")
