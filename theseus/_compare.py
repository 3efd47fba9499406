"""Layer-by-layer comparison of two ports of one network, with a per-layer round-off tolerance.

``compare(src, dst, x)`` first *records* the source (every layer call: its inputs, its
outputs, and how far float32 round-off moves them), then *judges* the destination twice per
mapped layer:

* **accumulated**: the destination layer's output in the destination's own full forward;
* **isolated**: the destination layer (a leaf) called on the source layer's own recorded
  input, so an error is attributed to the layer that makes it, not to everything after it.

The tolerance is per output and scale-aware, never fixed. An output is flagged when

    max|dst - src| > multiple * max(noise, floor * 2**-24 * max|src|)

(``multiple`` = 16, ``floor`` = 4 by default, see ``ToleranceModel``), where ``noise``, the
float32 round-off of that output, is

    noise = max(estimate, measured)       (``measured`` only where it was measured)

* ``estimate`` comes from fan-in: a leaf's isolated output ``2 * 2**-24 * sqrt(fan_in) *
  max|out|`` (``fan_in`` = the product of its neutral ``weight``'s dimensions after the first,
  1 without a weight); an accumulated output ``rel_acc * max|out|`` with ``rel_acc`` the sum of
  ``2 * 2**-24 * sqrt(fan_in)`` over every leaf call up to it in execution order.
* ``measured`` is ``max|out32 - out64|`` of the source re-run in float64 (a float64 copy: in
  full for accumulated outputs and the model output, leaf by leaf on the recorded float32
  inputs for isolated ones).

Because ``noise`` takes the larger of the two, ``measured`` can only clear an output, never
flag one: by default (``float64=True``) it is measured *on suspicion*, only for the outputs
whose difference exceeds the tolerance of the estimate (one float64 forward of the whole
source when an accumulated output or the model output is suspect; a float64 copy of each
suspect leaf for isolated outputs), which gives exactly the verdicts of measuring everywhere
(``float64="always"``) at the cost of the estimate on a port that agrees. ``float64=False``,
or a backend that cannot cast a model to float64 (MindSpore), judges on the estimate alone.
Every judged output says which term set its tolerance (``Metrics.noise_method``) and the
report's notes count the outputs re-judged with a float64 re-run. Measuring on suspicion uses
the live source model when ``judge`` runs: judge a recording before changing the source, or
record with ``float64="always"`` (``Recording.save`` measures everything first); before its
first measurement a recording judged later checks, by one float32 forward, that the source
still reproduces the recorded output within the estimate's tolerance, and otherwise judges the
suspects on the estimate alone and says why. The source
may run in another process (``src`` given as ``"module:callable"``): the recording is
exchanged through a file, which is how Paddle and MindSpore are compared without sharing a
process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._backend import Backend, backend_of
from ._errors import InvalidArgumentError, TheseusError, UnsupportedOperation
from ._ops import Patterns, _as_list, _resolve_nodes
from ._walk import eval_mode, walk

__all__ = [
    "CompareReport",
    "LayerRow",
    "Recording",
    "ToleranceModel",
    "compare",
    "judge",
    "make_input",
    "record",
    "run_capturing",
]

U32 = 2.0 ** -24           # float32 unit round-off
OUTPUT = "<output>"        # the row name of the model's own output

# how the float32 round-off was obtained: per recording (``Recording.noise_method``) ...
FAN_IN = "fan-in estimate"                                   # the estimate alone
ON_SUSPICION = "fan-in estimate, float64 on suspicion"       # measured where the estimate flags
FLOAT64 = "max(fan-in estimate, float64)"                    # measured everywhere
# ... and per judged output (``Metrics.noise_method``): FAN_IN, or FLOAT64 when a float64
# re-run was measured for it (its noise is then the larger of the two)


# ----------------------------------------------------------------------------------------
# the tolerance model
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToleranceModel:
    """How a cross-framework difference is judged.

    ``tol = multiple * max(noise, floor * 2**-24 * max|ref|)`` where ``noise`` is the float32
    round-off of the layer's output: ``max(fan-in estimate, float64 measurement)``, the
    measurement where one was made (see the module docstring).

    Example:
        >>> ToleranceModel().tol(1e-6, 10.0)
        1.6e-05
    """

    multiple: float = 16.0
    floor: float = 4.0

    def tol(self, noise: float, ref_max: float) -> float:
        """``multiple * max(noise, floor * 2**-24 * ref_max)``."""
        return self.multiple * max(noise, self.floor * U32 * ref_max)

    def to_dict(self) -> dict:
        return {"multiple": self.multiple, "floor": self.floor, "unit": U32,
                "noise": "max(fan-in estimate, float64 re-run where measured): theseus._compare"}


def make_input(shape: tuple, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """The framework-neutral input generator of compare/certify:
    ``scale * RandomState(seed).standard_normal(shape)`` as float32 (stable across platforms).

    Example:
        >>> make_input((1, 3, 8, 8), seed=0).dtype
        dtype('float32')
    """
    return (np.random.RandomState(seed).standard_normal(tuple(shape)) * scale).astype(np.float32)


# ----------------------------------------------------------------------------------------
# nested outputs
# ----------------------------------------------------------------------------------------

def _flatten(backend: Backend, out: Any, prefix: str = "", read: Any = None) -> dict[str, np.ndarray]:
    """``{path: array}`` for every tensor in a tensor / list / tuple / dict output."""
    if isinstance(out, Mapping):
        res: dict[str, np.ndarray] = {}
        for k, v in out.items():
            res.update(_flatten(backend, v, f'{prefix}["{k}"]', read))
        return res
    if isinstance(out, (list, tuple)):
        res = {}
        for i, v in enumerate(out):
            res.update(_flatten(backend, v, f"{prefix}[{i}]", read))
        return res
    if out is None or isinstance(out, (bool, int, float, str)):
        return {}
    return {prefix: (read or backend.to_numpy)(out)}


def _tensor_inputs(backend: Backend, inputs: tuple, read: Any) -> Optional[list]:
    """The positional inputs read by ``read`` (see ``_Reader``), or None when one of them is
    not a tensor."""
    out = []
    for a in inputs:
        if backend.shape(a) is None or isinstance(a, (list, tuple, dict)):
            return None
        out.append(read(a))
    return out


class _Held:
    """A framework tensor held until ``_Reader.finish`` reads it."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor


class _Reader:
    """Tensors to numpy, now or (``backend.deferred_reads``) all at once after the forward:
    ``read`` returns an array or a placeholder; ``finish`` replaces the placeholders in the
    dicts and lists it is given."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.defer = bool(getattr(backend, "deferred_reads", False))

    def read(self, tensor: Any) -> Any:
        if self.defer:
            return _Held(self.backend.copy(tensor))
        return self.backend.to_numpy(tensor)

    def flatten(self, out: Any) -> dict:
        return _flatten(self.backend, out, read=self.read)

    def finish(self, containers: Any) -> None:
        if not self.defer:
            return
        to_numpy = self.backend.to_numpy
        for c in containers:
            if c is None:
                continue
            items = c.items() if isinstance(c, dict) else enumerate(c)
            for k, v in list(items):
                if isinstance(v, _Held):
                    c[k] = to_numpy(v.tensor)


def _maxabs(a: np.ndarray) -> float:
    """max |a| (two reductions, no temporary array)."""
    return float(max(a.max(), -a.min())) if a.size else 0.0


def _maxabs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in the wider of the two dtypes (one temporary)."""
    return _maxabs(np.subtract(a, b, dtype=np.result_type(a, b))) if a.size else 0.0


# ----------------------------------------------------------------------------------------
# the recording of the source
# ----------------------------------------------------------------------------------------

