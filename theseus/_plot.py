"""The compare plot: per-layer relative error along the execution order, log scale, with the
tolerance. SVG is written directly (no dependency); PNG needs matplotlib."""

from __future__ import annotations

import math
import os
from typing import Any

from ._errors import InvalidArgumentError

__all__ = ["plot_report"]

_FLOOR = 1e-12


def _series(report: Any) -> tuple[list, list, list, list]:
    """x positions, accumulated rel error, isolated rel error (None where absent), tolerance
    (relative to max|ref|)."""
    acc, iso, tol, names = [], [], [], []
    for r in report.rows:
        ref = r.acc.ref_max if r.acc.ref_max > 0 else 1.0
        acc.append(r.acc.max_abs / ref)
        iso.append(None if r.iso is None else r.iso.max_abs / (r.iso.ref_max or 1.0))
        tol.append(r.acc.tol / ref)
        names.append(r.src)
    return acc, iso, tol, names


def plot_report(report: Any, path: str) -> str:
    path = os.fspath(path)
    if path.endswith(".svg"):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(svg(report))
        return path
    if path.endswith(".png"):
        return _png(report, path)
    raise InvalidArgumentError(f"plot file must end in .svg or .png, got {path!r}")


def _clip(v: float) -> float:
    if v is None or not math.isfinite(v):
        return 1e3
    return max(v, _FLOOR)


def svg(report: Any, width: int = 960, height: int = 420) -> str:
    """The plot as an SVG document (string)."""
    acc, iso, tol, names = _series(report)
    n = max(len(acc), 2)
    vals = [_clip(v) for v in acc + [v for v in iso if v is not None] + tol]
    lo = 10 ** math.floor(math.log10(min(vals + [1e-8])))
    hi = 10 ** math.ceil(math.log10(max(vals + [1e-2])))
    ml, mr, mt, mb = 70, 20, 40, 60
    pw, ph = width - ml - mr, height - mt - mb

    def X(i: float) -> float:
        return ml + pw * i / (n - 1)

    def Y(v: float) -> float:
        v = _clip(v)
        return mt + ph * (math.log10(hi) - math.log10(v)) / (math.log10(hi) - math.log10(lo))

    def poly(values: list, color: str, dash: str = "", wid: float = 1.5) -> str:
        pts, out = [], []
        for i, v in enumerate(values):
            if v is None:
                continue
            pts.append(f"{X(i):.1f},{Y(v):.1f}")
        d = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="{wid}"{d} points="{" ".join(pts)}"/>')
        return "".join(out)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    e = int(round(math.log10(lo)))
    while 10 ** e <= hi * 1.0001:
        y = Y(10 ** e)
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
        e += 1
    parts.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    parts.append(poly(tol, "#2a9d2a", "6,3"))
    parts.append(poly(acc, "#1f5fbf"))
    parts.append(poly([v for v in iso], "#e08a00", "", 1.0))
    for i, r in enumerate(report.rows):
        if r.flagged:
            parts.append(f'<circle cx="{X(i):.1f}" cy="{Y(acc[i]):.1f}" r="2.5" fill="#d62728"/>')
    f = report.first_fault
    if f is not None and f in report.rows:
        i = report.rows.index(f)
        parts.append(f'<line x1="{X(i):.1f}" x2="{X(i):.1f}" y1="{mt}" y2="{mt + ph}" stroke="#d62728"/>')
        parts.append(f'<text x="{X(i) + 4:.1f}" y="{mt + 14}" fill="#d62728">first fault: {_esc(f.src)}</text>')
    title = (f"compare {_esc(report.src_backend)} -> {_esc(report.dst_backend)}: relative error "
             f"max|dst-src|/max|src| per layer (execution order)")
    parts.append(f'<text x="{ml}" y="20" font-size="13">{title}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 30}" text-anchor="middle">layer (execution order, '
                 f'{len(acc)} outputs)</text>')
    lx = ml
    for color, label, dash in (("#1f5fbf", "accumulated", ""), ("#e08a00", "isolated", ""),
                               ("#2a9d2a", "tolerance", "6,3"), ("#d62728", "flagged", "")):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{height - 12}" y2="{height - 12}" stroke="{color}" '
                     f'stroke-width="2"{d}/>')
        parts.append(f'<text x="{lx + 28}" y="{height - 8}">{label}</text>')
        lx += 120
    parts.append("</svg>\n")
    return "\n".join(parts)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _png(report: Any, path: str) -> str:
    try:
        # a Figure without pyplot: no global backend switch, no figure registry in the caller's process
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidArgumentError("a .png plot needs matplotlib (pip install matplotlib, or "
                                   "pip install 'theseus-surgery[plot]'); or write .svg, which needs nothing") from None
    acc, iso, tol, names = _series(report)
    fig = Figure(figsize=(11, 4.5), dpi=100)
    ax = fig.subplots()
    xs = list(range(len(acc)))
    ax.semilogy(xs, [_clip(v) for v in acc], color="#1f5fbf", lw=1.5, label="accumulated")
    ix = [i for i, v in enumerate(iso) if v is not None]
    ax.semilogy(ix, [_clip(iso[i]) for i in ix], color="#e08a00", lw=1.0, label="isolated")
    ax.semilogy(xs, [_clip(v) for v in tol], color="#2a9d2a", ls="--", lw=1.5, label="tolerance")
    fl = [i for i, r in enumerate(report.rows) if r.flagged]
    ax.scatter(fl, [_clip(acc[i]) for i in fl], color="#d62728", s=10, zorder=3, label="flagged")
    f = report.first_fault
    if f is not None and f in report.rows:
        i = report.rows.index(f)
        ax.axvline(i, color="#d62728", lw=1)
        ax.text(i, ax.get_ylim()[1], f" first fault: {f.src}", color="#d62728", va="top", fontsize=9)
    ax.set_xlabel(f"layer (execution order, {len(acc)} outputs)")
    ax.set_ylabel("max|dst - src| / max|src|")
    ax.set_title(f"compare {report.src_backend} -> {report.dst_backend}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
