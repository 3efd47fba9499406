"""Port certificates: a small framework-neutral file that lets anyone re-check a port with only
the target framework installed.

A certificate (``.tcert``, a deterministic zip of ``meta.json`` and ``.npy`` arrays) holds:

* the layer map (source descriptor -> destination descriptor) of every judged layer;
* the input generator (``theseus.make_input``: numpy ``RandomState(seed)``, shape, scale);
* the tolerance model and, per judged output, its float32 round-off and tolerance (the source
  is recorded with ``float64="always"``: ``noise = max(fan-in estimate, float64 measurement)``
  for every output where the backend can run float64, so the tolerances do not depend on the
  destination that was certified; see ``theseus._compare``);
* golden activations (the source's float32 outputs) at the stage taps (the last layer at
  each spatial resolution) and at the model's output;
* per-layer digests: per-channel mean and root-mean-square of every judged output
  (``[2, C]``, from float32 sums; a difference of digests never exceeds the max abs
  difference of the outputs, so a digest is judged with the layer's own tolerance plus the
  bound on the two digests' float32 rounding, ``digest_error``).

``verify`` rebuilds the input, runs only the target model (the source framework is never
imported), and reports the first failing layer in execution order, like ``compare``.
Equal inputs give byte-identical certificates.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np

from ._backend import backend_of
from ._compare import (
    FAN_IN,
    FLOAT64,
    OUTPUT,
    U32,
    CompareReport,
    LayerRow,
    Metrics,
    Recording,
    ToleranceModel,
    _Calls,
    _flatten,
    _maxabs,
    _metrics,
    _name,
    _read_zip,
    _write_zip,
    judge,
    make_input,
    record,
)
from ._errors import InvalidArgumentError, TheseusError
from ._walk import eval_mode, walk

__all__ = ["PortMismatchError", "certify", "verify", "digest"]

FORMAT = "theseus-port-certificate/2"
# /1 held float64 digests; they verify the same way (their own rounding is far below the bound)
READABLE = ("theseus-port-certificate/1", FORMAT)


class PortMismatchError(TheseusError, AssertionError):
    """``certify`` refuses a port that ``compare`` flags; ``.report`` holds the judgment."""

    def __init__(self, message: str, report: CompareReport) -> None:
        super().__init__(message)
        self.report = report


def digest(a: np.ndarray) -> np.ndarray:
    """Per-channel mean and root-mean-square (axis 1; the whole tensor for fewer than 2 dims)
    as a float64 ``[2, C]`` array, from float32 sums.

    Each channel's values and their squares are summed in float32 by numpy's pairwise
    summation along a contiguous row (a fixed order: deterministic), then divided in float64.
    The rounding of either entry is at most ``digest_error(n) * max|a|`` for ``n`` values per
    channel (see ``digest_error``); ``verify`` adds twice that to a digest's tolerance.

    Example:
        >>> digest(np.ones((1, 3, 2, 2), np.float32)).shape
        (2, 3)
    """
    a = np.asarray(a)
    if a.ndim < 2:
        a = a.reshape(1, -1)
    c = a.shape[1]
    if a.size == 0:
        return np.zeros((2, c))
    # channels first and contiguous (a view when the batch is 1): rows reduce pairwise
    flat = a.reshape(c, -1) if a.shape[0] == 1 else np.moveaxis(a, 1, 0).reshape(c, -1)
    flat = np.ascontiguousarray(flat, dtype=np.float32)
    n = flat.shape[1]
    s = np.add.reduce(flat, axis=1)
    q = np.add.reduce(np.square(flat), axis=1)
    return np.stack([s.astype(np.float64) / n, np.sqrt(q.astype(np.float64) / n)])


def digest_error(n: int) -> float:
    """A bound, relative to ``max|a|``, on the float32 rounding of either entry of ``digest``
    over ``n`` values per channel: ``(d + 1) * 2**-24`` with ``d = 27 + ceil(log2(n / 128))``
    (``n > 128``; ``d = 27`` otherwise), the longest chain of float32 additions in numpy's
    pairwise summation (a block of at most 128 values: 15 in each of eight accumulators, 3
    combining levels, up to 7 trailing values; one more per halving of larger rows; one for
    the reduction's initial element; one spare). A float32 sum whose every value passes at
    most ``d`` roundings is within ``d * 2**-24 * sum|x|`` (first order), so the mean is within
    ``d * 2**-24 * max|x|``; the squares' own rounding adds one step to the sum of squares,
    and the square root halves the relative error of the RMS.

    Example:
        >>> round(digest_error(128) / 2**-24)
        28
    """
    d = 27 + (math.ceil(math.log2(n / 128)) if n > 128 else 0)
    return (d + 1) * U32


def _taps(rec: Recording) -> set:
    """Names of the stage taps: the last recorded call at each spatial resolution."""
    last: dict[tuple, str] = {}
    for e in rec.entries:
        for p, a in e.outputs.items():
            if a.ndim == 4:
                last[tuple(a.shape[2:])] = _name(e.key, p)
    return set(last.values())


def certify(src: Any, dst: Any, path: str, x: Optional[np.ndarray] = None, map: Any = None, *,
            input_shape: tuple = (1, 3, 224, 224), seed: int = 0, scale: float = 1.0,
            tolerance: Optional[ToleranceModel] = None, recording: Optional[Recording] = None) -> CompareReport:
    """Compare ``dst`` with ``src`` and, when they agree, write the certificate to ``path``.

    The input is always ``make_input(input_shape, seed, scale)`` (recorded in the file), so
    a verifier can regenerate it. ``recording`` may be passed instead of ``src`` (e.g. one
    made in another process). Returns the comparison report.

    Raises:
        PortMismatchError: the port does not agree (nothing is written; ``.report``).

    Example:
        >>> theseus.certify(torch_net, paddle_net, "port.tcert", input_shape=(1, 3, 64, 64))  # doctest: +SKIP
        >>> theseus.verify("port.tcert", paddle_net).ok                                      # doctest: +SKIP
        True
    """
    tm = tolerance or ToleranceModel()
    x = make_input(input_shape, seed, scale)
    rec = recording if recording is not None else record(src, x, float64="always")
    if rec.float64 is not None:         # a recording measuring on suspicion: measure everything
        rec.float64.measure_all()
    if rec.x.shape != x.shape or not np.array_equal(rec.x, x):
        raise InvalidArgumentError("the recording was not made on make_input(input_shape, seed, scale)")
    report = judge(dst, rec, map, tolerance=tm)
    if not report.ok:
        raise PortMismatchError(f"not certified: {report.summary()}", report)
    taps = _taps(rec)
    layers = []
    arrays: dict[str, np.ndarray] = {}
    by_src = {r.src: r for r in report.rows}
    for i, e in enumerate(rec.entries):
        for p, a in e.outputs.items():
            name = _name(e.key, p)
            row = by_src.get(name)
            if row is None:      # unmapped layer: not certified, listed in meta
                continue
            k = len(layers)
            layers.append({"src": name, "dst": row.dst, "src_layer": e.descriptor, "dst_layer": row.dst_layer,
                           "dst_key": row.dst_key, "call": e.call, "path": p, "type": e.type, "shape": list(a.shape),
                           "noise": float(row.acc.noise), "ref_max": row.acc.ref_max,
                           "tol": row.acc.tol, "golden": name in taps})
            arrays[f"digest/{k:05d}"] = digest(a)
            if name in taps:
                arrays[f"golden/{k:05d}"] = a
    outputs = []
    for j, (p, a) in enumerate(sorted(rec.output.items())):
        noise = float(by_src[_name(OUTPUT, p)].acc.noise)
        ref_max = float(np.max(np.abs(a))) if a.size else 0.0
        outputs.append({"path": p, "shape": list(a.shape), "noise": noise, "ref_max": ref_max,
                        "tol": tm.tol(noise, ref_max)})
        arrays[f"output/{j:03d}"] = a
    meta = {
        "format": FORMAT,
        "source_backend": rec.backend,
        "certified_backend": report.dst_backend,
        "noise_method": rec.noise_method,
        "digest": "per-channel mean and RMS from float32 pairwise sums (numpy), divided in float64",
        "input": {"generator": "theseus.make_input: RandomState(seed).standard_normal(shape) * scale, float32",
                  "shape": list(x.shape), "seed": int(seed), "scale": float(scale)},
        "tolerance": tm.to_dict(),
        "map": {r["src_layer"]: r["dst_layer"] for r in layers},
        "unmapped": report.unmapped,
        "layers": layers,
        "outputs": outputs,
    }
    _write_zip(os.fspath(path), meta, arrays)
    return report


def read_certificate(path: str) -> tuple[dict, dict]:
    meta, arrays = _read_zip(os.fspath(path))
    if meta.get("format") not in READABLE:
        raise InvalidArgumentError(f"{path!r} is not a theseus port certificate (format {meta.get('format')!r}, "
                                   f"expected {FORMAT!r})")
    return meta, arrays


def verify(path: str, model: Any) -> CompareReport:
    """Re-check a certified port on ``model`` (the target), without the source.

    Regenerates the certificate's input, runs ``model`` once in eval mode (modes restored),
    judges every certified layer's digest, the golden stage taps and the output with the
    certified tolerances, and names the first failing layer in execution order.

    Example:
        >>> report = theseus.verify("port.tcert", paddle_net)   # doctest: +SKIP
        >>> report.ok                                          # doctest: +SKIP
        True
    """
    meta, arrays = read_certificate(path)
    inp = meta["input"]
    x = make_input(tuple(inp["shape"]), inp["seed"], inp["scale"])
    tm = ToleranceModel(meta["tolerance"]["multiple"], meta["tolerance"]["floor"])
    backend = backend_of(model)
    backend.check_hooks_usable(model)
    report = CompareReport(tolerance=tm, src_backend=f"certificate ({meta['source_backend']})",
                           dst_backend=backend.name)
    with eval_mode(backend, model):
        nodes = {n.text: n for n in walk(backend, model)}
        missing = sorted({r["dst_layer"] for r in meta["layers"]} - set(nodes))
        targets = [nodes[d] for d in dict.fromkeys(r["dst_layer"] for r in meta["layers"]) if d in nodes]
        calls = _Calls(backend, targets, set(), keep_inputs=False)
        try:
            out = _flatten(backend, backend.infer(model, backend.from_numpy(x)))
        finally:
            calls.remove()
        got = {e.key: e for e in calls.entries}
        seen: dict = {}
        rows = []
        for k, r in enumerate(meta["layers"]):
            d = r["dst_layer"]
            dkey = r.get("dst_key") or (d if r["call"] == 0 else f"{d}#{r['call'] + 1}")
            e = got.get(dkey)
            a = None if e is None else e.outputs.get(r["path"])
            if f"golden/{k:05d}" in arrays:
                m = _metrics(a, arrays[f"golden/{k:05d}"], r["noise"], tm)
            else:
                m = _digest_metrics(a, arrays[f"digest/{k:05d}"], r, tm, seen)
            tname = backend.type_name(nodes[d].layer) if d in nodes else "?"
            rows.append(LayerRow(k, r["src"], r["dst"], r["type"], tname, m, None, False, r["path"],
                                 r["src_layer"], d))
        for j, o in enumerate(meta["outputs"]):
            m = _metrics(out.get(o["path"]), arrays[f"output/{j:03d}"], o["noise"], tm)
            rows.append(LayerRow(len(rows), _name(OUTPUT, o["path"]), _name(OUTPUT, o["path"]), "output", "output",
                                 m, None, False, o["path"], OUTPUT, OUTPUT))
    # the certified noise of every layer: measured by float64 re-runs ("float64" in format /1)
    # or the fan-in estimate alone (a source that cannot run float64)
    method = FLOAT64 if meta.get("noise_method") in (FLOAT64, "float64") else FAN_IN
    for r in rows:
        r.acc.noise_method = method
    report.rows = rows
    if missing:
        report.notes.append(f"layers of the certificate missing in the model: {', '.join(missing[:10])}")
    report.first_fault = next((r for r in rows if r.flagged), None)
    if report.first_fault is not None:
        report.cause = _verify_cause(report.first_fault, arrays, meta)
    report.notes.append(f"tolerances certified with noise from: {meta.get('noise_method', '?')}")
    report.notes.append(f"verified against {os.path.basename(os.fspath(path))}: digests at "
                        f"{sum(1 for r in meta['layers'] if not r['golden'])} layers, golden tensors at "
                        f"{sum(1 for r in meta['layers'] if r['golden'])} stage taps and the output")
    return report


def _digest_once(a: np.ndarray, seen: dict) -> np.ndarray:
    """``digest(a)``, once per array (``seen``: id -> (array, digest); a container and its last
    child share one output array)."""
    hit = seen.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    d = digest(a)
    seen[id(a)] = (a, d)
    return d


def _digest_metrics(a: Optional[np.ndarray], golden: np.ndarray, r: dict, tm: ToleranceModel,
                    seen: dict) -> Metrics:
    if a is None:
        return Metrics(math.inf, r["ref_max"], math.inf, math.inf, math.nan, r["noise"], r["tol"],
                       "no output in the model")
    if list(a.shape) != r["shape"]:
        return Metrics(math.inf, r["ref_max"], math.inf, math.inf, math.nan, r["noise"], r["tol"],
                       f"shape {tuple(a.shape)} vs certified {tuple(r['shape'])}")
    m = _metrics(_digest_once(a, seen), golden, r["noise"], tm)
    # a digest difference is bounded by the output's max abs difference: judge it with the
    # layer's own tolerance (set on the output, not on the digest), plus the float32 rounding
    # of the two digests (certified and recomputed); that term is computed only when the
    # difference exceeds the layer's tolerance, which gives the same verdict as always adding it
    m.tol = r["tol"]
    if not (m.max_abs <= m.tol) and a.size:
        n = a.size // (a.shape[1] if a.ndim >= 2 else 1)
        m.tol = r["tol"] + digest_error(n) * (r["ref_max"] + _maxabs(a))
    m.ref_max = r["ref_max"]
    m.rel_max = m.max_abs / r["ref_max"] if r["ref_max"] > 0 else (0.0 if m.max_abs == 0 else math.inf)
    return m


def _verify_cause(row: LayerRow, arrays: dict, meta: dict) -> str:
    m = row.acc
    if m.shape_note:
        return f"output {m.shape_note} (layer configuration differs)"
    return (f"the first layer whose output leaves the certified tolerance ({m.ratio:.3g} x tol); "
            "run theseus.compare against the source for the cause")