@dataclass
class Entry:
    """One call of one source layer."""

    descriptor: str
    call: int
    type: str
    leaf: bool
    outputs: dict                      # path -> float32 array
    inputs: Optional[list] = None      # recorded positional inputs (leaves only)
    noise_acc: dict = field(default_factory=dict)   # path -> fan-in estimate of the round-off (full forward)
    noise_iso: dict = field(default_factory=dict)   # path -> same, the leaf alone on `inputs`
    fan_in: int = 1
    weights: dict = field(default_factory=dict)     # neutral local weights (cause diagnosis)
    in_shapes: tuple = ()                            # shapes of the positional inputs (call pairing)
    params: bool = False                             # the layer holds tensors (weights, statistics)
    export: Any = field(default=None, repr=False, compare=False)   # reads ``weights`` when first needed
    f64_acc: dict = field(default_factory=dict)     # path -> max|out32 - out64| (full forward), where measured
    f64_iso: dict = field(default_factory=dict)     # path -> same, the leaf alone on `inputs`, where measured
    ref_max: dict = field(default_factory=dict, repr=False, compare=False)   # path -> max|output| (a cache)

    def local_weights(self) -> dict:
        """The layer's neutral local weights (read now if the recording deferred it)."""
        if self.export is not None:
            try:
                self.weights = self.export()
            except UnsupportedOperation:
                self.weights = {}
            self.export = None
        return self.weights

    @property
    def key(self) -> str:
        return self.descriptor if self.call == 0 else f"{self.descriptor}#{self.call + 1}"


@dataclass
class Recording:
    """Everything the judge needs from the source, as numpy (framework-neutral).

    Made by ``record``; saved/loaded with ``save``/``load`` so that the source can run in
    another process (or another machine).
    """

    x: np.ndarray
    entries: list
    output: dict
    output_noise: dict
    backend: str
    noise_method: str                  # FAN_IN, ON_SUSPICION or FLOAT64
    notes: list = field(default_factory=list)
    output_f64: dict = field(default_factory=dict)   # path -> measured round-off of the output, where measured
    float64: Any = field(default=None, repr=False, compare=False)   # the live prober (ON_SUSPICION)

    def by_key(self) -> dict:
        return {e.key: e for e in self.entries}

    # -- files -----------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the recording (a deterministic zip). A recording measuring float64 round-off
        on suspicion measures it everywhere first: the file cannot reach the source."""
        if self.float64 is not None:
            self.float64.measure_all()
        arrays: dict[str, np.ndarray] = {"x": self.x}
        meta: dict[str, Any] = {"backend": self.backend, "noise_method": self.noise_method, "notes": self.notes,
                                "output": sorted(self.output), "output_noise": self.output_noise,
                                "output_f64": self.output_f64, "entries": []}
        for p, a in self.output.items():
            arrays[f"output/{p}"] = a
        for i, e in enumerate(self.entries):
            e.local_weights()
            meta["entries"].append({"descriptor": e.descriptor, "call": e.call, "type": e.type, "leaf": e.leaf,
                                    "outputs": list(e.outputs), "n_inputs": None if e.inputs is None else len(e.inputs),
                                    "noise_acc": e.noise_acc, "noise_iso": e.noise_iso, "fan_in": e.fan_in,
                                    "f64_acc": e.f64_acc, "f64_iso": e.f64_iso,
                                    "weights": sorted(e.weights), "params": e.params,
                                    "in_shapes": [None if s is None else list(s) for s in e.in_shapes]})
            for p, a in e.outputs.items():
                arrays[f"{i}/out/{p}"] = a
            for j, a in enumerate(e.inputs or []):
                arrays[f"{i}/in/{j}"] = a
            for k, a in e.weights.items():
                arrays[f"{i}/w/{k}"] = a
        _write_zip(path, meta, arrays)

    @classmethod
    def load(cls, path: str) -> "Recording":
        meta, arrays = _read_zip(path)
        entries = []
        for i, m in enumerate(meta["entries"]):
            n = m["n_inputs"]
            entries.append(Entry(m["descriptor"], m["call"], m["type"], m["leaf"],
                                 {p: arrays[f"{i}/out/{p}"] for p in m["outputs"]},
                                 None if n is None else [arrays[f"{i}/in/{j}"] for j in range(n)],
                                 m["noise_acc"], m["noise_iso"], m["fan_in"],
                                 {k: arrays[f"{i}/w/{k}"] for k in m["weights"]},
                                 tuple(tuple(s) if s is not None else None for s in m.get("in_shapes", ())),
                                 m.get("params", bool(m["weights"])),
                                 f64_acc=m.get("f64_acc", {}), f64_iso=m.get("f64_iso", {})))
        return cls(arrays["x"], entries, {p: arrays[f"output/{p}"] for p in meta["output"]}, meta["output_noise"],
                   meta["backend"], meta["noise_method"], meta["notes"], meta.get("output_f64", {}))


def _write_zip(path: str, meta: dict, arrays: dict) -> None:
    """A deterministic zip: ``meta.json`` (sorted keys) and one ``.npy`` per array, fixed
    timestamps, so equal contents give byte-identical files."""
    import io

    tmp = f"{path}.tmp{os.getpid()}"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("meta.json", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, json.dumps(meta, sort_keys=True, indent=1))
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"arrays/{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED     # float data barely compresses; reads stay fast
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


_MAX_META = 64 * 2**20  # meta.json of a recording/certificate: tables and names, never arrays


def _read_zip(path: str) -> tuple[dict, dict]:
    """Read a recording/certificate with the same guards as ``read_state``: no pickle, array
    sizes checked against their headers before anything is allocated or decompressed."""
    from ._files import DEFAULT_MAX_BYTES, _read_errors, _read_member

    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("meta.json")
            with zf.open(info) as f:
                raw = f.read(_MAX_META + 1)
            if len(raw) > _MAX_META:
                raise InvalidArgumentError(f"{path!r}: meta.json is larger than {_MAX_META} bytes; "
                                           "not a theseus recording/certificate file")
            meta = json.loads(raw)
            arrays = {}
            budget = DEFAULT_MAX_BYTES
            for info in zf.infolist():
                name = info.filename
                if name.startswith("arrays/") and name.endswith(".npy"):
                    arr = _read_member(zf, info, path, name, budget)
                    budget -= arr.nbytes
                    arrays[name[len("arrays/"):-4]] = arr
    except _read_errors() as err:
        raise InvalidArgumentError(f"{path!r} is not a theseus recording/certificate file: {err}") from None
    return meta, arrays


def _shape(backend: Backend, a: Any) -> Optional[tuple]:
    if isinstance(a, (list, tuple, dict)):
        return None
    shape = backend.shape(a)
    return None if shape is None else tuple(shape)


class _Calls:
    """Forward hooks on every node; one ``Entry`` per completed call, in completion order."""

    def __init__(self, backend: Backend, nodes: list, leaves: set, keep_inputs: bool) -> None:
        self.backend = backend
        self.reader = _Reader(backend)
        self.keep_inputs = keep_inputs
        self.entries: list[Entry] = []
        self.counts: dict[str, int] = {}
        self.pending: dict[str, list] = {}
        # outputs already read, by id: (tensor (keeps the id alive), in-place version, array);
        # a leaf whose input, or a layer whose output, is an earlier layer's untouched output
        # reuses that array (read once)
        self.read_outputs: dict[int, tuple] = {}
        self.handles = []
        for node in nodes:
            text = node.text
            leaf = text in leaves
            if leaf and keep_inputs:
                self.handles.append(backend.add_forward_pre_hook(node.layer, self._pre(text)))
            self.handles.append(backend.add_forward_hook(node.layer, self._post(text, backend.type_name(node.layer),
                                                                                leaf)))

    def _read_input(self, tensor: Any) -> Any:
        seen = self.read_outputs.get(id(tensor))
        if seen is not None and seen[0] is tensor:
            version = self.backend.version(tensor)
            if version is not None and version == seen[1]:
                return seen[2]
        return self.reader.read(tensor)

    def _pre(self, text: str):
        def pre(layer, inputs):
            self.pending.setdefault(text, []).append(_tensor_inputs(self.backend, tuple(inputs), self._read_input))
        return pre

    def _post(self, text: str, tname: str, leaf: bool):
        def post(layer, inputs, output):
            call = self.counts.get(text, 0)
            self.counts[text] = call + 1
            stack = self.pending.get(text)
            ins = stack.pop() if stack else None
            shapes = tuple(_shape(self.backend, a) for a in inputs)
            single = not self.reader.defer and not isinstance(output, (list, tuple, Mapping))
            seen = self.read_outputs.get(id(output)) if single else None
            if seen is not None and seen[0] is output and seen[1] == self.backend.version(output):
                outs = {"": seen[2]}     # a container returning its last child's untouched output
            else:
                outs = self.reader.flatten(output)
                if single and len(outs) == 1 and "" in outs:
                    version = self.backend.version(output)
                    if version is not None:
                        if not self.keep_inputs:
                            # only a container's output can repeat: keep the last read alone,
                            # not every activation alive until the forward ends
                            self.read_outputs.clear()
                        self.read_outputs[id(output)] = (output, version, outs[""])
            self.entries.append(Entry(text, call, tname, leaf, outs, ins, in_shapes=shapes))
        return post

    def remove(self) -> None:
        """Remove the hooks and read every held tensor."""
        for h in self.handles:
            h.remove()
        self.handles = []
        self.read_outputs = {}
        self.reader.finish([c for e in self.entries for c in (e.outputs, e.inputs)])


def _leaf_texts(backend: Backend, nodes: list) -> set:
    from ._walk import children_of

    return {n.text for n in nodes if not children_of(backend, n)}


def _fan_in(weights: dict) -> int:
    w = weights.get("weight")
    if w is None or w.ndim < 2:
        return 1
    return int(np.prod(w.shape[1:]))


def _leaf_fan_in(backend: Backend, layer: Any) -> int:
    """``_fan_in`` of the layer's neutral weight from its shape alone (no copy), reading the
    weight only when the neutral tensor is assembled from several native ones."""
    for t in backend.tensors(layer):
        if t.neutral != "weight":
            continue
        natives = t.natives
        if len(natives) != 1 or "." in natives[0] or t.transform not in ("identity", "transpose"):
            return _fan_in(backend.export_local(layer))
        shape = tuple(backend.tensor_shape(layer, natives[0]))
        if len(shape) < 2:
            return 1
        if t.transform == "transpose":
            shape = shape[::-1]
        return int(np.prod(shape[1:]))
    return 1


def _can_float64(backend: Backend) -> bool:
    """Does the backend implement ``float64_copy`` (the optional capability)?"""
    return getattr(type(backend), "float64_copy", None) is not Backend.float64_copy


def record(model: Any, x: np.ndarray, *, float64: Any = True) -> Recording:
    """Run ``model`` on ``x`` in eval mode and record every layer call (outputs, leaf inputs,
    neutral weights) and the float32 round-off of each output (see the module docstring).
    Every layer keeps its own training flag afterwards; running statistics are untouched.

    ``float64``: True (default) measures float64 round-off on suspicion, when ``judge`` finds
    an output beyond the tolerance of the fan-in estimate (the recording keeps the source
    model for it); ``"always"`` measures it for every output now; False never (estimate only).

    Example:
        >>> rec = theseus.record(torch_net, theseus.make_input((1, 3, 64, 64)))  # doctest: +SKIP
        >>> rec.entries[0].key                                                   # doctest: +SKIP
        'conv.conv'
    """
    return _record(model, x, float64, lazy_weights=False)


def _record(model: Any, x: np.ndarray, float64: Any, lazy_weights: bool) -> Recording:
    """``record``; ``lazy_weights`` reads each layer's weights only when first needed."""
    if float64 not in (True, False, "always"):
        raise InvalidArgumentError(f"float64 must be True (on suspicion), 'always' or False, got {float64!r}")
    backend = backend_of(model)
    backend.check_hooks_usable(model)
    x = np.asarray(x)
    notes: list[str] = []
    with eval_mode(backend, model):
        nodes = list(walk(backend, model))
        leaves = _leaf_texts(backend, nodes)
        calls = _Calls(backend, nodes, leaves, keep_inputs=True)
        try:
            out = backend.infer(model, backend.from_numpy(x))
        finally:
            calls.remove()
        output = _flatten(backend, out)
        entries = calls.entries
        by_text = {n.text: n for n in nodes}
        fan_ins: dict[str, int] = {}
        for e in entries:
            if e.leaf:
                layer = by_text[e.descriptor].layer
                e.params = bool(backend.tensors(layer))
                e.export = lambda layer=layer: backend.export_local(layer)
                if not lazy_weights:
                    e.local_weights()
                if e.descriptor not in fan_ins:
                    fan_ins[e.descriptor] = _leaf_fan_in(backend, layer) if e.params else 1
                e.fan_in = fan_ins[e.descriptor]
        out_noise = _noise_fan_in(entries, output)
        rec = Recording(x, entries, output, out_noise, backend.name, FAN_IN, notes)
        if float64 is False:
            notes.append("float64 re-runs off: tolerance from the fan-in estimate alone")
        elif not _can_float64(backend):
            notes.append(f"backend {backend.name!r} cannot run a float64 copy: tolerance from the fan-in "
                         "estimate alone")
        else:
            rec.float64 = _Float64(backend, model, rec, by_text)
            rec.noise_method = ON_SUSPICION
            if float64 == "always":
                rec.float64.checked = True      # measured now: the source cannot have changed
                rec.float64.measure_all()
    return rec


