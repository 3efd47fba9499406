"""Weights in the neutral layout, moved between models of any backend.

Every parameter and persistent buffer of a model, as the framework enumerates them, under
``<canonical descriptor>.<neutral name>``. Each backend says per layer which native tensor
is which neutral tensor and through which named transform (``Backend.tensors``,
``theseus._layout``); names, matching, checks, reports and rollback are here, once.
The layout is documented in docs/neutral-layout.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np

from ._backend import backend_of
from ._errors import InvalidArgumentError, StateMismatchError, TheseusError
from ._grammar import parse
from ._layout import OPTIONAL_ROLES, TensorEntry, from_neutral, to_neutral
from ._validate import check_array
from ._walk import root_node, walk

__all__ = ["LayoutEntry", "LoadReport", "state", "state_layout", "load_state", "port"]


@dataclass
class LoadReport:
    """What ``load_state``/``port`` did.

    ``ok`` is true only when every model key in scope (all keys, or those under ``prefix``)
    was loaded and nothing was missing, unexpected or shape-mismatched. Optional roles
    (``num_batches_tracked``, kept by torch only) are not errors when absent on one side:
    they are listed in ``defaulted``/``ignored``.

    Attributes:
        loaded: keys written into the model.
        missing: model keys the state did not provide.
        unexpected: state keys the model does not have.
        mismatched: ``{key: (model_shape, state_shape)}`` for keys whose shapes differ.
        skipped: model keys left out on purpose (outside ``prefix``).
        defaulted: model keys of optional roles the state lacks (left as they were).
        ignored: state keys of optional roles the model does not keep.
    """

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    defaulted: list = field(default_factory=list)
    ignored: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)}"] if self.loaded else []
        for name in ("missing", "unexpected"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name} {len(items)}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
        if self.mismatched:
            mm = [f"{k} model {a} vs state {b}" for k, (a, b) in list(self.mismatched.items())[:5]]
            parts.append(f"shape-mismatched {len(self.mismatched)}: {'; '.join(mm)}")
        for name, what in (("defaulted", "kept (optional, not in the state)"), ("ignored", "ignored (optional)")):
            items = getattr(self, name)
            if items:
                parts.append(f"{what} {len(items)}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}")
        return "; ".join(parts) or "loaded nothing"


class LayoutEntry(NamedTuple):
    """How one neutral key is made: ``state_layout`` rows (what a port map records).

    Attributes:
        key: the neutral key (``blocks[0].conv.weight``).
        native: the model's native names of the tensors it is made of (``blocks.0.conv.weight``).
        transform: the named transform applied to them (``identity``, ``transpose``, ``concat``...).
    """

    key: str
    native: tuple
    transform: str


@dataclass
class _Slot:
    key: str
    entry: TensorEntry
    owners: list            # [(layer, native attribute)] in entry.natives order
    native: tuple           # model-level native names

    @property
    def role(self) -> str:
        return self.entry.neutral


def _child(backend: Any, layer: Any, name: str) -> Any:
    for n, c in backend.children(layer):
        if n == name:
            return c
    raise TheseusError(f"backend {backend.name!r} listed a tensor under child {name!r} of "
                       f"{backend.type_name(layer)}, which has no such child")


def _slots(model: Any) -> tuple[Any, list[_Slot]]:
    """Every neutral tensor of the model: parents before children, definition order."""
    backend = backend_of(model)
    claimed: set = set()     # (id(layer), attr) already taken by an ancestor's multi-tensor entry
    slots: list[_Slot] = []
    keys: dict = {}
    for node in [root_node(model), *walk(backend, model)]:
        prefix = ".".join(n.name for n in node.path())
        for entry in backend.tensors(node.layer):
            owners = []
            for path in entry.natives:
                layer, *rest = [node.layer, *path.split(".")]
                for part in rest[:-1]:
                    layer = _child(backend, layer, part)
                owners.append((layer, rest[-1]))
            ids = [(id(layer), attr) for layer, attr in owners]
            if any(i in claimed for i in ids):
                continue
            if len(entry.natives) > 1 or "." in entry.natives[0]:
                claimed.update(ids)
            key = f"{node.text}.{entry.neutral}" if node.text else entry.neutral
            if key in keys:
                raise TheseusError(f"backend {backend.name!r} gives two tensors the neutral key {key!r} "
                                   f"({keys[key]} and {entry.natives}); a backend's entries must be unique per layer")
            keys[key] = entry.natives
            native = tuple(f"{prefix}.{p}" if prefix else p for p in entry.natives)
            slots.append(_Slot(key, entry, owners, native))
    return backend, slots


def _read(backend: Any, slot: _Slot) -> list[np.ndarray]:
    return [backend.read_tensor(layer, attr) for layer, attr in slot.owners]


def state(model: Any) -> dict[str, np.ndarray]:
    """Every parameter and persistent buffer in neutral names and layout (copies).

    Known roles are converted by the layer's class (norm layers' ``weight``/``bias``/
    ``running_mean``/``running_var``, conv, linear ``[out, in]``, ...); every other tensor
    (``cls_token``, layer scales, ...) keeps its native name under the layer's descriptor.

    Example:
        >>> sd = theseus.state(net)                              # doctest: +SKIP
        >>> sd["blocks[0].depthwise_conv.conv.weight"].shape      # doctest: +SKIP
        (32, 1, 3, 3)
    """
    backend, slots = _slots(model)
    return {s.key: to_neutral(s.entry, _read(backend, s)) for s in slots}


def state_layout(model: Any) -> list[LayoutEntry]:
    """How each neutral key of ``model`` is made from its native tensors.

    Example:
        >>> [e for e in theseus.state_layout(paddle_net) if e.key == "fc.weight"]   # doctest: +SKIP
        [LayoutEntry(key='fc.weight', native=('fc.weight',), transform='transpose')]
    """
    _, slots = _slots(model)
    return [LayoutEntry(s.key, s.native, s.entry.transform) for s in slots]


def _canonical_key(key: Any) -> str:
    """``blocks.0.conv.weight`` (native) -> ``blocks[0].conv.weight`` (canonical);
    a key without a dot is a tensor of the model itself (``cls_token``)."""
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"state key {key!r} must be a string '<descriptor>.<name>' (or '<name>' for "
                                   "a tensor of the model itself)")
    if "." not in key:
        return key
    desc, _, pname = key.rpartition(".")
    return f"{parse(desc)}.{pname}"


def _under(key: str, pre: Optional[str]) -> bool:
    return pre is None or key.startswith(pre + ".") or key.startswith(pre + "[")


def _prefixes(keys: list) -> list:
    out: dict = {}
    for key in keys:
        desc = key.rpartition(".")[0]
        while desc:
            out.setdefault(desc, None)
            cut = max(desc.rfind("."), desc.rfind("["))
            desc = desc[:cut] if cut > 0 else ""
    return list(out)


def load_state(model: Any, weights: Mapping[str, Any], strict: bool = True, prefix: Optional[str] = None,
               skip_mismatched: bool = False) -> LoadReport:
    """Load neutral weights into a model of any backend, atomically.

    Keys may use the canonical (``blocks[0].conv.weight``) or the native dotted spelling
    (``blocks.0.conv.weight``). Every key, shape and dtype is checked before anything is
    written; if writing fails part-way (a framework error), the tensors already written are
    restored and the error is raised: the model is never left half-loaded.

    Args:
        weights: ``{name: array}`` (numpy arrays or anything ``np.asarray`` accepts).
        strict: missing, unexpected or shape-mismatched keys are an error and nothing is
            loaded. With ``strict=False`` what fits is loaded and the rest is reported.
        prefix: only model keys under this descriptor (e.g. ``"blocks"``) are considered:
            the seed's "load the backbone only". A prefix under which the model has no key
            is an error naming the closest prefixes.
        skip_mismatched: load keys whose shapes match and skip (report) the others, even
            under ``strict`` (e.g. a classifier with another class count).

    Returns:
        A ``LoadReport``; ``report.ok`` only when every model key in scope was loaded.

    Raises:
        StateMismatchError: under ``strict``, listing every problem (the report is attached;
            nothing was loaded).
        InvalidArgumentError: weights that are not a mapping of numeric arrays; a prefix
            that names no part of the model.

    Example:
        >>> report = theseus.load_state(paddle_net, theseus.state(torch_net))   # doctest: +SKIP
        >>> report.ok                                                             # doctest: +SKIP
        True
    """
    if not isinstance(weights, Mapping):
        raise InvalidArgumentError(f"load_state expects a mapping name -> array, got {type(weights).__name__}")
    given: dict = {}
    for k, v in weights.items():
        ck = _canonical_key(k)
        if ck in given:
            raise InvalidArgumentError(f"state key {k!r} names the same tensor as another key ({ck!r}); "
                                       "give each tensor once")
        given[ck] = check_array(str(k), v)
    backend, slots = _slots(model)
    pre = None if prefix is None else str(parse(prefix))
    if pre is not None and not any(_under(s.key, pre) for s in slots):
        close = difflib.get_close_matches(pre, _prefixes([s.key for s in slots]), n=3, cutoff=0.5)
        hint = f"closest prefixes: {', '.join(repr(c) for c in close)}" if close else \
            f"prefixes of this model: {', '.join(repr(c) for c in _prefixes([s.key for s in slots])[:5])}"
        raise InvalidArgumentError(f"prefix {prefix!r} matches no weight of the model, nothing was loaded; {hint}")
    report = LoadReport()
    plan = []        # (slot, native arrays to write, current native arrays)
    model_keys = {s.key for s in slots}
    for slot in slots:
        if not _under(slot.key, pre):
            report.skipped.append(slot.key)
            continue
        if slot.key not in given:
            (report.defaulted if slot.role in OPTIONAL_ROLES else report.missing).append(slot.key)
            continue
        current = _read(backend, slot)
        want = to_neutral(slot.entry, current).shape
        arr = given[slot.key]
        if tuple(arr.shape) != tuple(want):
            report.mismatched[slot.key] = (tuple(want), tuple(arr.shape))
            continue
        parts = from_neutral(slot.entry, arr, [c.shape for c in current])
        plan.append((slot, [np.array(p, dtype=c.dtype, order="C") for p, c in zip(parts, current)], current))
        report.loaded.append(slot.key)
    for k in given:
        if k not in model_keys and _under(k, pre):
            (report.ignored if k.rpartition(".")[2] in OPTIONAL_ROLES else report.unexpected).append(k)
    problems = bool(report.missing or report.unexpected or (report.mismatched and not skip_mismatched))
    if strict and problems:
        report.loaded = []
        raise StateMismatchError(f"weights do not fit the model (nothing was loaded): {report}; "
                                 "pass strict=False to load what fits, skip_mismatched=True to skip "
                                 "shape mismatches, or prefix=... to load one part", report)
    _write_all(backend, plan)
    return report


def _write_all(backend: Any, plan: list) -> None:
    """Write every planned tensor; on a failure restore those already written, then raise."""
    done = []
    try:
        for slot, arrays, current in plan:
            for (layer, attr), arr, old in zip(slot.owners, arrays, current):
                done.append((layer, attr, old))
                backend.write_tensor(layer, attr, arr)
    except BaseException as err:
        failed = []
        for layer, attr, old in reversed(done):
            try:
                backend.write_tensor(layer, attr, old)
            except Exception:  # noqa: BLE001 - report, keep restoring the others
                failed.append(attr)
        if failed:
            raise TheseusError(f"load_state failed while writing ({type(err).__name__}: {err}) and {len(failed)} "
                               f"tensors could not be restored: {failed[:5]}; the model is in an unknown state") from err
        raise


def port(src_model: Any, dst_model: Any, strict: bool = True, **kwargs: Any) -> LoadReport:
    """Copy every weight from one model to another, across frameworks.

    Example:
        >>> theseus.port(torch_net, mindspore_net).ok     # doctest: +SKIP
        True
    """
    return load_state(dst_model, state(src_model), strict=strict, **kwargs)
