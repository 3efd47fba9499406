"""Layer-by-layer comparison of two models (e.g. two framework ports of one network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ._backend import backend_of
from ._ops import Patterns, _as_list, _resolve_nodes

__all__ = ["CompareReport", "compare", "run_capturing"]


@dataclass
class CompareReport:
    """Per-layer max abs differences in execution order, and the first divergence."""

    rows: list = field(default_factory=list)       # (descriptor, max_abs_diff, ok)
    output_diff: float = 0.0
    first_divergence: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    def __str__(self) -> str:
        head = "outputs agree" if self.ok else f"first diverging layer: {self.first_divergence}"
        return f"{head}; final output max abs diff {self.output_diff:.3g}; {len(self.rows)} layers compared"


def _flat(backend: Any, out: Any) -> list[np.ndarray]:
    if isinstance(out, dict):
        return [a for v in out.values() for a in _flat(backend, v)]
    if isinstance(out, (list, tuple)):
        return [a for v in out for a in _flat(backend, v)]
    return [backend.to_numpy(out)]


def run_capturing(model: Any, x: np.ndarray, patterns: Patterns = "**") -> tuple[list[np.ndarray], dict]:
    """Run ``model`` on numpy input; return (final outputs, {descriptor: outputs}) with the
    dict in execution order (last call of a layer wins). Hooks are removed afterwards."""
    backend = backend_of(model)
    backend.check_hooks_usable(model)
    nodes = _resolve_nodes(backend, model, _as_list(patterns, "compare"))
    seen: dict[str, list] = {}
    handles = []
    for _, node in nodes:
        def hook(layer, inputs, output, key=node.text):
            seen.pop(key, None)
            seen[key] = _flat(backend, output)
        handles.append(backend.add_forward_hook(node.layer, hook))
    try:
        out = backend.infer(model, backend.from_numpy(x))
    finally:
        for h in handles:
            h.remove()
    return _flat(backend, out), seen


def compare(model_a: Any, model_b: Any, inputs: np.ndarray, patterns: Patterns = "**",
            atol: float = 1e-4, rtol: float = 1e-4) -> CompareReport:
    """Run both models on the same input and name the first layer whose outputs diverge.

    Layers are matched by descriptor and visited in model A's execution order.

    Example:
        >>> report = theseus.compare(torch_net, paddle_net, x)     # doctest: +SKIP
        >>> report.first_divergence is None                         # doctest: +SKIP
        True
    """
    out_a, seen_a = run_capturing(model_a, inputs, patterns)
    out_b, seen_b = run_capturing(model_b, inputs, patterns)
    report = CompareReport()
    for key, arrs_a in seen_a.items():
        arrs_b = seen_b.get(key)
        if arrs_b is None:
            continue
        if len(arrs_a) != len(arrs_b) or any(a.shape != b.shape for a, b in zip(arrs_a, arrs_b)):
            report.rows.append((key, float("inf"), False))
        else:
            diff = max((float(np.max(np.abs(a - b))) if a.size else 0.0) for a, b in zip(arrs_a, arrs_b))
            ok = all(np.allclose(a, b, atol=atol, rtol=rtol) for a, b in zip(arrs_a, arrs_b))
            report.rows.append((key, diff, ok))
        if not report.rows[-1][2] and report.first_divergence is None:
            report.first_divergence = key
    if len(out_a) == len(out_b) and all(a.shape == b.shape for a, b in zip(out_a, out_b)):
        report.output_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(out_a, out_b))
    else:
        report.output_diff = float("inf")
    return report