class _Float64:
    """Measures the source's float32 round-off by float64 re-runs, when asked (``judge``:
    on suspicion; ``measure_all``: everywhere). Holds the live source model."""

    def __init__(self, backend: Backend, model: Any, rec: Recording, by_text: dict) -> None:
        self.backend = backend
        self.model = model
        self._rec = weakref.ref(rec)     # the recording holds this prober: no reference cycle
        self.by_text = by_text           # source descriptor -> node (float32 model)
        self.twin: Any = None            # the float64 copy of the whole model, once made
        self.twin_nodes: dict = {}
        self.leaf_twins: dict = {}       # descriptor -> float64 copy of that leaf alone
        self.acc_done = False
        self.iso_done: set = set()
        self.failed = ""                 # why a float64 re-run could not be made
        self.checked = False             # the live source was seen to reproduce the recording

    @property
    def rec(self) -> Recording:
        rec = self._rec()
        if rec is None:
            raise InvalidArgumentError("the recording of this float64 prober no longer exists")
        return rec

    def _copy(self, layer: Any) -> Any:
        twin = self.backend.float64_copy(layer)
        self.backend.set_training(twin, False)
        return twin

    def _check_source(self) -> bool:
        """Before the first measurement: does the live source still reproduce its recording?
        One float32 forward; its output must agree with the recorded one within the
        estimate's tolerance. A source changed after ``record`` would otherwise lend its
        round-off to a recording it no longer matches (and could clear a real fault)."""
        if self.checked:
            return True
        backend, rec = self.backend, self.rec
        with eval_mode(backend, self.model):
            now = _flatten(backend, backend.infer(self.model, backend.from_numpy(rec.x)))
        tm = ToleranceModel()
        for p, a in rec.output.items():
            b = now.get(p)
            tol = tm.tol(rec.output_noise.get(p, 0.0), _maxabs(a))
            if b is None or b.shape != a.shape or not _maxabs_diff(b, a) <= tol:
                self.failed = (f"the source model no longer reproduces its recording (output {_name(OUTPUT, p)} "
                               "moved beyond the estimate's tolerance): it changed after record(); record it again")
                return False
        self.checked = True
        return True

    def measure_acc(self) -> bool:
        """The full float64 forward: ``f64_acc`` of every entry and ``output_f64``."""
        if self.acc_done or self.failed:
            return self.acc_done
        if not self._check_source():
            return False
        backend, rec = self.backend, self.rec
        try:
            if self.twin is None:
                self.twin = self._copy(self.model)
                self.twin_nodes = {n.text: n for n in walk(backend, self.twin)}
        except UnsupportedOperation as err:
            self.failed = str(err)
            return False
        calls = _Calls(backend, list(self.twin_nodes.values()), set(), keep_inputs=False)
        try:
            out64 = _flatten(backend, backend.infer(self.twin, backend.from_numpy(rec.x.astype(np.float64))))
        finally:
            calls.remove()
        acc = {e.key: e for e in calls.entries}
        for e in rec.entries:
            e64 = acc.get(e.key)
            if e64 is None:
                continue
            e.f64_acc = {p: _maxabs_diff(a, e64.outputs[p]) for p, a in e.outputs.items()
                         if p in e64.outputs and e64.outputs[p].shape == a.shape}
        rec.output_f64 = {p: _maxabs_diff(a, out64[p]) for p, a in rec.output.items()
                          if p in out64 and out64[p].shape == a.shape}
        self.acc_done = True
        return True

    def measure_iso(self, keys: Any) -> bool:
        """Float64 re-runs of the leaf calls ``keys`` on their recorded inputs: ``f64_iso``."""
        if self.failed:
            return False
        todo = [e for e in self.rec.entries
                if e.key in keys and e.key not in self.iso_done and e.leaf and e.inputs is not None]
        if not todo:
            return True
        if not self._check_source():
            return False
        jobs = []
        try:
            for e in todo:
                if self.twin is not None:
                    layer = self.twin_nodes[e.descriptor].layer
                else:
                    layer = self.leaf_twins.get(e.descriptor)
                    if layer is None:
                        layer = self.leaf_twins[e.descriptor] = self._copy(self.by_text[e.descriptor].layer)
                jobs.append((e.key, layer, [_up(a) for a in e.inputs]))
        except UnsupportedOperation as err:
            self.failed = str(err)
            return False
        iso = _run_leaves(self.backend, jobs)
        for e in todo:
            y = iso.get(e.key, {})
            e.f64_iso = {p: _maxabs_diff(a, y[p]) for p, a in e.outputs.items() if p in y and y[p].shape == a.shape}
            self.iso_done.add(e.key)
        return True

    def measure_all(self) -> None:
        """Measure every output; the recording then no longer needs the source."""
        if self.twin is None and not self.failed and _can_float64(self.backend):
            try:
                self.twin = self._copy(self.model)          # one copy serves both passes
                self.twin_nodes = {n.text: n for n in walk(self.backend, self.twin)}
            except UnsupportedOperation as err:
                self.failed = str(err)
        ok = self.measure_acc() and self.measure_iso({e.key for e in self.rec.entries if e.leaf})
        rec = self.rec
        if ok:
            rec.noise_method = FLOAT64
        else:
            rec.noise_method = FAN_IN
            rec.notes.append(f"float64 re-run failed ({self.failed}): tolerance from the fan-in estimate alone")
        rec.float64 = None


