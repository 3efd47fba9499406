"""theseus's built-in model parts as MindSpore cells (arguments are checked in ``theseus._specs``).

Same names and structure on every backend: ``BuildNet.backbone/neck/head``,
``FPN.lateral_convs[i].conv``, ``StackedLinearClsHead.layers[i].fc``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import theseus

from ._mobilenet import MobileNetV1
from ._runtime import mindspore

nn, ops = mindspore.nn, mindspore.ops

reg = partial(theseus.register, backend="mindspore")


@reg("model", "BuildNet")
class BuildNet(nn.Cell):
    """``backbone -> neck -> head`` (the parts given)."""

    def __init__(self, backbone: Any = None, neck: Any = None, head: Any = None) -> None:
        super().__init__()
        for name, part in (("backbone", backbone), ("neck", neck), ("head", head)):
            if part is not None:
                setattr(self, name, part)

    def construct(self, x: Any) -> Any:
        for part in self._cells.values():
            x = part(x)
        return x


reg("model", "Sequential")(lambda layers: nn.SequentialCell(list(layers)))
reg("backbone", "MobileNetV1")(MobileNetV1)


@reg("backbone", "mindcv:")
def _mindcv(model_name: str, **kwargs: Any) -> nn.Cell:
    import mindcv

    if not mindcv.is_model(model_name):
        close = mindcv.list_models(f"*{model_name[:4]}*")[:5]
        raise LookupError(f"MindCV has no model {model_name!r}; similar: {', '.join(close) or 'none'}")
    return mindcv.create_model(model_name, pretrained=False, **kwargs)


def _last(x: Any) -> Any:
    return x[-1] if isinstance(x, (list, tuple)) else x


@reg("neck", "GlobalAveragePooling")
class GlobalAveragePooling(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)

    def construct(self, x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return tuple(self.gap(t).reshape(t.shape[0], -1) for t in x)
        return self.gap(x).reshape(x.shape[0], -1)


class ConvModule(nn.Cell):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, pad_mode="pad", padding=k // 2, has_bias=True)

    def construct(self, x: mindspore.Tensor) -> mindspore.Tensor:
        return self.conv(x)


@reg("neck", "FPN")
class FPN(nn.Cell):
    def __init__(self, plan: Any) -> None:
        super().__init__()
        self.plan = plan
        self.lateral_convs = nn.CellList([ConvModule(i, o, 1) for i, o in plan.lateral])
        self.fpn_convs = nn.CellList([ConvModule(i, o, 3, s) for i, o, s in plan.fpn])

    def construct(self, inputs: Any) -> tuple:
        p = self.plan
        lat = [conv(inputs[i + p.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + ops.interpolate(lat[i], size=tuple(lat[i - 1].shape[2:]), mode="nearest")
        outs = [self.fpn_convs[i](lat[i]) for i in range(len(lat))]
        for i in range(len(lat), p.num_outs):
            if p.extra is None:
                outs.append(outs[-1][:, :, ::2, ::2])  # max_pool2d(kernel 1, stride 2)
                continue
            src = outs[-1]
            if i == len(lat):
                src = {"on_input": inputs[p.end_level - 1], "on_lateral": lat[-1]}.get(p.extra, outs[-1])
            elif p.relu_before_extra_convs:
                src = ops.relu(src)
            outs.append(self.fpn_convs[i](src))
        return tuple(outs)


class _ClsHead(nn.Cell):
    def __init__(self, num_classes: int, loss_weight: float, topk: tuple) -> None:
        super().__init__()
        self.num_classes, self.loss_weight, self.topk = num_classes, loss_weight, topk

    def loss(self, cls_score: mindspore.Tensor, gt_label: mindspore.Tensor) -> dict:
        """``{"loss": loss_weight * cross_entropy(cls_score, gt_label)}``."""
        return {"loss": ops.cross_entropy(cls_score, gt_label) * self.loss_weight}


@reg("head", "LinearClsHead")
class LinearClsHead(_ClsHead):
    def __init__(self, num_classes: int, in_channels: int, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        self.fc = nn.Dense(in_channels, num_classes)

    def construct(self, x: Any) -> mindspore.Tensor:
        return self.fc(_last(x))


class LinearBlock(nn.Cell):
    def __init__(self, cin: int, cout: int, act: Any = None, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Dense(cin, cout)
        if act is not None:
            self.act = act()
        if dropout_rate:
            self.dropout = nn.Dropout(p=dropout_rate)

    def construct(self, x: mindspore.Tensor) -> mindspore.Tensor:
        for m in self._cells.values():
            x = m(x)
        return x


@reg("head", "StackedLinearClsHead")
class StackedLinearClsHead(_ClsHead):
    def __init__(self, num_classes: int, in_channels: int, mid_channels: tuple, dropout_rate: float = 0.0,
                 act: Any = None, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        ch = [in_channels, *mid_channels]
        self.layers = nn.CellList([LinearBlock(a, b, act, dropout_rate) for a, b in zip(ch, ch[1:])]
                                    + [LinearBlock(ch[-1], num_classes)])

    def construct(self, x: Any) -> mindspore.Tensor:
        x = _last(x)
        for layer in self.layers:
            x = layer(x)
        return x


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


for _name, _make in {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.HSwish, "HSigmoid": nn.HSigmoid,
                     "Sigmoid": nn.Sigmoid, "Tanh": Tanh, "SiLU": nn.SiLU, "Swish": nn.SiLU,
                     # MindSpore defaults differ: GELU is the tanh approximation, LeakyReLU alpha=0.2.
                     "GELU": lambda: nn.GELU(approximate=False),
                     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(alpha=negative_slope),
                     "ELU": ELU}.items():
    reg("activation", _name)(_make)
