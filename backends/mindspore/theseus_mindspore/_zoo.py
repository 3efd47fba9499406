"""Build small MindSpore models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure (same node kinds and child names), so a scenario is written once and checked on
every framework. Convs use ``pad_mode='pad'`` (MindSpore's default ``'same'`` differs).
"""

from __future__ import annotations

from ._runtime import mindspore
from theseus_conformance.spec import builder

from ._layer import LAYERS

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


build = builder({**LAYERS, "chain": Chain, "residual": Residual})
"""A MindSpore cell for one node of the neutral spec."""