def _run_leaves(backend: Backend, jobs: list) -> dict:
    """``{key: {path: array}}``: each ``(key, layer, input arrays)`` run on its own inputs;
    the outputs are read after the last run (one wait for an asynchronous runtime)."""
    reader = _Reader(backend)
    out = {key: reader.flatten(backend.infer(layer, *[backend.from_numpy(a) for a in arrays]))
           for key, layer, arrays in jobs}
    reader.finish(out.values())
    return out


def _up(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype == np.float32 else a


def _noise_fan_in(entries: list, output: dict) -> dict:
    """The fan-in estimates (module docstring) of every entry's outputs, and of the model's
    output (returned); keeps each output's max|.| in ``Entry.ref_max`` for the judge."""
    rel_acc = 0.0
    for e in entries:
        e.ref_max = {p: _maxabs(a) for p, a in e.outputs.items()}
        if e.leaf:
            rel = 2.0 * U32 * math.sqrt(e.fan_in)
            rel_acc += rel
            e.noise_iso = {p: rel * m for p, m in e.ref_max.items()}
        e.noise_acc = {p: rel_acc * m for p, m in e.ref_max.items()}
    return {p: rel_acc * _maxabs(a) for p, a in output.items()}


# ----------------------------------------------------------------------------------------
# judging the destination
# ----------------------------------------------------------------------------------------

@dataclass
class Metrics:
    """The difference of one output tensor to its reference."""

    max_abs: float
    ref_max: float
    rel_max: float
    rel_l2: float
    cosine: float
    noise: float
    tol: float
    shape_note: str = ""
    mean_diff: float = math.nan        # |mean(dst) - mean(src)|: what a mean comparison sees
    noise_method: str = FAN_IN         # FAN_IN, or FLOAT64: noise = max(estimate, float64 measurement)

    @property
    def flagged(self) -> bool:
        return bool(self.shape_note) or not (self.max_abs <= self.tol)

    @property
    def ratio(self) -> float:
        """max abs difference / tolerance (> 1 means flagged)."""
        if self.shape_note:
            return math.inf
        return self.max_abs / self.tol if self.tol > 0 else (0.0 if self.max_abs == 0 else math.inf)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("max_abs", "ref_max", "rel_max", "rel_l2", "cosine", "noise", "tol",
                                               "shape_note", "mean_diff", "noise_method")}


def _noise(est: dict, f64: dict, path: str) -> tuple[float, str]:
    """``(noise, method)`` of one output: the estimate, or the larger of it and the float64
    measurement where one was made."""
    e = float(est.get(path, 0.0))
    if path in f64:
        return max(e, float(f64[path])), FLOAT64
    return e, FAN_IN


def _judged(actual: Optional[np.ndarray], ref: np.ndarray, est: dict, f64: dict, path: str,
            tm: ToleranceModel, ref_max: Optional[float] = None) -> Metrics:
    """``_metrics`` with the output's noise from its estimate and measurement (``_noise``)."""
    noise, method = _noise(est, f64, path)
    return _metrics(actual, ref, noise, tm, method, ref_max)


def _metrics(actual: Optional[np.ndarray], ref: np.ndarray, noise: float, tm: ToleranceModel,
             method: str = FAN_IN, ref_max: Optional[float] = None) -> Metrics:
    """The metrics of ``actual`` against ``ref`` (``ref_max``: max|ref| when known)."""
    ref_max = _maxabs(ref) if ref_max is None else ref_max
    tol = tm.tol(noise, ref_max)
    if actual is None:
        return Metrics(math.inf, ref_max, math.inf, math.inf, math.nan, noise, tol, "no output in the destination",
                       noise_method=method)
    if actual.shape != ref.shape:
        return Metrics(math.inf, ref_max, math.inf, math.inf, math.nan, noise, tol,
                       f"shape {tuple(actual.shape)} vs source {tuple(ref.shape)}", noise_method=method)
    # float32 arithmetic with float64 results: the rounding of a - r (<= 2**-24 |a - r|) is far
    # below any tolerance, and BLAS reductions keep the norms accurate
    a = np.ascontiguousarray(actual, dtype=np.float32).ravel()
    r = np.ascontiguousarray(ref, dtype=np.float32).ravel()
    d = a - r
    max_abs = _maxabs(d)
    nr, na, nd = (math.sqrt(float(np.dot(v, v))) for v in (r, a, d))
    rel_l2 = nd / nr if nr > 0 else (0.0 if max_abs == 0 else math.inf)
    # cos = a.r / (|a||r|) with a.r = (|a|^2 + |r|^2 - |a - r|^2) / 2: no extra pass over the data
    cosine = (max(-1.0, min(1.0, (na * na + nr * nr - nd * nd) / (2 * na * nr))) if na > 0 and nr > 0
              else (1.0 if na == nr else 0.0))
    # mean(a) - mean(r) = mean(a - r): one pass (pairwise float32 summation, error ~ log2(n) 2**-24 sum|d|)
    mean_diff = abs(float(np.add.reduce(d)) / d.size) if d.size else 0.0
    return Metrics(max_abs, ref_max, max_abs / ref_max if ref_max > 0 else (0.0 if max_abs == 0 else math.inf),
                   rel_l2, cosine, noise, tol, "", mean_diff, method)


