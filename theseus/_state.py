"""Weights in the neutral layout, moved between models of any backend.

Names are canonical descriptors plus ``weight``/``bias``/``running_mean``/``running_var``;
conv ``[out, in/groups, kh, kw]``, linear ``[out, in]``. Each backend converts its own
layout in ``export_local``/``import_local``; everything else (names, matching, checks,
reports) is here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._backend import backend_of
from ._errors import InvalidArgumentError, StateMismatchError
from ._grammar import parse
from ._validate import check_array
from ._walk import walk

__all__ = ["LoadReport", "state", "load_state", "port"]

_PARAM_NAMES = ("weight", "bias", "running_mean", "running_var")


@dataclass
class LoadReport:
    """What ``load_state``/``port`` did.

    Attributes:
        loaded: keys written into the model.
        missing: model keys the state did not provide.
        unexpected: state keys the model does not have.
        mismatched: ``{key: (model_shape, state_shape)}`` for keys whose shapes differ.
        skipped: keys left out on purpose (outside ``prefix``).
    """

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

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
        return "; ".join(parts) or "loaded nothing"


def _layers_with_weights(model: Any):
    backend = backend_of(model)
    for node in walk(backend, model):
        arrays = backend.export_local(node.layer)
        if arrays:
            yield backend, node, arrays


def state(model: Any) -> dict[str, np.ndarray]:
    """Every weight and normalisation statistic in the neutral names and layout (copies).

    Example:
        >>> sd = theseus.state(net)                              # doctest: +SKIP
        >>> sd["blocks[0].depthwise_conv.conv.weight"].shape      # doctest: +SKIP
        (32, 1, 3, 3)
    """
    out: dict[str, np.ndarray] = {}
    for _, node, arrays in _layers_with_weights(model):
        for name, arr in arrays.items():
            out[f"{node.text}.{name}"] = arr
    return out


def _canonical_key(key: str) -> str:
    """``blocks.0.conv.weight`` (native) -> ``blocks[0].conv.weight`` (canonical)."""
    if not isinstance(key, str) or "." not in key:
        raise InvalidArgumentError(f"state key {key!r} must be '<descriptor>.<{'|'.join(_PARAM_NAMES)}>'")
    desc, _, pname = key.rpartition(".")
    return f"{parse(desc)}.{pname}"


def load_state(model: Any, weights: Mapping[str, Any], strict: bool = True, prefix: Optional[str] = None,
               skip_mismatched: bool = False) -> LoadReport:
    """Load neutral weights into a model of any backend.

    Keys may use the canonical (``blocks[0].conv.weight``) or the native dotted spelling
    (``blocks.0.conv.weight``). Every key and shape is checked before anything is written.

    Args:
        weights: ``{name: array}`` (numpy arrays or anything ``np.asarray`` accepts).
        strict: missing, unexpected or shape-mismatched keys are an error and nothing is
            loaded. With ``strict=False`` what fits is loaded and the rest is reported.
        prefix: only model keys under this descriptor (e.g. ``"blocks"``) are considered:
            the seed's "load the backbone only".
        skip_mismatched: load keys whose shapes match and skip (report) the others, even
            under ``strict`` (e.g. a classifier with another class count).

    Returns:
        A ``LoadReport``.

    Raises:
        StateMismatchError: under ``strict``, listing every problem (the report is attached).

    Example:
        >>> report = theseus.load_state(paddle_net, theseus.state(torch_net))   # doctest: +SKIP
        >>> report.ok                                                             # doctest: +SKIP
        True
    """
    if not isinstance(weights, Mapping):
        raise InvalidArgumentError(f"load_state expects a mapping name -> array, got {type(weights).__name__}")
    given = {_canonical_key(k): v for k, v in weights.items()}
    pre = None if prefix is None else str(parse(prefix))
    report = LoadReport()
    plan = []
    model_keys = set()
    for backend, node, arrays in _layers_with_weights(model):
        under = pre is None or node.text == pre or node.text.startswith(pre + ".") or node.text.startswith(pre + "[")
        todo = {}
        for name, current in arrays.items():
            key = f"{node.text}.{name}"
            model_keys.add(key)
            if not under:
                report.skipped.append(key)
                continue
            if key not in given:
                report.missing.append(key)
                continue
            arr = check_array(key, given[key])
            if tuple(arr.shape) != tuple(current.shape):
                report.mismatched[key] = (tuple(current.shape), tuple(arr.shape))
                continue
            todo[name] = arr.astype(current.dtype, copy=False)
            report.loaded.append(key)
        if todo:
            plan.append((backend, node.layer, todo))
    report.unexpected = [k for k in given if k not in model_keys and (pre is None or k.startswith(pre))]
    problems = bool(report.missing or report.unexpected or (report.mismatched and not skip_mismatched))
    if strict and problems:
        report.loaded = []
        raise StateMismatchError(f"weights do not fit the model (nothing was loaded): {report}; "
                                 "pass strict=False to load what fits, skip_mismatched=True to skip "
                                 "shape mismatches, or prefix=... to load one part", report)
    for backend, layer, todo in plan:
        backend.import_local(layer, todo)
    return report


def port(src_model: Any, dst_model: Any, strict: bool = True, **kwargs: Any) -> LoadReport:
    """Copy every weight from one model to another, across frameworks.

    Example:
        >>> theseus.port(torch_net, mindspore_net).ok     # doctest: +SKIP
        True
    """
    return load_state(dst_model, state(src_model), strict=strict, **kwargs)
