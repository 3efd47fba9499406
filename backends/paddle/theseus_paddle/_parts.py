"""The paddle primitives of theseus's built-in parts (written once in ``theseus._parts``),
MobileNetV1 and the ``ppcls:`` prefix for ``theseus.build``."""

from __future__ import annotations

from typing import Any

import paddle.nn as nn
import paddle.nn.functional as F

import theseus
from theseus._parts import Primitives, register_parts

from ._layer import LAYERS
from ._mobilenet import MobileNetV1


globals().update(register_parts("paddle", Primitives(
    nn.Layer, LAYERS, lambda x, like: F.interpolate(x, size=list(like.shape[2:]), mode="nearest"),
    F.relu, F.cross_entropy,
    {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.Hardswish, "HSigmoid": nn.Hardsigmoid,
     "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.Silu, "Swish": nn.Silu,
     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(negative_slope), "ELU": lambda alpha: nn.ELU(alpha)}),
    __name__))  # FPN, BuildNet... as before
theseus.register("backbone", "MobileNetV1", backend="paddle")(MobileNetV1)


@theseus.register("backbone", "ppcls:", backend="paddle")
def _ppcls(model_name: str, **kwargs: Any) -> nn.Layer:
    try:
        from ppcls.arch import backbone as zoo
    except ImportError:
        from paddleclas.ppcls.arch import backbone as zoo
    make = getattr(zoo, model_name, None)
    if not callable(make):
        import difflib

        close = difflib.get_close_matches(model_name, [n for n in dir(zoo) if not n.startswith("_")], n=3)
        raise LookupError(f"PaddleClas has no backbone {model_name!r}; similar: {', '.join(close) or 'none'}")
    return make(pretrained=False, **kwargs)
