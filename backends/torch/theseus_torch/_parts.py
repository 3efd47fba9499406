"""The torch primitives of theseus's built-in parts (written once in ``theseus._parts``),
MobileNetV1 and the ``timm:`` prefix for ``theseus.build``."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch.nn as nn
import torch.nn.functional as F

import theseus
from theseus._parts import Primitives, register_parts

from ._mobilenet import MobileNetV1

#: Layer constructors under the conformance spec's node names (also the spec builder's table).
LAYERS = {
    "conv": lambda cin, cout, k, stride, padding, groups, bias: nn.Conv2d(
        cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias),
    "bn": nn.BatchNorm2d, "relu": nn.ReLU, "identity": nn.Identity, "flatten": nn.Flatten,
    "pool": lambda: nn.AdaptiveAvgPool2d(1), "linear": nn.Linear, "dropout": nn.Dropout,
    "seq": lambda kids: nn.Sequential(*kids), "named_seq": lambda kids: nn.Sequential(OrderedDict(kids)),
    "list": nn.ModuleList, "dict": lambda kids: nn.ModuleDict(OrderedDict(kids)),
}

register_parts("torch", Primitives(
    nn.Module, LAYERS, lambda x, like: F.interpolate(x, size=tuple(like.shape[2:]), mode="nearest"),
    F.relu, F.cross_entropy,
    {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.Hardswish, "HSigmoid": nn.Hardsigmoid,
     "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.SiLU, "Swish": nn.SiLU,
     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(negative_slope), "ELU": lambda alpha: nn.ELU(alpha)}),
    __name__)
theseus.register("backbone", "MobileNetV1", backend="torch")(MobileNetV1)


@theseus.register("backbone", "timm:", backend="torch")
def _timm(model_name: str, **kwargs: Any) -> nn.Module:
    import timm

    if not timm.is_model(model_name):
        close = timm.list_models(f"*{model_name[:4]}*")[:5]
        raise LookupError(f"timm has no model {model_name!r}; similar: {', '.join(close) or 'none'}")
    return timm.create_model(model_name, pretrained=False, **kwargs)
