"""Models from configs: ``backbone -> neck -> head``, every type resolved through the registry.

Framework-neutral: reading configs, checking them, backbone options (through ``features`` and
``freeze``), ``init_cfg`` and the checkpoint semantics of ``init_model`` are here once; a
backend only registers its layers. Never ``eval``; the caller's config is never changed.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Optional, Union

from ._backend import Backend, backend_of, backends, get_backend
from ._errors import ConfigError, InvalidArgumentError, TheseusError
from ._init_cfg import apply_init_cfg
from ._registry import lookup_factory
from ._specs import ACTIVATION_ARGS, DEFAULT_INIT, activation_args, spec_for
from ._grammar import parse
from ._state import LoadReport, load_state

__all__ = ["build", "init_model", "load_config", "InitReport"]

_TOP = ("backbone", "neck", "head", "backend", "input_shape", "seed")
_BACKBONE_OPTIONS = ("out_indices", "frozen_stages", "norm_eval", "init_cfg")
_UNSET = object()
#: Third-party prefixes and the backend whose framework they build for.
_PREFIX_BACKEND = {"timm": "torch", "ppcls": "paddle", "mindcv": "mindspore"}

ConfigLike = Union[Mapping, str, "os.PathLike[str]"]


def load_config(cfg: ConfigLike) -> dict:
    """A deep copy of a config dict, or the dict in a ``.yaml``/``.yml``/``.json`` file
    (YAML is read with ``safe_load``: no tags, no code).

    Example:
        >>> theseus.load_config({"neck": {"type": "GlobalAveragePooling"}})
        {'neck': {'type': 'GlobalAveragePooling'}}
    """
    if isinstance(cfg, Mapping):
        return copy.deepcopy(dict(cfg))
    if not isinstance(cfg, (str, os.PathLike)):
        raise InvalidArgumentError(f"a config is a dict or the path of a .yaml/.json file, got {type(cfg).__name__}")
    path = os.fspath(cfg)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".yaml", ".yml", ".json"):
        raise ConfigError("", f"config file {path!r} must end in .yaml, .yml or .json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ConfigError("", f"cannot read config file {path!r}: {err.strerror or err}") from None
    try:
        if ext == ".json":
            data = json.loads(text)
        else:
            try:
                import yaml
            except ImportError:
                raise ConfigError("", f"reading {path!r} needs PyYAML (pip install pyyaml), or use a .json file") from None
            data = yaml.safe_load(text)
    except ConfigError:
        raise
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError("", f"config file {path!r} does not parse: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError("", f"config file {path!r} must hold a mapping (backbone:, neck:, head:), "
                          f"got {type(data).__name__}")
    return data


def _closest(name: str, names: tuple) -> str:
    import difflib

    hit = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f"; did you mean {hit[0]!r}?" if hit else ""


def _pick_backend(cfg: dict, backend: Optional[str]) -> str:
    if backend is None:
        backend = cfg.get("backend")
    if backend is None:
        bb = cfg.get("backbone")
        kind = bb.get("type") if isinstance(bb, Mapping) else None
        if isinstance(kind, str) and ":" in kind:
            backend = _PREFIX_BACKEND.get(kind.partition(":")[0])
    if backend is None:
        active = sorted(backends(active_only=True))
        if len(active) != 1:
            raise InvalidArgumentError(
                "build: say which framework to build for with backend=... (or 'backend:' in the config); "
                f"installed backends: {', '.join(sorted(backends())) or 'none'}")
        backend = active[0]
    if not isinstance(backend, str):
        raise ConfigError("backend", f"expected a backend name, got {backend!r}")
    return backend


def _check_args(fn: Callable, kwargs: dict, path: str, what: str, skip: int = 0) -> None:
    """Name the argument that ``fn`` does not take, or the required one that is missing."""
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        names: tuple = ()
    else:
        names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        for k in kwargs:
            if k not in names:
                raise ConfigError(f"{path}.{k}", f"{what} has no argument {k!r}{_closest(k, names)}; "
                                  f"its arguments: {', '.join(names) or 'none'}")
    for p in params:
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs:
            raise ConfigError(f"{path}.{p.name}", f"{what} needs the argument {p.name!r}")


@dataclass
class _Part:
    """A checked part, ready to construct."""

    path: str
    kind: str
    name: str
    factory: Callable
    args: tuple
    kwargs: dict
    init_cfg: Any = None
    options: dict = field(default_factory=dict)


class _Context:
    def __init__(self, backend_name: str, seed: int, input_shape: tuple) -> None:
        self.backend_name = backend_name
        self.backend: Backend = get_backend(backend_name)
        self.seed = seed
        self.input_shape = input_shape

    def activation(self, cfg: Any, path: str) -> Callable[[], Any]:
        """A zero-argument callable building the activation ``cfg`` names (checked now)."""
        part = _plan_one("activation", cfg, self, path)
        return lambda: _construct(part, self)


def _plan_one(kind: str, cfg: Any, ctx: _Context, path: str) -> _Part:
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, f"expected a dict with a 'type' key (or a list of them), got {cfg!r}")
    name = cfg.get("type")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.type", f"every {kind} needs a type name (dict(type='...', ...)), got {name!r}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    for k in kwargs:
        if not isinstance(k, str):
            raise ConfigError(path, f"argument names must be strings, got {k!r}")
    options = {}
    if kind == "backbone":
        options = {k: kwargs.pop(k) for k in _BACKBONE_OPTIONS if k in kwargs}
        if "pretrained" in kwargs and kwargs["pretrained"]:
            raise ConfigError(f"{path}.pretrained", "theseus never downloads weights; load a checkpoint with "
                              "theseus.init_model(cfg, checkpoint=...)")
    factory, args = lookup_factory(kind, name, ctx.backend_name, path)
    init_cfg = kwargs.pop("init_cfg", DEFAULT_INIT.get((kind, name))) if kind in ("neck", "head") \
        else options.pop("init_cfg", None)
    spec = spec_for(kind, name)
    what = f"{kind} {name}"
    if spec is not None:
        _check_args(spec, kwargs, path, what, skip=2)
        kwargs = spec(ctx, path, **kwargs)
    elif kind == "activation" and name in ACTIVATION_ARGS:
        kwargs = activation_args(path, name, kwargs)
    else:
        _check_args(factory, kwargs, path, what, skip=len(args))
    return _Part(path, kind, name, factory, args, kwargs, init_cfg, options)


def _plan(kind: str, cfg: Any, ctx: _Context) -> Union[_Part, list]:
    if isinstance(cfg, (list, tuple)):
        if not cfg:
            raise ConfigError(kind, "an empty list builds nothing; give a dict, a list of dicts, or leave it out")
        return [_plan_one(kind, c, ctx, f"{kind}[{i}]") for i, c in enumerate(cfg)]
    return _plan_one(kind, cfg, ctx, kind)


def _construct(part: _Part, ctx: _Context) -> Any:
    try:
        layer = part.factory(*part.args, **part.kwargs)
    except TheseusError:
        raise
    except Exception as err:
        raise ConfigError(part.path, f"building {part.kind} {part.name!r} failed: {type(err).__name__}: {err}") from err
    if not ctx.backend.is_layer(layer):
        raise ConfigError(part.path, f"{part.kind} {part.name!r} built a {type(layer).__name__}, not a "
                          f"{ctx.backend_name} layer")
    if part.init_cfg:
        apply_init_cfg(ctx.backend, layer, part.init_cfg, f"{part.path}.init_cfg", ctx.seed)
    if part.kind == "backbone":
        layer = _backbone_options(layer, part, ctx)
    return layer


def _indices(path: str, value: Any) -> Optional[list]:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        return list(value)
    raise ConfigError(f"{path}.out_indices", f"expected a stage index, a list of them, or null (the backbone's own "
                      f"output), got {value!r}")


def _backbone_options(layer: Any, part: _Part, ctx: _Context) -> Any:
    """``out_indices``, ``frozen_stages``, ``norm_eval`` on any backbone, through the generic
    stage detection of ``features`` and the one freeze policy (``freeze_stages``, ``freeze``)."""
    from . import features, freeze, freeze_stages  # the public API, wherever it lives

    opts, path = part.options, part.path
    picked = _indices(path, opts.get("out_indices", -1))
    frozen = opts.get("frozen_stages", -1)
    if isinstance(frozen, bool) or not isinstance(frozen, int) or frozen < -1:
        raise ConfigError(f"{path}.frozen_stages", f"expected -1 (none) or a number of stages >= 0, got {frozen!r}")
    norm_eval = opts.get("norm_eval", False)
    if not isinstance(norm_eval, bool):
        raise ConfigError(f"{path}.norm_eval", f"expected True or False, got {norm_eval!r}")
    shape = ctx.input_shape
    if frozen >= 0:  # MMDetection's frozen_stages: the stem and the first n stages
        try:
            freeze_stages(layer, frozen, norm="eval" if norm_eval else "train", input_shape=shape)
        except InvalidArgumentError as err:
            raise ConfigError(f"{path}.frozen_stages", str(err)) from None
    elif norm_eval:  # every norm layer held in eval mode, nothing frozen
        freeze(layer, [], norm="eval")
    if picked is None:
        return layer
    try:
        return features(layer, out_indices=picked, input_shape=shape)
    except InvalidArgumentError as err:
        raise ConfigError(f"{path}.out_indices", str(err)) from None


def _input_shape(cfg: dict) -> tuple:
    shape = cfg.get("input_shape", (1, 3, 224, 224))
    if isinstance(shape, (list, tuple)) and len(shape) >= 3 and all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        return tuple(shape)
    raise ConfigError("input_shape", f"expected positive integers like [1, 3, 224, 224], got {shape!r}")


def build(cfg: ConfigLike, backend: Optional[str] = None) -> Any:
    """Build a framework-native model from a config: ``backbone -> neck -> head``.

    Args:
        cfg: a dict (never changed), or the path of a ``.yaml``/``.json`` file, with optional
            ``backbone``, ``neck``, ``head`` (each a dict with a ``type``, or a list of them
            run in sequence), and optionally ``backend``, ``seed`` (for ``init_cfg``, default 0)
            and ``input_shape`` (the probe that finds a backbone's stages, default 1,3,224,224).
            A backbone also takes ``out_indices`` (stage index or list; default -1, the last
            stage; ``None`` keeps the backbone's own output), ``frozen_stages`` and ``norm_eval``.
        backend: ``"torch"``, ``"paddle"``, ``"mindspore"``...; default: the config's
            ``backend``, the framework a third-party prefix implies, or the one imported.

    Returns:
        A native model (``BuildNet``) with children ``backbone``, ``neck``, ``head`` (those
        given), whose forward runs them in that order.

    Raises:
        UnknownTypeError: a ``type`` nothing is registered under (lists the registered
            names and the closest one).
        ConfigError: a bad argument, named by its path (``head.mid_channels``).

    Example:
        >>> net = theseus.build({"backbone": {"type": "MobileNetV1", "scale": 0.25},   # doctest: +SKIP
        ...                      "neck": {"type": "GlobalAveragePooling"},
        ...                      "head": {"type": "LinearClsHead", "num_classes": 5, "in_channels": 256}},
        ...                     backend="torch")
    """
    cfg = load_config(cfg)
    for key in cfg:
        if key not in _TOP:
            raise ConfigError(str(key), f"unknown config key{_closest(str(key), _TOP)}; a config has "
                              f"{', '.join(_TOP)}")
    name = _pick_backend(cfg, backend)
    seed = cfg.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", f"expected an integer >= 0, got {seed!r}")
    ctx = _Context(name, seed, _input_shape(cfg))
    plans = {k: _plan(k, cfg[k], ctx) for k in ("backbone", "neck", "head") if cfg.get(k) is not None}
    if not plans:
        raise ConfigError("", "the config builds nothing: give at least one of backbone, neck, head")
    seq, _ = lookup_factory("model", "Sequential", name, "")
    built = {}
    for k, p in plans.items():
        built[k] = seq([_construct(x, ctx) for x in p]) if isinstance(p, list) else _construct(p, ctx)
    net_factory, _ = lookup_factory("model", "BuildNet", name, "")
    model = net_factory(**built)
    ctx.backend.after_surgery(model)
    return model


@dataclass
class InitReport(LoadReport):
    """``init_model``'s account of a checkpoint: a ``LoadReport`` plus ``reasons``,
    ``{key: why it was not loaded}`` for every checkpoint or model key that was not loaded.

    Attributes:
        checkpoint_keys: how many tensors the checkpoint held.
    """

    reasons: dict = field(default_factory=dict)
    checkpoint_keys: int = 0
    renamed: tuple = ()

    def __str__(self) -> str:
        if not self.checkpoint_keys:
            return "no checkpoint: weights as initialised"
        text = f"{super().__str__()} (of {self.checkpoint_keys} checkpoint tensors)"
        if self.renamed:
            text += f"; checkpoint keys {self.renamed[0] or '(no prefix)'}... read as {self.renamed[1] or ''}..."
        return text


_PREFIXES = ("", "module.", "model.", "backbone.", "backbone.model.")


def _state_keys(model: Any) -> list:
    from ._state import state

    return list(state(model))


def _canonical(key: Any) -> str:
    desc, _, leaf = str(key).rpartition(".")
    try:
        return f"{parse(desc)}.{leaf}" if desc else str(key)
    except TheseusError:
        return str(key)


def _align_keys(weights: Mapping, model_keys: set) -> tuple[dict, tuple]:
    """Checkpoints of a bare backbone (``conv.conv.weight``), of a DDP model (``module.``) or of
    a build without ``out_indices`` meet the model's keys (``backbone.model.conv.conv.weight``):
    the one prefix swap ``(strip, add)`` that matches the most model keys is applied, if it
    matches more than the keys as they are; ``renamed`` in the report says which."""
    canon = {_canonical(k): v for k, v in weights.items()}
    best, hits = (), sum(k in model_keys for k in canon)
    for strip in _PREFIXES:
        for add in _PREFIXES:
            if strip == add:
                continue
            n = sum(k.startswith(strip) and add + k[len(strip):] in model_keys for k in canon)
            if n > hits:
                best, hits = (strip, add), n
    if not best:
        return canon, ()
    strip, add = best
    return {(add + k[len(strip):] if k.startswith(strip) else k): v for k, v in canon.items()}, best


def init_model(cfg: ConfigLike, checkpoint: Any = None, mode: str = "eval",
               backend: Optional[str] = None) -> tuple[Any, InitReport]:
    """Build a model and load what fits from a checkpoint (the seed's ``init_model``).

    Every checkpoint key that exists in the model with the same shape is loaded; in
    ``mode="train"`` only keys under ``backbone`` (a pretrained backbone, fresh neck and
    head). Nothing is printed: the report says what was loaded and, for everything else, why.
    Keys may be canonical or native (``blocks.0.conv.weight``); a checkpoint of the bare
    backbone, of a DDP model (``module.``) or of another build meets the model's keys by one
    prefix swap, chosen by the number of keys it matches and reported as ``report.renamed``.

    Args:
        cfg: as for ``build``.
        checkpoint: a path ``theseus.read_state`` reads, or a mapping ``{name: array}``
            (a ``{"state_dict": {...}}`` wrapper is unwrapped); None loads nothing.
        mode: ``"eval"`` (model in eval mode) or ``"train"`` (training mode).
        backend: as for ``build``.

    Returns:
        ``(model, report)``; ``report`` is an ``InitReport`` (a ``LoadReport``).

    Example:
        >>> net, report = theseus.init_model("cls.yaml", "backbone.npz", mode="train")   # doctest: +SKIP
        >>> report.reasons["head.fc.weight"]                                                # doctest: +SKIP
        'not in the checkpoint (kept its initialisation)'
    """
    if mode not in ("eval", "train"):
        raise InvalidArgumentError(f"init_model: mode must be 'eval' or 'train', got {mode!r}")
    weights = None
    if checkpoint is not None:
        from . import read_state  # wherever the file formats live

        weights = read_state(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
        if isinstance(weights, Mapping) and isinstance(weights.get("state_dict"), Mapping):
            weights = weights["state_dict"]
        if not isinstance(weights, Mapping):
            raise InvalidArgumentError(f"init_model: checkpoint must be a path or a mapping name -> array, "
                                       f"got {type(checkpoint).__name__}")
    model = build(cfg, backend=backend)
    b = backend_of(model)
    report = InitReport()
    if weights is not None:
        prefix = "backbone" if mode == "train" else None
        weights, renamed = _align_keys(weights, set(_state_keys(model)))
        got = load_state(model, weights, strict=False, prefix=prefix, skip_mismatched=True)
        report = InitReport(**{f.name: getattr(got, f.name) for f in fields(got) if f.init},
                            checkpoint_keys=len(weights), renamed=renamed)
        why = report.reasons
        for k in report.missing:
            why[k] = "not in the checkpoint (kept its initialisation)"
        for k in report.unexpected:
            why[k] = "not in the model"
        for k, (mine, theirs) in report.mismatched.items():
            why[k] = f"shape {theirs} in the checkpoint, {mine} in the model"
        for k in report.skipped:
            why[k] = "train mode loads backbone keys only (kept its initialisation)"
        for k in getattr(report, "ignored", ()):
            why[k] = "an optional tensor (e.g. torch's num_batches_tracked) this model does not keep"
        for k in getattr(report, "defaulted", ()):
            why[k] = "an optional tensor the checkpoint lacks (left as it was)"
        loaded = set(report.loaded) | set(why)
        for k in weights:
            desc, _, leaf = str(k).rpartition(".")
            c = f"{parse(desc)}.{leaf}"
            if c not in loaded and prefix is not None and not (c.startswith(prefix + ".") or c.startswith(prefix + "[")):
                report.unexpected.append(c)
                why[c] = "not a backbone key (train mode loads backbone keys only)"
    b.set_training(model, mode == "train")
    return model, report
