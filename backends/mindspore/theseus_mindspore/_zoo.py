"""Build small MindSpore models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure (same node kinds and child names), so a scenario is written once and checked on
every framework. Convs use ``pad_mode='pad'`` (MindSpore's default ``'same'`` differs).
"""

from __future__ import annotations

from collections import OrderedDict

from ._runtime import mindspore

nn = mindspore.nn

__all__ = ["build", "Chain", "Residual"]


class Chain(nn.Cell):
    """A plain cell whose children are attributes, run in definition order."""

    def __init__(self, children: list) -> None:
        super().__init__()
        for name, child in children:
            setattr(self, name, child)

    def construct(self, x):
        for child in self._cells.values():
            if isinstance(child, nn.CellDict):
                for m in child.values():
                    x = m(x)
            elif isinstance(child, nn.CellList):
                for m in child:
                    x = m(x)
            else:
                x = child(x)
        return x


class Residual(nn.Cell):
    """``x + body(x)``."""

    def __init__(self, body: nn.Cell) -> None:
        super().__init__()
        self.body = body

    def construct(self, x):
        return x + self.body(x)


def build(spec: list) -> nn.Cell:
    """A MindSpore cell for one node of the neutral spec."""
    kind, *args = spec
    if kind == "conv":
        cin, cout, k, stride, padding, groups, bias = args
        return nn.Conv2d(cin, cout, k, stride=stride, pad_mode="pad", padding=padding, group=groups, has_bias=bias)
    if kind == "bn":
        return nn.BatchNorm2d(args[0], momentum=0.9)
    if kind == "relu":
        return nn.ReLU()
    if kind == "identity":
        return nn.Identity()
    if kind == "flatten":
        return nn.Flatten()
    if kind == "pool":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "linear":
        return nn.Dense(args[0], args[1])
    if kind == "seq":
        return nn.SequentialCell([build(c) for c in args[0]])
    if kind == "named_seq":
        return nn.SequentialCell(OrderedDict((n, build(c)) for n, c in args[0]))
    if kind == "list":
        return nn.CellList([build(c) for c in args[0]])
    if kind == "dict":
        return nn.CellDict(OrderedDict((n, build(c)) for n, c in args[0]))
    if kind == "chain":
        return Chain([(n, build(c)) for n, c in args[0]])
    if kind == "residual":
        return Residual(build(args[0]))
    raise ValueError(f"unknown spec node {kind!r}")