@dataclass
class LayerRow:
    """One output tensor of one layer call: source and destination names, both judgments."""

    index: int                         # execution (completion) order of the source call
    src: str                           # source descriptor (+ #call, + output path)
    dst: str                           # destination descriptor (+ #call, + output path)
    src_type: str
    dst_type: str
    acc: Metrics
    iso: Optional[Metrics] = None      # leaves only
    leaf: bool = False
    path: str = ""                     # which tensor of a nested output ('' for a plain tensor)
    src_layer: str = ""                # source descriptor alone
    dst_layer: str = ""                # destination descriptor alone
    dst_key: str = ""                  # destination call: descriptor[#call]
    src_key: str = ""                  # source call: descriptor[#call]

    @property
    def flagged(self) -> bool:
        return self.acc.flagged or (self.iso is not None and self.iso.flagged)

    @property
    def worst(self) -> float:
        return max(self.acc.ratio, self.iso.ratio if self.iso is not None else 0.0)


@dataclass
class CompareReport:
    """The per-layer judgment of a port.

    Attributes:
        rows: one ``LayerRow`` per mapped output tensor, in the source's execution order
            (the model's own output last, named ``<output>``).
        first_fault: the row that makes the first error (first isolated failure in
            execution order, else the first accumulated one), or None.
        cause: the likely cause of ``first_fault`` when recognisable, else a description.
        unmapped: source layers with no destination counterpart (not judged; listed here).
        notes: how the comparison ran (subprocess, tolerance source, ...).
    """

    rows: list = field(default_factory=list)
    first_fault: Optional[LayerRow] = None
    cause: str = ""
    unmapped: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    tolerance: ToleranceModel = field(default_factory=ToleranceModel)
    src_backend: str = ""
    dst_backend: str = ""

    @property
    def ok(self) -> bool:
        """True when no row is flagged."""
        return self.first_fault is None and not any(r.flagged for r in self.rows)

    @property
    def first_divergence(self) -> Optional[str]:
        """The source descriptor of the first fault (None when the port agrees)."""
        return None if self.first_fault is None else self.first_fault.src_layer

    @property
    def flagged(self) -> list:
        return [r for r in self.rows if r.flagged]

    @property
    def output_diff(self) -> float:
        outs = [r.acc.max_abs for r in self.rows if r.src_layer == OUTPUT]
        return max(outs) if outs else 0.0

    def summary(self) -> str:
        head = f"compare {self.src_backend} -> {self.dst_backend}: {len(self.rows)} outputs judged"
        if self.ok:
            return f"{head}; all agree within the per-layer tolerance (worst {self.worst_ratio():.3g} x tol)"
        f = self.first_fault
        where = "isolated" if f.iso is not None and f.iso.flagged else "accumulated"
        m = f.iso if where == "isolated" else f.acc
        return (f"{head}; {len(self.flagged)} flagged. FIRST FAULT ({where}): source {f.src} ({f.src_type}) = "
                f"destination {f.dst} ({f.dst_type}): max abs {m.max_abs:.3g}, {m.ratio:.3g} x tol"
                f"{'; ' + m.shape_note if m.shape_note else ''}. Likely cause: {self.cause}")

    def worst_ratio(self) -> float:
        return max((r.worst for r in self.rows), default=0.0)

    def table(self, limit: Optional[int] = 20) -> str:
        """Aligned table, worst layers first; the first fault is marked ``>>``. The ``noise``
        column names what set each tolerance (accumulated/isolated): ``est`` the fan-in
        estimate, ``f64`` the larger of it and the source's float64 re-run."""
        rows = sorted(self.rows, key=lambda r: (-r.worst, r.index))
        if limit is not None:
            rows = rows[:limit]
            if self.first_fault is not None and self.first_fault not in rows:
                rows.append(self.first_fault)
        header = ["", "#", "source layer", "destination layer", "type", "acc max abs", "acc rel", "acc relL2",
                  "cos", "acc x tol", "iso max abs", "iso x tol", "noise"]
        body = []
        for r in rows:
            mark = ">>" if r is self.first_fault else ("!" if r.flagged else "")
            iso = r.iso
            body.append([mark, str(r.index), r.src, r.dst, r.src_type if r.src_type == r.dst_type
                         else f"{r.src_type}/{r.dst_type}", _g(r.acc.max_abs), _g(r.acc.rel_max), _g(r.acc.rel_l2),
                         f"{r.acc.cosine:.6f}", _g(r.acc.ratio), "-" if iso is None else _g(iso.max_abs),
                         "-" if iso is None else _g(iso.ratio),
                         "/".join(_SHORT.get(m.noise_method, m.noise_method) for m in (r.acc, iso) if m is not None)])
        return _table(header, body)

    def __str__(self) -> str:
        parts = [self.summary(), self.table()]
        if self.unmapped:
            parts.append(self.unmapped_line())
        parts.extend(f"note: {n}" for n in self.notes)
        return "\n".join(parts)

    def unmapped_line(self, limit: int = 10) -> str:
        """``not judged (no destination layer): a, b, ... (+N more)``."""
        more = len(self.unmapped) - limit
        return (f"not judged (no destination layer): {', '.join(k or '(root)' for k in self.unmapped[:limit])}"
                f"{f' (+{more} more)' if more > 0 else ''}")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "first_fault": None if self.first_fault is None else self.first_fault.src,
                "first_fault_dst": None if self.first_fault is None else self.first_fault.dst,
                "cause": self.cause, "notes": self.notes, "unmapped": self.unmapped,
                "tolerance": self.tolerance.to_dict(),
                "rows": [{"index": r.index, "src": r.src, "dst": r.dst, "src_type": r.src_type,
                          "dst_type": r.dst_type, "acc": r.acc.to_dict(),
                          "iso": None if r.iso is None else r.iso.to_dict()} for r in self.rows]}

    def plot(self, path: str) -> str:
        """Draw the per-layer relative error along the execution order (log scale) with the
        tolerance line; ``.svg`` or ``.png``. Returns ``path``."""
        from ._plot import plot_report

        return plot_report(self, path)


_SHORT = {FAN_IN: "est", FLOAT64: "f64"}


