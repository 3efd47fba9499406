"""Build small torch models from the conformance suite's neutral model spec.

The spec (see ``theseus_conformance.spec``) is nested lists; every backend builds the same
structure, so a scenario is written once and checked on every framework.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from theseus_conformance.spec import builder

from ._layer import LAYERS

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


build = builder({**LAYERS, "chain": Chain, "residual": Residual})
"""A torch module for one node of the neutral spec."""
