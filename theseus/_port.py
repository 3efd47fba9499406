"""``theseus.port``: move weights between two implementations and prove it worked.

Without a map, models whose neutral keys line up (theseus's own implementations) are
ported key by key. With ``map=`` (a ``PortMap`` from ``theseus.match``, or a path to one)
the source may be another implementation or a bare weights dict read from a checkpoint.
With ``example_input=`` and a source model, the port is verified: both models run on the
input, every paired layer's output is judged by scale, and the first layer that differs is
named together with the likely cause (a padding convention, a transform).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._backend import backend_of
from ._errors import InvalidArgumentError, TheseusError

__all__ = ["PortReport", "PortVerificationError", "native_state", "port"]


class PortVerificationError(TheseusError):
    """The ported model does not agree with the source (``report`` attached)."""

    def __init__(self, message: str, report: "PortReport"):
        super().__init__(message)
        self.report = report


@dataclass
class PortReport:
    """What ``port`` did and what its verification found.

    Attributes:
        load: the destination's ``LoadReport``.
        matched: tensors moved through the map (0 without a map).
        transforms: ``{(src transform, dst transform): count}``.
        verified: whether the outputs were compared (needs a source model and an input).
        max_diff: largest abs difference of the final outputs (None if not verified).
        first_difference: the first paired layer (source descriptor -> destination
            descriptor) whose output differs, or None.
        cause: the likely cause of that difference, when theseus can name one.
        fixes: changes ``port`` made to the destination (``fix_padding``).
        message: the judge's message for the first difference.
    """

    load: Any = None
    matched: int = 0
    transforms: dict = field(default_factory=dict)
    verified: bool = False
    max_diff: Optional[float] = None
    first_difference: Optional[tuple] = None
    cause: Optional[str] = None
    fixes: list = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.load is not None and self.load.ok and self.first_difference is None
                    and (not self.verified or self.max_diff is not None))

    def summary(self) -> str:
        lines = [f"loaded {len(self.load.loaded) if self.load else 0} tensors"
                 + (f" through the map ({self.matched} matched)" if self.matched else "")]
        if self.transforms:
            lines.append("transforms: " + ", ".join(f"{a}->{b} x{n}" for (a, b), n in sorted(self.transforms.items())))
        for fix in self.fixes:
            lines.append(f"fixed: {fix}")
        if not self.verified:
            lines.append("not verified (needs a source model and example_input)")
        elif self.first_difference is None:
            lines.append(f"verified: outputs agree (max abs diff {self.max_diff:.3g})")
        else:
            src, dst = self.first_difference
            lines.append(f"DIFFERS: first differing layer {src} -> {dst}; final max abs diff {self.max_diff:.3g}")
            if self.cause:
                lines.append(f"likely cause: {self.cause}")
        return "\n".join(lines)

    __str__ = summary


def native_state(model: Any) -> dict:
    """``{native name: array}`` of a model, named and laid out as its framework's own
    checkpoint files (``state_dict``/``parameters_dict``) hold them."""
    from . import _state

    if not hasattr(_state, "state_layout"):
        raise TheseusError("native names need the per-tensor layout protocol (state_layout)")
    from ._layout import TRANSFORMS

    neutral = _state.state(model)
    out = {}
    for e in _state.state_layout(model):
        if e.transform.startswith("concat"):
            raise TheseusError(f"{e.key}: writing a tensor split over {len(e.native)} native tensors "
                               "needs their shapes; save it as .npz")
        out.update(zip(e.native, TRANSFORMS[e.transform][1](neutral[e.key], [None] * len(e.native))))
    return out


def _judge(a: np.ndarray, b: np.ndarray, rtol: Optional[float], atol: Optional[float], name: str):
    try:
        from ._judge import agree
    except ImportError:  # before the shared judge: the same rule with its defaults
        r = 3e-5 if rtol is None else rtol
        t = 1e-6 if atol is None else atol
        ok = a.shape == b.shape and float(np.max(np.abs(a - b))) <= r * float(np.max(np.abs(b))) + t
        return ok, f"{name}: max abs diff {float(np.max(np.abs(a - b))) if a.shape == b.shape else 'shape'}"
    v = agree(a, b, rtol=rtol, atol=atol, name=name)
    return bool(v), v.message


def _padding_cause(pm: Any, src: str, dst: str) -> Optional[str]:
    a, b = pm.src.units.get(src, {}), pm.dst.units.get(dst, {})
    pa, pb = a.get("padding"), b.get("padding")
    if pa is None or pb is None or pa == pb:
        return None
    size = (a.get("in_shape") or [None])[-1]
    parity = "" if size is None else f" at input size {size} ({'odd' if size % 2 else 'even'})"
    spell = lambda p: "TF 'same' (extra row/column bottom/right)" if p == "same" else f"pads {tuple(p)} (top, bottom, left, right)"  # noqa: E731
    return (f"padding convention of this {a.get('family', 'layer')}: source {spell(pa)}, destination {spell(pb)}; "
            f"they coincide only where 'same' pads symmetrically (e.g. an odd input size for kernel 3, stride 2)"
            f"{parity}. port(..., fix_padding=True) replaces the destination's layer by one with the source's padding")


def _first_array(backend: Any, out: Any) -> Any:
    while isinstance(out, (list, tuple)) and out:
        out = out[0]
    if isinstance(out, dict) and out:
        out = next(iter(out.values()))
    return backend.to_numpy(out)


def _run_capturing(model: Any, x: np.ndarray, descriptors: list) -> tuple[list, dict]:
    """Run ``model`` on numpy input in eval mode; ``([final output], {descriptor: [first
    output of its first call]})``, copied when produced (later in-place ops cannot change
    them). Hooks removed and training flags restored afterwards."""
    from ._walk import eval_mode, lookup

    backend = backend_of(model)
    backend.check_hooks_usable(model)
    seen: dict = {}
    handles = []
    for desc in dict.fromkeys(descriptors):
        def hook(layer, inputs, output, key=desc):
            if key not in seen:
                seen[key] = [_first_array(backend, output)]
        handles.append(backend.add_forward_hook(lookup(backend, model, desc).layer, hook))
    try:
        with eval_mode(backend, model):
            out = backend.infer(model, backend.from_numpy(x))
    finally:
        for h in handles:
            h.remove()
    return [_first_array(backend, out)], seen


def _verify(src: Any, dst: Any, pm: Any, x: Any, rtol, atol, report: PortReport) -> None:
    xs = x if isinstance(x, dict) else {"src": x, "dst": x}
    pairs = [(s, d) for s, d in pm.layers if s and d]
    out_s, seen_s = _run_capturing(src, np.asarray(xs["src"]), [s for s, _ in pairs])
    out_d, seen_d = _run_capturing(dst, np.asarray(xs["dst"]), [d for _, d in pairs])
    report.verified = True
    fa, fb = out_d[0], out_s[0]
    report.max_diff = float(np.max(np.abs(fa - fb))) if fa.shape == fb.shape else float("inf")
    final_ok, final_msg = _judge(fa, fb, rtol, atol, "output")
    for s, d in pairs:
        a, b = seen_d.get(d), seen_s.get(s)
        if a is None or b is None:
            continue
        ok, msg = _judge(a[0], b[0], rtol, atol, f"{s} -> {d}")
        if not ok and a[0].shape == b[0].shape:
            # an activation folded into the layer on one side only (timm's BatchNormAct2d):
            # the outputs then agree once both are activated
            ok, _ = _judge(np.maximum(a[0], 0), np.maximum(b[0], 0), rtol, atol, f"{s} -> {d}")
            ok = ok and bool(np.all(np.minimum(a[0], 0) == 0) or np.all(np.minimum(b[0], 0) == 0))
        if not ok:
            report.first_difference, report.message = (s, d), msg
            report.cause = _padding_cause(pm, s, d)
            break
    if report.first_difference is None and not final_ok:
        report.first_difference, report.message = ("(output)", "(output)"), final_msg


def _fix_padding(dst: Any, pm: Any) -> list:
    from ._ops import upgrade_sublayer

    backend = backend_of(dst)
    fixes = []
    for s, d in pm.layers:
        a, b = pm.src.units.get(s, {}), pm.dst.units.get(d, {})
        if a.get("family") in ("max_pool", "avg_pool") and a.get("family") == b.get("family") \
                and a.get("padding") != b.get("padding") and d:
            pad = a["padding"] if a["padding"] == "same" else tuple(a["padding"])
            new = backend.make_pool(a["family"], tuple(a["kernel"]), tuple(a["stride"]), pad)
            upgrade_sublayer(dst, d, lambda layer, pattern, new=new: new)
            fixes.append(f"{d}: {a['family']} padding {b.get('padding')} -> {a['padding']} (the source's {s}), "
                         "through upgrade_sublayer")
            b["padding"] = a["padding"]
    return fixes


def port(src: Any, dst: Any, map: Any = None, *, example_input: Any = None, prefix: Optional[str] = None,
         strict: bool = True, fix_padding: bool = False, rtol: Optional[float] = None,
         atol: Optional[float] = None, raise_on_difference: bool = False, **kwargs: Any):
    """Copy every weight from ``src`` (a model, or a weights dict from a checkpoint) into
    ``dst``, across frameworks and implementations.

    Args:
        src: a model of any backend, or ``{name: array}`` (native names of the source
            implementation, as in its checkpoint files, or neutral keys).
        dst: the destination model.
        map: a ``PortMap`` (``theseus.match``) or the path of a saved one. Without it the
            neutral keys of ``src`` must be those of ``dst`` (same implementation).
        example_input: verify the port on this input (needs a source model).
        prefix: the key prefix of the checkpoint's tensors (``"backbone."``, ``"module."``).
        fix_padding: where a paired pooling layer uses another padding convention
            (MindCV's TF-``same`` max-pool), replace the destination's layer by one with the
            source's padding through ``upgrade_sublayer``; listed in ``report.fixes``.
        raise_on_difference: raise ``PortVerificationError`` when verification fails.

    Returns:
        A ``LoadReport`` without ``map``/``example_input`` (as before); else a
        ``PortReport`` whose ``summary()`` says what was matched, the transforms used,
        the max difference and the first differing layer.

    Example:
        >>> pm = theseus.match(ppcls_net, timm_net, x)                       # doctest: +SKIP
        >>> theseus.port(ppcls_net, timm_net, map=pm, example_input=x).ok    # doctest: +SKIP
        True
    """
    from ._portmap import PortMap
    from ._state import load_state, state
    from . import _state

    if map is None and example_input is None:
        return _state.port(src, dst, strict=strict, prefix=prefix, **kwargs)
    if isinstance(map, (str, os.PathLike)):
        map = PortMap.load(map)
    if map is not None and not isinstance(map, PortMap):
        raise InvalidArgumentError(f"map must be a PortMap or the path of a saved one, got {type(map).__name__}")
    is_model = not isinstance(src, Mapping)
    report = PortReport()
    if map is None:
        report.load = _state.port(src, dst, strict=strict, prefix=prefix, **kwargs)
    else:
        if is_model and hasattr(_state, "state_layout"):
            # the source's own native tensors, so the map's transforms are the ones applied
            arrays = map.apply(native_state(src), keys="native")
        elif is_model:
            arrays = map.apply(state(src), keys="neutral")
        else:
            arrays = map.apply(src, prefix=prefix)
        report.load = load_state(dst, arrays, strict=strict, **kwargs)
        report.matched = len(map.rows)
        report.transforms = map.transforms()
        if fix_padding:
            report.fixes = _fix_padding(dst, map)
    if example_input is not None and is_model:
        if map is None:
            from ._match import match

            map = match(src, dst, example_input)
        _verify(src, dst, map, example_input, rtol, atol, report)
        if raise_on_difference and not report.ok:
            raise PortVerificationError(f"the ported model differs from the source:\n{report.summary()}\n"
                                        f"{report.message}", report)
    return report