def _g(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return "inf" if v == math.inf else f"{v:.3g}"


def _table(header: list, rows: list) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    right = {1, 5, 6, 7, 8, 9, 10, 11}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _name(key: str, path: str) -> str:
    """A row name: ``descriptor[#call][:output path]``."""
    key = key or "(root)"
    return f"{key}:{path}" if path else key


def _map_pairs(map: Any) -> Optional[dict]:
    """``{src descriptor: dst descriptor}`` from None (same names), a dict, or a PortMap-like
    object (``.layers()`` / ``.translate``)."""
    if map is None:
        return None
    if isinstance(map, Mapping):
        return {str(k): str(v) for k, v in map.items()}
    layers = getattr(map, "layers", None)          # theseus.PortMap: [(src, dst), ...]
    if callable(layers):
        layers = layers()
    if layers is not None:
        return {str(k): str(v) for k, v in dict(layers).items()}
    raise InvalidArgumentError(f"map must be None, a dict {{source descriptor: destination descriptor}} or a "
                               f"theseus.PortMap, got {type(map).__name__}")


_BLOCKS_CACHE: list = []     # [(PortMap, {source block: destination block})], the last few maps


def _translated_blocks(map: Any, descriptors: list) -> dict:
    """``{source block: destination block}`` for the blocks (non-leaf layers) a ``PortMap``
    can translate (``PortMap.translate``: the destination part covering exactly the same
    paired layers); empty for a plain dict. Cached per map object."""
    translate = getattr(map, "translate", None)
    if not callable(translate):
        return {}
    for m, cached in _BLOCKS_CACHE:
        if m is map:
            break
    else:
        cached = {}
        _BLOCKS_CACHE.insert(0, (map, cached))
        del _BLOCKS_CACHE[4:]
    for d in dict.fromkeys(descriptors):
        if d and d not in cached:
            try:
                cached[d] = translate(d)
            except TheseusError:          # no single destination block covers the same layers
                cached[d] = None
    return {k: v for k, v in cached.items() if v is not None}


def _check_map(pairs: Optional[dict], nodes: dict, dst: Any) -> None:
    """Every destination descriptor of the map must be a layer of ``dst`` (a typo would
    otherwise leave a layer unjudged)."""
    for s_desc, d_desc in (pairs or {}).items():
        if d_desc not in nodes:
            example = next((t for t in nodes if t), "")
            raise InvalidArgumentError(
                f"map: destination layer {d_desc!r} (for source {s_desc!r}) is not a layer of the destination "
                f"({type(dst).__name__}); use descriptors as theseus.tree prints them, e.g. {example!r}")


def check_map(dst: Any, map: Any) -> None:
    """Raise ``InvalidArgumentError`` unless every destination layer named by ``map`` exists
    in ``dst`` (what ``judge`` checks first)."""
    backend = backend_of(dst)
    _check_map(_map_pairs(map), {n.text: n for n in walk(backend, dst)}, dst)


def _pair_calls(src: list, dst: list, dmap: dict, dst_weighted: set) -> tuple[dict, int]:
    """``{source call key: destination call key}`` and how many were paired by position.

    A mapped layer pair ``(s, d)`` pairs its calls by call number when both are called equally
    often. The calls left over (a layer shared by several call sites on one side, parameter-free
    layers the map leaves out) are paired where one of a kind sits between the same two paired
    calls on each side: first by input and output shapes, then by shapes and layer type. Identity
    layers are never paired this way (pass-through; they have no counterpart to judge)."""
    s_count: dict[str, int] = {}
    d_count: dict[str, int] = {}
    for e in src:
        s_count[e.descriptor] = s_count.get(e.descriptor, 0) + 1
    for e in dst:
        d_count[e.descriptor] = d_count.get(e.descriptor, 0) + 1
    d_keys = {e.key for e in dst}
    pairs: dict[str, str] = {}
    for e in src:
        d = dmap.get(e.descriptor)
        if d is not None and s_count[e.descriptor] == d_count.get(d):
            k = d if e.call == 0 else f"{d}#{e.call + 1}"
            if k in d_keys:
                pairs[e.key] = k
    rank = {k: i + 1 for i, k in enumerate(pairs)}          # source execution order
    d_rank = {v: rank[k] for k, v in pairs.items()}
    used = set(pairs.values())

    def gaps(entries: list, ranks: dict, taken) -> dict:
        out: dict = {}
        pos = 0
        for e in entries:
            if e.key in ranks:
                pos = ranks[e.key]
            elif e.leaf and not taken(e) and e.type.lower() != "identity":
                shapes = (e.in_shapes, tuple((p, a.shape) for p, a in e.outputs.items()))
                out.setdefault((pos, shapes), []).append(e)
        return out

    g_src = gaps(src, rank, lambda e: e.params)
    g_dst = gaps(dst, d_rank, lambda e: e.key in used or e.descriptor in dst_weighted)
    n = 0
    for key, ss in g_src.items():
        dd = g_dst.get(key, [])
        if len(ss) == 1 and len(dd) == 1:
            pairs[ss[0].key] = dd[0].key
            n += 1
            continue
        by_type: dict = {}
        for e in dd:
            by_type.setdefault(e.type.lower(), []).append(e)
        s_types: dict = {}
        for e in ss:
            s_types.setdefault(e.type.lower(), []).append(e)
        for t, group in s_types.items():
            if len(group) == 1 and len(by_type.get(t, [])) == 1:
                pairs[group[0].key] = by_type[t][0].key
                n += 1
    return pairs, n


def judge(dst: Any, rec: Recording, map: Any = None, *, tolerance: Optional[ToleranceModel] = None,
          isolate: bool = True) -> CompareReport:
    """Judge ``dst`` against a source recording (see ``compare``).

    Example:
        >>> rec = theseus.record(src, x)                      # doctest: +SKIP
        >>> theseus.judge(dst, rec).ok                        # doctest: +SKIP
        True
    """
    tm = tolerance or ToleranceModel()
    backend = backend_of(dst)
    backend.check_hooks_usable(dst)
    pairs = _map_pairs(map)
    report = CompareReport(tolerance=tm, src_backend=rec.backend, dst_backend=backend.name, notes=list(rec.notes))
    with eval_mode(backend, dst):
        all_nodes = list(walk(backend, dst))
        nodes = {n.text: n for n in all_nodes}
        _check_map(pairs, nodes, dst)
        src_descs = list(dict.fromkeys(e.descriptor for e in rec.entries))
        dmap: dict[str, str] = {}
        blocks = _translated_blocks(map, [e.descriptor for e in rec.entries if not e.leaf])
        for s_desc in src_descs:
            d_desc = pairs.get(s_desc, blocks.get(s_desc)) if pairs is not None else s_desc
            if d_desc is not None and d_desc in nodes:
                dmap[s_desc] = d_desc
        # hooks on the mapped layers and on every leaf: the leaves' calls pair the calls of
        # shared or parameter-free layers that the map cannot pair by descriptor alone
        leaves = _leaf_texts(backend, all_nodes)
        targets = [nodes[d] for d in dict.fromkeys(list(dmap.values()) + [n.text for n in all_nodes
                                                                           if n.text in leaves])]
        calls = _Calls(backend, targets, leaves, keep_inputs=False)
        try:
            out = _flatten(backend, backend.infer(dst, backend.from_numpy(rec.x)))
        finally:
            calls.remove()
        dcalls = {e.key: e for e in calls.entries}
        weighted = {t for t in leaves if backend.tensors(nodes[t].layer)}
        call_pairs, n_free = _pair_calls(rec.entries, calls.entries, dmap, weighted)
        if n_free:
            report.notes.append(f"{n_free} calls of layers the map does not pair call by call (shared or "
                                "parameter-free) were paired by position between mapped layers")
        report.unmapped.extend(e.key for e in rec.entries if e.key not in call_pairs)
        iso_out: dict[str, dict] = {}
        if isolate:
            iso_out = _run_leaves(backend, [(e.key, nodes[dcalls[call_pairs[e.key]].descriptor].layer, e.inputs)
                                            for e in rec.entries
                                            if e.leaf and e.inputs is not None and e.key in call_pairs])
        n = len(rec.entries)

        def acc_metrics(e: Optional[Entry], de: Any, p: str) -> Metrics:
            if e is None:       # the model's output
                return _judged(out.get(p), rec.output[p], rec.output_noise, rec.output_f64, p, tm)
            return _judged(de.outputs.get(p), e.outputs[p], e.noise_acc, e.f64_acc, p, tm, e.ref_max.get(p))

        def iso_metrics(e: Entry, p: str) -> Metrics:
            return _judged(iso_out[e.key].get(p), e.outputs[p], e.noise_iso, e.f64_iso, p, tm, e.ref_max.get(p))

        rows = []
        for i, e in enumerate(rec.entries):
            dkey = call_pairs.get(e.key)
            if dkey is None:
                continue
            de = dcalls[dkey]
            d = de.descriptor
            if e.descriptor in blocks and (pairs is None or e.descriptor not in pairs) and any(
                    p not in de.outputs or de.outputs[p].shape != a.shape for p, a in e.outputs.items()):
                # a block paired by translation whose output differs in form (e.g. pooled and
                # flattened in one implementation, pooled only in the other): not comparable
                report.unmapped.append(e.key)
                continue
            for p in e.outputs:
                iso = iso_metrics(e, p) if e.key in iso_out else None
                rows.append(LayerRow(i, _name(e.key, p), _name(dkey, p), e.type,
                                     backend.type_name(nodes[d].layer), acc_metrics(e, de, p), iso, e.leaf, p,
                                     e.descriptor, d, dkey, e.key))
        for p in rec.output:
            rows.append(LayerRow(n, _name(OUTPUT, p), _name(OUTPUT, p), "output", "output",
                                 acc_metrics(None, None, p), None, False, p, OUTPUT, OUTPUT))
        _confirm(rec, rows, report, dcalls, acc_metrics, iso_metrics)
        report.rows = rows
        first = next((r for r in rows if r.iso is not None and r.iso.flagged), None)
        if first is None:
            first = next((r for r in rows if r.acc.flagged), None)
        report.first_fault = first
        if first is not None:
            entry = rec.entries[first.index] if first.index < n else None
            layer = nodes[first.dst_layer].layer if entry is not None else None
            report.cause = _diagnose(backend, entry, layer, first, iso_out.get(entry.key) if entry else None,
                                     dcalls, tm)
    return report


def _suspect(m: Optional[Metrics]) -> bool:
    """Flagged by a tolerance the float64 measurement could still raise."""
    return m is not None and m.flagged and not m.shape_note and m.noise_method == FAN_IN


def _confirm(rec: Recording, rows: list, report: CompareReport, dcalls: dict, acc_metrics: Any,
             iso_metrics: Any) -> None:
    """Re-judge the outputs flagged on the fan-in estimate with the source's measured float64
    round-off (``noise = max(estimate, measured)``), where the recording can still measure it;
    say in the report how many outputs each method judged."""
    prober = rec.float64
    sus_acc = [r for r in rows if _suspect(r.acc)]
    sus_iso = [r for r in rows if _suspect(r.iso)]
    if prober is not None and (sus_acc or sus_iso):
        by_key = rec.by_key()
        if sus_acc:
            prober.measure_acc()
        if sus_iso:
            prober.measure_iso({r.src_key for r in sus_iso})
        if prober.failed:
            report.notes.append(f"float64 re-run failed ({prober.failed}): suspects judged on the fan-in estimate")
        suspects = list({id(r): r for r in sus_acc + sus_iso}.values())
        cleared = 0
        for r in suspects:
            was = r.flagged
            e = by_key.get(r.src_key) if r.src_layer != OUTPUT else None
            if r.src_layer == OUTPUT or e is not None:
                if _suspect(r.acc):
                    r.acc = acc_metrics(e, None if e is None else dcalls[r.dst_key], r.path)
                if e is not None and _suspect(r.iso):
                    r.iso = iso_metrics(e, r.path)
            cleared += was and not r.flagged
        report.notes.append(f"{len(suspects)} outputs exceeded the fan-in-estimate "
                            f"tolerance and were re-judged with the source's float64 round-off "
                            f"(noise = max(estimate, measured)): {cleared} cleared")
    n_f64 = sum((r.acc.noise_method == FLOAT64) + (r.iso is not None and r.iso.noise_method == FLOAT64)
                for r in rows)
    n_all = sum(1 + (r.iso is not None) for r in rows)
    report.notes.append(f"tolerance: fan-in estimate for {n_all - n_f64} of {n_all} judgments, "
                        f"max(fan-in estimate, float64 re-run) for {n_f64}")


# ----------------------------------------------------------------------------------------
# likely causes
# ----------------------------------------------------------------------------------------

def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(np.max(np.abs(a - b), initial=0.0) <= rtol * max(_maxabs(b), 1e-30))


def _diagnose(backend: Backend, entry: Optional[Entry], layer: Any, row: LayerRow, iso: Optional[dict],
              dcalls: dict, tm: ToleranceModel) -> str:
    if entry is None:
        return ("the model's output differs while every mapped layer agrees: look at code in the "
                "root forward that is not a layer (functional ops)")
    m = row.iso if row.iso is not None and row.iso.flagged else row.acc
    if m.shape_note:
        return f"output {m.shape_note} (layer configuration differs: kernel, stride, padding or channels)"
    if not entry.leaf:
        return (f"{row.src_type}'s output differs while all its sublayers agree in isolation: look at its "
                "forward's functional code (residual add, concat, reshape, padding)")
    src_w = entry.local_weights()
    try:
        dst_w = backend.export_local(layer) if layer is not None else {}
    except UnsupportedOperation:
        dst_w = {}
    cause = _weights_cause(src_w, dst_w)
    if cause:
        return cause
    if iso is None or entry.inputs is None:
        return "differences appear in the full forward (the layer could not be run in isolation)"
    path = row.path
    ref = entry.outputs.get(path)
    got = iso.get(path)
    if ref is None or got is None or ref.shape != got.shape:
        return "the outputs' structure differs"
    tol = m.tol
    perm = _channel_swap(got, ref, tol)
    if perm:
        return f"output channels {perm[0]} and {perm[1]} swapped"
    top = float(np.max(got))
    if float(np.max(ref)) > top + tol and _close(got, np.minimum(ref, top), 1e-5):
        return f"output clipped at {top:.4g} where the source is not (e.g. ReLU6 for ReLU)"
    eps = _eps_cause(entry, src_w, got, ref)
    if eps:
        return eps
    pad = _padding_cause(backend, layer, entry, ref, tol)
    if pad:
        return pad
    frac = float(np.mean(np.abs(got.astype(np.float64) - ref) > tol))
    return f"not recognised ({frac:.1%} of elements beyond tolerance; weights equal to the source's)"


def _weights_cause(src: dict, dst: dict) -> str:
    if not src or not dst:
        return ""
    # compare the tensors both sides have (framework extras such as torch's
    # num_batches_tracked exist on one side only and say nothing about the port)
    common = set(src) & set(dst)
    src = {k: v for k, v in src.items() if k in common}
    dst = {k: v for k, v in dst.items() if k in common}
    if not common:
        return ""
    if "running_mean" in src and "running_var" in src:
        sm, sv, dm, dv = src["running_mean"], src["running_var"], dst["running_mean"], dst["running_var"]
        if not _close(dm, sm) and _close(dm, sv) and _close(dv, sm):
            return "BatchNorm running mean and variance swapped"
    for k in sorted(src):
        s, d = src[k], dst[k]
        if s.shape != d.shape:
            return f"{k} shape {d.shape} vs source {s.shape}"
        if _close(d, s):
            continue
        if s.ndim >= 2 and s.shape[0] == s.shape[1] and _close(d, np.swapaxes(s, 0, 1)):
            return f"transposed weight ({k} [out, in] read as [in, out])"
        if s.ndim >= 1 and s.shape[0] > 1:
            diff = [i for i in range(s.shape[0]) if not _close(d[i], s[i])]
            if len(diff) == 2 and _close(d[diff[0]], s[diff[1]]) and _close(d[diff[1]], s[diff[0]]):
                return f"output channels {diff[0]} and {diff[1]} swapped ({k} rows exchanged)"
        return f"{k} differs from the source's (max abs {_maxabs(d.astype(np.float64) - s):.3g})"
    return ""


def _channel_swap(got: np.ndarray, ref: np.ndarray, tol: float) -> Optional[tuple]:
    if got.ndim < 2 or got.shape[1] < 2:
        return None
    bad = [c for c in range(got.shape[1]) if float(np.max(np.abs(got[:, c] - ref[:, c]))) > tol]
    if len(bad) == 2:
        i, j = bad
        if float(np.max(np.abs(got[:, i] - ref[:, j]))) <= tol and float(np.max(np.abs(got[:, j] - ref[:, i]))) <= tol:
            return (i, j)
    return None


def _eps_cause(entry: Entry, w: dict, got: np.ndarray, ref: np.ndarray) -> str:
    if not {"running_mean", "running_var"} <= set(w) or not entry.inputs or entry.inputs[0].shape != ref.shape:
        return ""
    x = entry.inputs[0].astype(np.float64)
    c = ref.shape[1]
    shape = (1, c) + (1,) * (ref.ndim - 2)
    mean, var = w["running_mean"].reshape(shape), w["running_var"].reshape(shape)
    g = w.get("weight", np.ones(c)).reshape(shape)
    b = w.get("bias", np.zeros(c)).reshape(shape)

    def eps_of(y: np.ndarray) -> float:
        num = (x - mean) * g
        den = y.astype(np.float64) - b
        ok = np.abs(den) > 1e-3 * max(_maxabs(den), 1e-30)
        if not ok.any():
            return math.nan
        s = np.median(((num[ok] / den[ok]) ** 2) - np.broadcast_to(var, ok.shape)[ok])
        return float(s)

    e_src, e_dst = eps_of(ref), eps_of(got)
    if math.isnan(e_src) or math.isnan(e_dst):
        return ""
    if abs(e_dst - e_src) > 0.5 * max(abs(e_src), 1e-7) and e_dst > 0:
        return f"normalisation eps differs: destination ~{e_dst:.2g}, source ~{max(e_src, 0.0):.2g}"
    return ""


def _padding_cause(backend: Backend, layer: Any, entry: Entry, ref: np.ndarray, tol: float) -> str:
    """Probe: does the destination layer, fed the source input shifted by one pixel, give the
    source output (away from the far border)? Then the two pad on different sides."""
    if layer is None or not entry.inputs or entry.inputs[0].ndim != 4 or ref.ndim != 4 or min(ref.shape[2:]) < 2:
        return ""
    x = entry.inputs[0]
    probes = (((1, 1), "bottom/right only (TF 'same')", "symmetrically"),
              ((1, 0), "bottom only (TF 'same' in height)", "symmetrically"),
              ((0, 1), "right only (TF 'same' in width)", "symmetrically"),
              ((-1, -1), "symmetrically", "bottom/right only (TF 'same')"))
    for (dh, dw), dst_way, src_way in probes:
        xs = np.roll(x, (dh, dw), axis=(2, 3))
        if dh > 0:
            xs[:, :, :dh] = 0
        if dh < 0:
            xs[:, :, dh:] = 0
        if dw > 0:
            xs[:, :, :, :dw] = 0
        if dw < 0:
            xs[:, :, :, dw:] = 0
        try:
            y = _flatten(backend, backend.infer(layer, backend.from_numpy(xs))).get("")
        except Exception:  # a probe only: a layer that refuses the input is simply not this case
            return ""
        if y is None or y.shape != ref.shape:
            continue
        # away from the far border, which the shifted input loses (up to kernel // (2 * stride)
        # rows: the top-left half is clear of it for any kernel no larger than the input)
        hh, ww = max(1, ref.shape[2] // 2), max(1, ref.shape[3] // 2)
        if float(np.max(np.abs(y[..., :hh, :ww] - ref[..., :hh, :ww]))) <= tol:
            return f"padding convention: the destination pads {dst_way} where the source pads {src_way}"
    return ""


# ----------------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------------

def _record_in_subprocess(spec: str, x: np.ndarray, weights: Optional[str], float64: Any) -> Recording:
    with tempfile.TemporaryDirectory(prefix="theseus-compare-") as tmp:
        xin = os.path.join(tmp, "x.npy")
        np.save(xin, x)
        out = os.path.join(tmp, "rec.zip")
        cmd = [sys.executable, "-m", "theseus._compare_worker", spec, xin, out]
        if weights:
            cmd += ["--weights", weights]
        if not float64:
            cmd.append("--no-float64")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise InvalidArgumentError(f"recording the source {spec!r} in a subprocess failed: {msg}")
        rec = Recording.load(out)
    rec.notes.append(f"the source ({spec}, {rec.backend}) ran in a subprocess; arrays exchanged through a file")
    return rec


def compare(src: Any, dst: Any, x: Optional[np.ndarray] = None, map: Any = None, *,
            input_shape: Optional[tuple] = None, seed: int = 0, scale: float = 1.0,
            tolerance: Optional[ToleranceModel] = None, isolate: bool = True, float64: Any = True,
            src_weights: Optional[str] = None, subprocess: Optional[bool] = None) -> CompareReport:
    """Judge a port layer by layer: is ``dst`` the same network as ``src``, and if not, where
    does it start to differ?

    Args:
        src: the source model, or ``"module:callable"`` building it (then it is recorded in a
            subprocess: the way to compare Paddle with MindSpore, whose runtimes clash).
        dst: the destination model (same architecture; weights ported).
        x: the input (numpy); default ``make_input(input_shape, seed, scale)``.
        map: ``{source descriptor: destination descriptor}`` or a ``theseus.PortMap``;
            None pairs layers by equal descriptors.
        tolerance: the ``ToleranceModel`` (multiple of the float32 round-off).
        isolate: also judge every leaf on the source's own input (attribution).
        float64: measure the source's round-off by float64 re-runs where the fan-in estimate
            flags an output (True, the default: the same verdicts as ``"always"``, which
            measures every output), or never (False: the estimate alone). A source in a
            subprocess is measured everywhere unless False.
        src_weights: a neutral ``.npz`` loaded into a source given as a string.
        subprocess: force (True) or forbid (False) recording the source in a subprocess.

    Both models run in eval mode; every layer's own training flag is restored and running
    statistics never change.

    Example:
        >>> report = theseus.compare(torch_net, paddle_net, input_shape=(1, 3, 64, 64))  # doctest: +SKIP
        >>> report.ok, report.first_divergence                                          # doctest: +SKIP
        (True, None)
    """
    if x is None:
        if input_shape is None:
            raise InvalidArgumentError("compare needs an input: pass x (a numpy array) or input_shape=(1, 3, H, W)")
        x = make_input(input_shape, seed, scale)
    x = np.asarray(x)
    if isinstance(src, str) or subprocess:
        if not isinstance(src, str):
            raise InvalidArgumentError("subprocess=True needs the source as 'module:callable'")
        rec = _record_in_subprocess(src, x, src_weights, float64)
    else:
        rec = _record(src, x, float64, lazy_weights=True)   # weights read only to diagnose a fault
        if rec.float64 is not None:
            rec.float64.checked = True          # judged at once: the source cannot change in between
    return judge(dst, rec, map, tolerance=tolerance, isolate=isolate)


# ----------------------------------------------------------------------------------------
# the old capture helper (used by the conformance suite)
# ----------------------------------------------------------------------------------------

def _flat(backend: Any, out: Any) -> list[np.ndarray]:
    return list(_flatten(backend, out).values())


def run_capturing(model: Any, x: np.ndarray, patterns: Patterns = "**") -> tuple[list[np.ndarray], dict]:
    """Run ``model`` on numpy input in eval mode (every layer's own mode restored); return
    (final outputs, {descriptor: outputs}) with the dict in execution order (last call of a
    layer wins). Hooks are removed afterwards."""
    backend = backend_of(model)
    backend.check_hooks_usable(model)
    with eval_mode(backend, model):
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
