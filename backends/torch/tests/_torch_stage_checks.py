"""Shared by the torch stage tests: a block returning a ``(gate, map)`` tuple, and the check
that each map ``features()`` returns is exactly the stage layer's output (hooked on the
unmodified model in the same process)."""

from __future__ import annotations

import torch
from torch import nn

import theseus


class Gated(nn.Module):
    """A stage that returns ``(pooled gate, map)``: the map is element 1 of its output."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2, 2)

    def forward(self, x):
        y = self.conv(x)
        return y.mean((2, 3)), y


def assert_stage_outputs(model: nn.Module, feat: nn.Module, x: torch.Tensor) -> list:
    """Run ``feat(x)`` and ``model(x)`` with hooks on the stages; every returned map must equal
    its stage's output (its ``element``, tokens laid out as a grid). Returns the maps."""
    names = feat.feature_info.names()
    seen: dict = {}
    layers = theseus.resolve(model, names)
    hooks = [layers[n].register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, o)) for n in names]
    try:
        with torch.no_grad():
            outs = feat(x)
            model(x)
    finally:
        for h in hooks:
            h.remove()
    assert [o.shape[1] for o in outs] == feat.feature_info.channels()
    for f, out in zip(feat.feature_info, outs):
        ref = seen[f["name"]]
        if "element" in f:
            assert isinstance(ref, (tuple, list))
            ref = ref[f["element"]]
        if f.get("layout") == "tokens":
            ref = ref[:, f["prefix_tokens"]:].transpose(1, 2).reshape(out.shape)
        assert torch.equal(out, ref), f["name"]
    return outs
