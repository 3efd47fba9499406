"""The torch primitives of theseus's built-in parts (written once in ``theseus._parts``),
MobileNetV1 and the ``timm:`` prefix for ``theseus.build``."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
import torch.nn.functional as F

import theseus
from theseus._parts import Primitives, register_parts

from ._layer import LAYERS
from ._mobilenet import MobileNetV1


globals().update(register_parts("torch", Primitives(
    nn.Module, LAYERS, lambda x, like: F.interpolate(x, size=tuple(like.shape[2:]), mode="nearest"),
    F.relu, F.cross_entropy,
    {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.Hardswish, "HSigmoid": nn.Hardsigmoid,
     "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.SiLU, "Swish": nn.SiLU,
     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(negative_slope), "ELU": lambda alpha: nn.ELU(alpha)}),
    __name__))  # FPN, BuildNet... as before
theseus.register("backbone", "MobileNetV1", backend="torch")(MobileNetV1)


@theseus.register("backbone", "timm:", backend="torch")
def _timm(model_name: str, **kwargs: Any) -> nn.Module:
    import timm

    if not timm.is_model(model_name):
        close = timm.list_models(f"*{model_name[:4]}*")[:5]
        raise LookupError(f"timm has no model {model_name!r}; similar: {', '.join(close) or 'none'}")
    return timm.create_model(model_name, pretrained=False, **kwargs)
