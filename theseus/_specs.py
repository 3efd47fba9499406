"""The built-in parts' config arguments, checked and normalised once for every framework.

A spec turns a config's arguments (``FPN(in_channels, out_channels, num_outs, ...)``) into
the arguments of the backends' layer classes (``FPN(plan)``), so that validation, defaults
and the layer plan are written here once and the backends only build framework layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Optional

from ._errors import ConfigError

__all__ = ["SPECS", "DEFAULT_INIT", "ACTIVATION_ARGS", "FPNPlan", "spec_for"]

SPECS: dict[tuple[str, str], Callable[..., dict]] = {}

#: The ``init_cfg`` a built-in part gets when its config gives none (as in MMClassification/MMDetection).
DEFAULT_INIT: dict[tuple[str, str], Any] = {
    ("neck", "FPN"): {"type": "Xavier", "layer": "Conv2d", "distribution": "uniform"},
    ("head", "LinearClsHead"): {"type": "Normal", "layer": "Linear", "std": 0.01},
    ("head", "StackedLinearClsHead"): {"type": "Normal", "layer": "Linear", "std": 0.01},
}

#: Activations every backend provides, with their arguments and defaults (``inplace`` is
#: accepted everywhere and has no effect: theseus layers never modify their input).
ACTIVATION_ARGS: dict[str, dict[str, float]] = {
    "ReLU": {}, "ReLU6": {}, "HSwish": {}, "HSigmoid": {}, "Sigmoid": {}, "Tanh": {}, "GELU": {},
    "SiLU": {}, "Swish": {}, "LeakyReLU": {"negative_slope": 0.01}, "ELU": {"alpha": 1.0},
}


def spec_for(kind: str, name: str) -> Optional[Callable[..., dict]]:
    return SPECS.get((kind, name))


def _spec(kind: str, name: str):
    def deco(fn):
        SPECS[(kind, name)] = fn
        return fn
    return deco


def _int(path: str, arg: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{path}.{arg}", f"expected an integer >= {low}, got {value!r}")
    return int(value)


def _real(path: str, arg: str, value: Any, low: float, high: float, high_open: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, Real) or not low <= value <= high \
        or (high_open and value == high)
    if bad:
        raise ConfigError(f"{path}.{arg}", f"expected a number in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def _ints(path: str, arg: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{path}.{arg}", f"expected a non-empty list of integers, got {value!r}")
    return tuple(_int(path, f"{arg}[{i}]", v) for i, v in enumerate(value))


def _loss_weight(path: str, loss: Any) -> float:
    """Only cross-entropy is built in: ``dict(type='CrossEntropyLoss', loss_weight=1.0)``."""
    if loss is None:
        return 1.0
    if not isinstance(loss, dict) or loss.get("type") != "CrossEntropyLoss":
        raise ConfigError(f"{path}.loss", f"expected dict(type='CrossEntropyLoss', loss_weight=...), got {loss!r}")
    extra = sorted(set(loss) - {"type", "loss_weight"})
    if extra:
        raise ConfigError(f"{path}.loss.{extra[0]}", "CrossEntropyLoss takes only loss_weight")
    return _real(f"{path}.loss", "loss_weight", loss.get("loss_weight", 1.0), 0.0, float("inf"))


def _topk(path: str, topk: Any, num_classes: int) -> tuple:
    ks = (topk,) if isinstance(topk, int) and not isinstance(topk, bool) else topk
    ks = _ints(path, "topk", ks)
    for k in ks:
        if k > num_classes:
            raise ConfigError(f"{path}.topk", f"top-{k} needs at least {k} classes, num_classes is {num_classes}")
    return ks


def _head_common(ctx: Any, path: str, num_classes: Any, in_channels: Any, loss: Any, topk: Any,
                 cal_acc: Any) -> dict:
    n = _int(path, "num_classes", num_classes)
    if cal_acc:
        raise ConfigError(f"{path}.cal_acc", "accuracy inside the head is not built in; compute it from the "
                          "logits the model returns (cal_acc=False)")
    return {"num_classes": n, "in_channels": _int(path, "in_channels", in_channels),
            "loss_weight": _loss_weight(path, loss), "topk": _topk(path, topk, n)}


@_spec("neck", "GlobalAveragePooling")
def _gap(ctx: Any, path: str, dim: int = 2) -> dict:
    """Global average pooling of a map or of each map of a tuple -> ``(B, C)``."""
    if dim != 2:
        raise ConfigError(f"{path}.dim", f"only dim=2 (N, C, H, W maps) is built in, got {dim!r}")
    return {}


@dataclass(frozen=True)
class FPNPlan:
    """What an FPN builds, worked out once: ``lateral`` 1x1 convs and ``fpn`` 3x3 convs as
    ``(in, out[, stride])``; inputs ``start_level .. end_level - 1`` are used; ``num_outs``
    levels come out, the extra ones from a stride-2 slice (``extra=None``) or stride-2 convs
    on ``extra`` = ``'on_input'`` / ``'on_lateral'`` / ``'on_output'``."""

    in_channels: tuple
    out_channels: int
    num_outs: int
    start_level: int
    end_level: int
    extra: Optional[str]
    relu_before_extra_convs: bool
    lateral: tuple
    fpn: tuple


@_spec("neck", "FPN")
def _fpn(ctx: Any, path: str, in_channels: Any, out_channels: Any, num_outs: Any, start_level: Any = 0,
         end_level: Any = -1, add_extra_convs: Any = False, relu_before_extra_convs: Any = False) -> dict:
    """Feature pyramid (MMDetection semantics; ``end_level`` inclusive, -1 = the last input)."""
    cins = _ints(path, "in_channels", in_channels)
    out = _int(path, "out_channels", out_channels)
    n_out = _int(path, "num_outs", num_outs)
    n_in = len(cins)
    start = _int(path, "start_level", start_level, low=0)
    if start >= n_in:
        raise ConfigError(f"{path}.start_level", f"{start} is out of range for {n_in} inputs (in_channels)")
    if isinstance(end_level, bool) or not isinstance(end_level, int) or not (end_level == -1 or start <= end_level < n_in):
        raise ConfigError(f"{path}.end_level", f"expected -1 or an input index in {start}..{n_in - 1}, got {end_level!r}")
    end = n_in if end_level in (-1, n_in - 1) else end_level + 1
    used = end - start
    if n_out < used or (end != n_in and n_out != used):
        need = f"at least {used}" if end == n_in else f"exactly {used} (end_level is not the last input)"
        raise ConfigError(f"{path}.num_outs", f"expected {need} levels from inputs {start}..{end - 1}, got {n_out}")
    modes = {False: None, True: "on_input", "on_input": "on_input", "on_lateral": "on_lateral", "on_output": "on_output"}
    if isinstance(add_extra_convs, bool) or add_extra_convs in ("on_input", "on_lateral", "on_output"):
        extra = modes[add_extra_convs]
    else:
        raise ConfigError(f"{path}.add_extra_convs", "expected False, True, 'on_input', 'on_lateral' or "
                          f"'on_output', got {add_extra_convs!r}")
    if not isinstance(relu_before_extra_convs, bool):
        raise ConfigError(f"{path}.relu_before_extra_convs", f"expected True or False, got {relu_before_extra_convs!r}")
    lateral = tuple((cins[i], out) for i in range(start, end))
    fpn = [(out, out, 1)] * used
    if extra:
        fpn += [(cins[end - 1] if i == 0 and extra == "on_input" else out, out, 2) for i in range(n_out - used)]
    return {"plan": FPNPlan(cins, out, n_out, start, end, extra, relu_before_extra_convs, lateral, tuple(fpn))}


@_spec("head", "LinearClsHead")
def _linear_head(ctx: Any, path: str, num_classes: Any, in_channels: Any, loss: Any = None,
                 topk: Any = (1,), cal_acc: Any = False) -> dict:
    """One ``fc``; a tuple input uses its last element."""
    return _head_common(ctx, path, num_classes, in_channels, loss, topk, cal_acc)


@_spec("head", "StackedLinearClsHead")
def _stacked_head(ctx: Any, path: str, num_classes: Any, in_channels: Any, mid_channels: Any,
                  dropout_rate: Any = 0.0, norm_cfg: Any = None, act_cfg: Any = {"type": "ReLU"},  # noqa: B006
                  loss: Any = None, topk: Any = (1,), cal_acc: Any = False) -> dict:
    """``layers[i]`` = ``fc`` (+ ``act``, + ``dropout``) per ``mid_channels``, then ``fc``."""
    out = _head_common(ctx, path, num_classes, in_channels, loss, topk, cal_acc)
    out["mid_channels"] = _ints(path, "mid_channels", mid_channels)
    out["dropout_rate"] = _real(path, "dropout_rate", dropout_rate, 0.0, 1.0, high_open=True)
    if norm_cfg is not None:
        raise ConfigError(f"{path}.norm_cfg", f"normalisation between the stacked layers is not built in; "
                          f"use norm_cfg=None, got {norm_cfg!r}")
    out["act"] = None if act_cfg is None else ctx.activation(act_cfg, f"{path}.act_cfg")
    return out


def activation_args(path: str, name: str, kwargs: dict) -> dict:
    """Check the arguments of a built-in activation; ``inplace`` is dropped."""
    allowed = ACTIVATION_ARGS[name]
    out = {}
    for k, v in kwargs.items():
        if k == "inplace":
            if not isinstance(v, bool):
                raise ConfigError(f"{path}.inplace", f"expected True or False, got {v!r}")
            continue
        if k not in allowed:
            takes = ", ".join(list(allowed) + ["inplace"])
            raise ConfigError(f"{path}.{k}", f"activation {name} has no argument {k!r}; it takes: {takes}")
        out[k] = _real(path, k, v, float("-inf"), float("inf"))
    return {**allowed, **out}
