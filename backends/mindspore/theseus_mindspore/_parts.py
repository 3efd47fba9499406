"""The MindSpore primitives of theseus's built-in parts (written once in ``theseus._parts``),
MobileNetV1 and the ``mindcv:`` prefix for ``theseus.build``."""

from __future__ import annotations

from typing import Any

import theseus
from theseus._parts import Primitives, register_parts

from ._layer import LAYERS
from ._mobilenet import MobileNetV1
from ._runtime import mindspore

nn, ops = mindspore.nn, mindspore.ops


class ELU(nn.Cell):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``: MindSpore's ``nn.ELU`` accepts only alpha=1.0."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def construct(self, x: Any) -> Any:
        return ops.where(x > 0, x, self.alpha * (ops.exp(ops.minimum(x, 0.0)) - 1))


class Tanh(nn.Cell):
    """tanh from ``exp``: MindSpore's CPU ``nn.Tanh``/``ops.tanh`` is off by up to 1e-4 (at x = -5)."""

    def construct(self, x: Any) -> Any:
        e = ops.exp(-2 * ops.abs(x))
        t = (1 - e) / (1 + e)
        return ops.where(x < 0, -t, t)


globals().update(register_parts("mindspore", Primitives(
    nn.Cell, LAYERS, lambda x, like: ops.interpolate(x, size=tuple(like.shape[2:]), mode="nearest"),
    ops.relu, ops.cross_entropy,
    {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.HSwish, "HSigmoid": nn.HSigmoid,
     "Sigmoid": nn.Sigmoid, "Tanh": Tanh, "SiLU": nn.SiLU, "Swish": nn.SiLU,
     # MindSpore defaults differ: GELU is the tanh approximation, LeakyReLU alpha=0.2.
     "GELU": lambda: nn.GELU(approximate=False),
     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(alpha=negative_slope), "ELU": ELU},
    forward="construct"), __name__))  # FPN, BuildNet... as before
theseus.register("backbone", "MobileNetV1", backend="mindspore")(MobileNetV1)


@theseus.register("backbone", "mindcv:", backend="mindspore")
def _mindcv(model_name: str, **kwargs: Any) -> nn.Cell:
    import mindcv

    if not mindcv.is_model(model_name):
        close = mindcv.list_models(f"*{model_name[:4]}*")[:5]
        raise LookupError(f"MindCV has no model {model_name!r}; similar: {', '.join(close) or 'none'}")
    return mindcv.create_model(model_name, pretrained=False, **kwargs)
