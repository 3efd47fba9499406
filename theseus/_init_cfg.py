"""``init_cfg``: initialise weights by layer type (Normal, Kaiming, Xavier, Uniform, Constant).

The values are drawn in numpy from a seeded generator and written through the backend's
neutral-layout import, so equal seeds give equal weights on every framework. Layer types are
matched by class name along the class's bases (``Conv2d`` also matches a subclass of it)
with the frameworks' spellings unified (``Dense`` = ``Linear``, ``Conv2D`` = ``Conv2d``).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Mapping, Sequence

import numpy as np

from ._errors import ConfigError
from ._walk import walk

__all__ = ["apply_init_cfg", "INIT_TYPES"]

#: init type -> {argument: default}
INIT_TYPES: dict[str, dict[str, Any]] = {
    "Normal": {"mean": 0.0, "std": 1.0, "bias": 0.0},
    "Uniform": {"a": 0.0, "b": 1.0, "bias": 0.0},
    "Constant": {"val": None, "bias": 0.0},
    "Kaiming": {"a": 0.0, "mode": "fan_out", "nonlinearity": "relu", "distribution": "normal", "bias": 0.0},
    "Xavier": {"gain": 1.0, "distribution": "normal", "bias": 0.0},
}

# Framework spellings of the same layer kind, lower-cased -> the name configs use.
_ALIASES = {"dense": "linear", "conv2d": "conv2d", "batchnorm": "batchnorm2d", "batchnorm2d": "batchnorm2d",
            "batchnorm1d": "batchnorm1d", "layernorm": "layernorm", "groupnorm": "groupnorm"}

_GAINS = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def _norm_name(name: str) -> str:
    low = name.lower()
    return _ALIASES.get(low, low)


def _layer_types(layer: Any) -> set:
    return {_norm_name(c.__name__) for c in type(layer).__mro__}


def _check(path: str, cfg: Any) -> tuple[str, set, dict]:
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, f"expected dict(type=..., layer=...) or a list of them, got {cfg!r}")
    kind = cfg.get("type")
    if kind not in INIT_TYPES:
        hint = " (load weights with theseus.init_model(cfg, checkpoint=...))" if kind == "Pretrained" else ""
        raise ConfigError(f"{path}.type", f"unknown init type {kind!r}{hint}; built in: {', '.join(INIT_TYPES)}")
    layers = cfg.get("layer")
    if isinstance(layers, str):
        layers = [layers]
    if not layers or not isinstance(layers, (list, tuple)) or not all(isinstance(x, str) for x in layers):
        raise ConfigError(f"{path}.layer", f"expected a layer type name or a list of them (e.g. 'Conv2d', "
                          f"['Linear']), got {cfg.get('layer')!r}")
    defaults = INIT_TYPES[kind]
    args = dict(defaults)
    for k, v in cfg.items():
        if k in ("type", "layer"):
            continue
        if k not in defaults:
            raise ConfigError(f"{path}.{k}", f"{kind} init takes {', '.join(['layer', *defaults])}; got {k!r}")
        args[k] = v
    if kind == "Constant" and args["val"] is None:
        raise ConfigError(f"{path}.val", "Constant init needs val=...")
    for k, v in args.items():
        if k in ("mode", "nonlinearity", "distribution"):
            ok = {"mode": ("fan_in", "fan_out"), "distribution": ("normal", "uniform"),
                  "nonlinearity": ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")}[k]
            if v not in ok:
                raise ConfigError(f"{path}.{k}", f"expected one of {', '.join(ok)}, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{path}.{k}", f"expected a number, got {v!r}")
    if kind in ("Normal",) and args["std"] < 0:
        raise ConfigError(f"{path}.std", f"expected std >= 0, got {args['std']!r}")
    return kind, {_norm_name(x) for x in layers}, args


def _fans(shape: tuple) -> tuple[int, int]:
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in = shape[1] * receptive if len(shape) > 1 else shape[0]
    return fan_in, shape[0] * receptive


def _draw(rng: np.random.Generator, kind: str, args: dict, shape: tuple, dtype: Any) -> np.ndarray:
    if kind == "Constant":
        return np.full(shape, args["val"], dtype=dtype)
    if kind == "Normal":
        return rng.normal(args["mean"], args["std"], shape).astype(dtype)
    if kind == "Uniform":
        return rng.uniform(args["a"], args["b"], shape).astype(dtype)
    fan_in, fan_out = _fans(shape)
    if kind == "Kaiming":
        gain = math.sqrt(2.0 / (1 + args["a"] ** 2)) if args["nonlinearity"] == "leaky_relu" \
            else _GAINS[args["nonlinearity"]]
        std = gain / math.sqrt(fan_in if args["mode"] == "fan_in" else fan_out)
    else:  # Xavier
        std = args["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
    if args["distribution"] == "uniform":
        bound = math.sqrt(3.0) * std
        return rng.uniform(-bound, bound, shape).astype(dtype)
    return rng.normal(0.0, std, shape).astype(dtype)


def apply_init_cfg(backend: Any, layer: Any, init_cfg: Any, path: str, seed: int) -> list[str]:
    """Initialise ``layer``'s subtree (itself included) as ``init_cfg`` says; later entries
    win for a layer two entries match. Only ``weight`` and ``bias`` are written.

    Returns:
        The descriptors (relative to ``layer``; ``""`` for itself) of the layers written.
    """
    cfgs = list(init_cfg) if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    checked = [_check(f"{path}[{i}]" if len(cfgs) > 1 else path, c) for i, c in enumerate(cfgs)]
    rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
    nodes: Sequence = [("", layer)] + [(n.text, n.layer) for n in walk(backend, layer)]
    done = []
    for text, sub in nodes:
        types = _layer_types(sub)
        for kind, wanted, args in checked:
            if not types & wanted:
                continue
            arrays = backend.export_local(sub)
            new = {}
            if "weight" in arrays:
                w = arrays["weight"]
                new["weight"] = _draw(rng, kind, args, tuple(w.shape), w.dtype)
            if "bias" in arrays:
                new["bias"] = np.full(arrays["bias"].shape, args["bias"], dtype=arrays["bias"].dtype)
            if new:
                backend.import_local(sub, new)
                done.append(text)
    return done
