"""Build small Paddle models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure, so a scenario is written once and checked on every framework.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn
from theseus_conformance.spec import builder

from ._layer import LAYERS

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


build = builder({**LAYERS, "chain": Chain, "residual": Residual})
"""A paddle layer for one node of the neutral spec."""
