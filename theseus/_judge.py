"""The one way theseus calls two tensors equal: a scale-aware judge.

``max|actual - reference| <= rtol * max|reference| + atol``, per tensor, in float64. Float32
round-off grows with the magnitude of the values, so a fixed absolute tolerance is either
too tight for large activations or blind for small ones; the judge scales by the reference.
Framework-free: it takes numpy arrays (or anything ``np.asarray`` accepts) and nested
dict/list/tuple of them.

Defaults (``DEFAULT_RTOL``, ``DEFAULT_ATOL``) were measured with ``benchmarks/agreement.py``:
the same seeded MobileNetV1 (float32) on torch, paddle and MindSpore against the numpy
oracle differs by at most 1.8e-6 x max|reference| on every output (logits, update_res
features, stop_after outputs; FRAMEWORK_FACTS measured ~1.6e-6 on an AVX-512 Xeon).
``rtol = 3e-5`` leaves a ~16x margin for deeper models and other CPUs, while a 1e-3 relative
change of one layer's weights (~1e-4 or more at the output) is still caught. ``atol = 1e-6``
only matters for references that are (nearly) all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._errors import InvalidArgumentError

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "Verdict", "agree", "assert_agree"]

#: Relative tolerance: a multiple of max|reference| (float32 round-off is ~2e-6 of it).
DEFAULT_RTOL = 3e-5
#: Absolute floor, for references that are all (near) zero.
DEFAULT_ATOL = 1e-6


@dataclass(frozen=True)
class Verdict:
    """The judge's answer; truthy when the tensors agree.

    Attributes:
        ok: every tensor agrees (and the structures match).
        message: one line per disagreeing tensor (names it, max abs difference, max |ref|,
            their ratio, the position of the worst element), or a summary when all agree.
        name: the name of the worst tensor (the whole structure's name when all agree).
        max_abs: the largest ``|actual - reference|`` of the worst tensor.
        max_ref: ``max|reference|`` of that tensor.
        ratio: ``max_abs / max_ref`` of that tensor (``inf`` when max_ref is 0 and max_abs is not).
        index: position of the worst element in that tensor (a tuple), or None.
        rtol, atol: the tolerances used.
        failures: the names of every tensor that did not agree.

    Example:
        >>> import numpy as np, theseus
        >>> v = theseus.agree(np.ones(3, np.float32), np.ones(3, np.float32))
        >>> bool(v), v.max_abs
        (True, 0.0)
    """

    ok: bool
    message: str
    name: str = ""
    max_abs: float = 0.0
    max_ref: float = 0.0
    ratio: float = 0.0
    index: Optional[tuple] = None
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    failures: tuple = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message


@dataclass
class _Leaf:
    name: str
    ok: bool
    max_abs: float = 0.0
    max_ref: float = 0.0
    index: Optional[tuple] = None
    problem: str = ""          # structural problem (shape, keys, not an array)
    detail: str = ""


def _fmt_index(index: Optional[tuple]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]" if index else "[]"


def _as_array(x: Any, name: str, side: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - anything that is not array-like
        raise InvalidArgumentError(f"agree: {side} {name!r} is not an array ({type(x).__name__}: {err}); "
                                   "pass numpy arrays (backend.to_numpy(tensor))") from None
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"agree: {side} {name!r} has dtype {arr.dtype}; only real, integer "
                                   "and bool arrays can be judged")
    return arr


def _judge_leaf(a: Any, r: Any, name: str, rtol: float, atol: float) -> _Leaf:
    a = _as_array(a, name, "actual")
    r = _as_array(r, name, "reference")
    if a.shape != r.shape:
        return _Leaf(name, False, problem=f"shape {a.shape} != reference shape {r.shape}")
    if a.size == 0:
        return _Leaf(name, True)
    a64 = a.astype(np.float64)
    r64 = r.astype(np.float64)
    fin = np.isfinite(r64)
    # non-finite reference values must be matched exactly (same inf, NaN where NaN)
    nonfin_bad = ~fin & ~((a64 == r64) | (np.isnan(a64) & np.isnan(r64)))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(fin, np.abs(a64 - r64), 0.0)
    diff = np.where(np.isnan(diff), np.inf, diff)         # NaN in actual, finite reference
    max_ref = float(np.max(np.abs(r64[fin]))) if fin.any() else 0.0
    if nonfin_bad.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(nonfin_bad)), a.shape))
        return _Leaf(name, False, max_abs=float("inf"), max_ref=max_ref, index=idx,
                     detail=f"non-finite reference {r64[idx]} but actual {a64[idx]}")
    flat = int(np.argmax(diff))
    idx = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    max_abs = float(diff.reshape(-1)[flat])
    ok = max_abs <= rtol * max_ref + atol
    return _Leaf(name, ok, max_abs=max_abs, max_ref=max_ref, index=idx,
                 detail=f"actual {a64[idx]:.7g} vs reference {r64[idx]:.7g}")


def _walk(a: Any, r: Any, name: str, rtol: float, atol: float, out: list) -> None:
    if isinstance(r, Mapping):
        if not isinstance(a, Mapping):
            out.append(_Leaf(name, False, problem=f"is a {type(a).__name__}, reference is a mapping"))
            return
        missing = [k for k in r if k not in a]
        extra = [k for k in a if k not in r]
        if missing or extra:
            out.append(_Leaf(name, False, problem=f"keys differ: missing {missing[:5]}, unexpected {extra[:5]}"))
        for k in r:
            if k in a:
                _walk(a[k], r[k], f"{name}[{k!r}]" if name else str(k), rtol, atol, out)
        return
    if isinstance(r, (list, tuple)):
        if not isinstance(a, (list, tuple)):
            out.append(_Leaf(name, False, problem=f"is a {type(a).__name__}, reference is a {type(r).__name__}"))
            return
        if len(a) != len(r):
            out.append(_Leaf(name, False, problem=f"length {len(a)} != reference length {len(r)}"))
        for i, (x, y) in enumerate(zip(a, r)):
            _walk(x, y, f"{name}[{i}]", rtol, atol, out)
        return
    out.append(_judge_leaf(a, r, name or "tensor", rtol, atol))


def _describe(leaf: _Leaf, rtol: float, atol: float) -> str:
    if leaf.problem:
        return f"{leaf.name}: {leaf.problem}"
    ratio = leaf.max_abs / leaf.max_ref if leaf.max_ref else (0.0 if leaf.max_abs == 0 else float("inf"))
    verdict = "<=" if leaf.ok else ">"
    return (f"{leaf.name}: max|a-b| = {leaf.max_abs:.3g} at {_fmt_index(leaf.index)} ({leaf.detail}); "
            f"max|ref| = {leaf.max_ref:.3g}; ratio {ratio:.3g}; "
            f"{verdict} tolerance rtol*max|ref|+atol = {rtol:g}*{leaf.max_ref:.3g}+{atol:g} "
            f"= {rtol * leaf.max_ref + atol:.3g}")


def agree(actual: Any, reference: Any, rtol: Optional[float] = None, atol: Optional[float] = None,
          name: str = "") -> Verdict:
    """Judge whether ``actual`` equals ``reference`` up to float round-off, scaled by size.

    Each tensor passes when ``max|actual - reference| <= rtol * max|reference| + atol``
    (float64 arithmetic; non-finite reference values must be matched exactly). Nested
    dict/list/tuple structures must have the same keys and lengths; every leaf is judged
    against its own ``max|reference|``.

    Args:
        actual: a numpy array (or anything ``np.asarray`` accepts), or a nested
            dict/list/tuple of them.
        reference: the same structure; its magnitude sets the scale.
        rtol: relative tolerance, default ``DEFAULT_RTOL`` (3e-5).
        atol: absolute floor, default ``DEFAULT_ATOL`` (1e-6).
        name: what the tensor is called in messages (nested leaves get ``name['key']``/``name[i]``).

    Returns:
        A ``Verdict``: truthy when everything agrees; ``.message`` names the worst tensor,
        the max abs difference, max |ref|, their ratio and the worst element's position.

    Example:
        >>> import numpy as np, theseus
        >>> ref = np.array([60.0, -2.0], np.float32)
        >>> bool(theseus.agree(ref + 1e-4, ref))        # 1.7e-6 relative: round-off
        True
        >>> v = theseus.agree(ref + [0, 0.1], ref, name="logits")
        >>> print(v.message.split(";")[0])
        logits: max|a-b| = 0.1 at [1] (actual -1.9 vs reference -2)
    """
    rtol = DEFAULT_RTOL if rtol is None else float(rtol)
    atol = DEFAULT_ATOL if atol is None else float(atol)
    if not (rtol >= 0 and atol >= 0):
        raise InvalidArgumentError(f"agree: rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    leaves: list[_Leaf] = []
    _walk(actual, reference, name, rtol, atol, leaves)
    bad = [leaf for leaf in leaves if not leaf.ok]
    numeric = [leaf for leaf in leaves if not leaf.problem]

    def score(leaf: _Leaf) -> float:
        return leaf.max_abs / (rtol * leaf.max_ref + atol) if (rtol * leaf.max_ref + atol) else float("inf")

    worst = max(bad, key=lambda lf: (bool(lf.problem), score(lf))) if bad else (
        max(numeric, key=score) if numeric else None)
    if bad:
        lines = [_describe(leaf, rtol, atol) for leaf in bad]
        message = "\n".join(lines[:20]) + (f"\n... and {len(lines) - 20} more" if len(lines) > 20 else "")
    elif worst is not None:
        message = f"{len(leaves)} tensor(s) agree; worst " + _describe(worst, rtol, atol)
    else:
        message = "nothing to compare (empty structure); agree"
    if worst is None or worst.problem:
        return Verdict(not bad, message, name=(worst.name if worst else name), rtol=rtol, atol=atol,
                       failures=tuple(leaf.name for leaf in bad))
    ratio = worst.max_abs / worst.max_ref if worst.max_ref else (0.0 if worst.max_abs == 0 else float("inf"))
    return Verdict(not bad, message, name=worst.name, max_abs=worst.max_abs, max_ref=worst.max_ref, ratio=ratio,
                   index=worst.index, rtol=rtol, atol=atol, failures=tuple(leaf.name for leaf in bad))


def assert_agree(actual: Any, reference: Any, rtol: Optional[float] = None, atol: Optional[float] = None,
                 name: str = "") -> Verdict:
    """``agree``, raising ``AssertionError`` with the verdict's message when it fails.

    Example:
        >>> import numpy as np, theseus
        >>> theseus.assert_agree(np.zeros(2), np.zeros(2), name="x").ok
        True
    """
    verdict = agree(actual, reference, rtol=rtol, atol=atol, name=name)
    if not verdict:
        raise AssertionError(verdict.message)
    return verdict
