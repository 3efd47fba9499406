"""theseus's built-in model parts as torch layers (arguments are checked in ``theseus._specs``).

Same names and structure on every backend: ``BuildNet.backbone/neck/head``,
``FPN.lateral_convs[i].conv``, ``StackedLinearClsHead.layers[i].fc``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

import theseus

from ._mobilenet import MobileNetV1

reg = partial(theseus.register, backend="torch")


@reg("model", "BuildNet")
class BuildNet(nn.Module):
    """``backbone -> neck -> head`` (the parts given)."""

    def __init__(self, backbone: Any = None, neck: Any = None, head: Any = None) -> None:
        super().__init__()
        for name, part in (("backbone", backbone), ("neck", neck), ("head", head)):
            if part is not None:
                setattr(self, name, part)

    def forward(self, x: Any) -> Any:
        for part in self.children():
            x = part(x)
        return x


reg("model", "Sequential")(lambda layers: nn.Sequential(*layers))
reg("backbone", "MobileNetV1")(MobileNetV1)


@reg("backbone", "timm:")
def _timm(model_name: str, **kwargs: Any) -> nn.Module:
    import timm

    if not timm.is_model(model_name):
        close = timm.list_models(f"*{model_name[:4]}*")[:5]
        raise LookupError(f"timm has no model {model_name!r}; similar: {', '.join(close) or 'none'}")
    return timm.create_model(model_name, pretrained=False, **kwargs)


def _last(x: Any) -> Any:
    return x[-1] if isinstance(x, (list, tuple)) else x


@reg("neck", "GlobalAveragePooling")
class GlobalAveragePooling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return tuple(self.gap(t).flatten(1) for t in x)
        return self.gap(x).flatten(1)


class ConvModule(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@reg("neck", "FPN")
class FPN(nn.Module):
    def __init__(self, plan: Any) -> None:
        super().__init__()
        self.plan = plan
        self.lateral_convs = nn.ModuleList([ConvModule(i, o, 1) for i, o in plan.lateral])
        self.fpn_convs = nn.ModuleList([ConvModule(i, o, 3, s) for i, o, s in plan.fpn])

    def forward(self, inputs: Any) -> tuple:
        p = self.plan
        lat = [conv(inputs[i + p.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=tuple(lat[i - 1].shape[2:]), mode="nearest")
        outs = [self.fpn_convs[i](lat[i]) for i in range(len(lat))]
        for i in range(len(lat), p.num_outs):
            if p.extra is None:
                outs.append(outs[-1][:, :, ::2, ::2])  # max_pool2d(kernel 1, stride 2)
                continue
            src = outs[-1]
            if i == len(lat):
                src = {"on_input": inputs[p.end_level - 1], "on_lateral": lat[-1]}.get(p.extra, outs[-1])
            elif p.relu_before_extra_convs:
                src = F.relu(src)
            outs.append(self.fpn_convs[i](src))
        return tuple(outs)


class _ClsHead(nn.Module):
    def __init__(self, num_classes: int, loss_weight: float, topk: tuple) -> None:
        super().__init__()
        self.num_classes, self.loss_weight, self.topk = num_classes, loss_weight, topk

    def loss(self, cls_score: torch.Tensor, gt_label: torch.Tensor) -> dict:
        """``{"loss": loss_weight * cross_entropy(cls_score, gt_label)}``."""
        return {"loss": F.cross_entropy(cls_score, gt_label) * self.loss_weight}


@reg("head", "LinearClsHead")
class LinearClsHead(_ClsHead):
    def __init__(self, num_classes: int, in_channels: int, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Any) -> torch.Tensor:
        return self.fc(_last(x))


class LinearBlock(nn.Module):
    def __init__(self, cin: int, cout: int, act: Any = None, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        if act is not None:
            self.act = act()
        if dropout_rate:
            self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.children():
            x = m(x)
        return x


@reg("head", "StackedLinearClsHead")
class StackedLinearClsHead(_ClsHead):
    def __init__(self, num_classes: int, in_channels: int, mid_channels: tuple, dropout_rate: float = 0.0,
                 act: Any = None, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        ch = [in_channels, *mid_channels]
        self.layers = nn.ModuleList([LinearBlock(a, b, act, dropout_rate) for a, b in zip(ch, ch[1:])]
                                    + [LinearBlock(ch[-1], num_classes)])

    def forward(self, x: Any) -> torch.Tensor:
        x = _last(x)
        for layer in self.layers:
            x = layer(x)
        return x


for _name, _make in {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "HSwish": nn.Hardswish, "HSigmoid": nn.Hardsigmoid,
                     "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.SiLU, "Swish": nn.SiLU,
                     "LeakyReLU": lambda negative_slope: nn.LeakyReLU(negative_slope),
                     "ELU": lambda alpha: nn.ELU(alpha)}.items():
    reg("activation", _name)(_make)
