"""Build small torch models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure, so a scenario is written once and checked on every framework.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

__all__ = ["build"]


class Chain(nn.Module):
    """A plain module whose children are attributes, run in definition order."""

    def __init__(self, children: list) -> None:
        super().__init__()
        for name, child in children:
            setattr(self, name, child)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self._modules.values():
            if isinstance(child, nn.ModuleDict):
                for m in child.values():
                    x = m(x)
            elif isinstance(child, nn.ModuleList):
                for m in child:
                    x = m(x)
            else:
                x = child(x)
        return x


class Residual(nn.Module):
    """``x + body(x)``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def build(spec: list) -> nn.Module:
    """A torch module for one node of the neutral spec."""
    kind, *args = spec
    if kind == "conv":
        cin, cout, k, stride, padding, groups, bias = args
        return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias)
    if kind == "bn":
        return nn.BatchNorm2d(args[0])
    if kind == "relu":
        return nn.ReLU()
    if kind == "identity":
        return nn.Identity()
    if kind == "flatten":
        return nn.Flatten()
    if kind == "pool":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "linear":
        return nn.Linear(args[0], args[1])
    if kind == "seq":
        return nn.Sequential(*[build(c) for c in args[0]])
    if kind == "named_seq":
        return nn.Sequential(OrderedDict((n, build(c)) for n, c in args[0]))
    if kind == "list":
        return nn.ModuleList([build(c) for c in args[0]])
    if kind == "dict":
        return nn.ModuleDict(OrderedDict((n, build(c)) for n, c in args[0]))
    if kind == "chain":
        return Chain([(n, build(c)) for n, c in args[0]])
    if kind == "residual":
        return Residual(build(args[0]))
    raise ValueError(f"unknown spec node {kind!r}")
