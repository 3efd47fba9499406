"""Token and channels-last models, truncate with functional code after the cut, and the
freeze policy under real SGD steps (the checks live in theseus_conformance.layouts)."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from paddle import nn

import theseus
import theseus_paddle
from theseus_conformance import layouts


class Mix(nn.Layer):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        return x + self.fc(x)


class Down(nn.Layer):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, 2, 2)

    def forward(self, x):
        return self.conv(x.transpose([0, 3, 1, 2])).transpose([0, 2, 3, 1])


class TinyViT(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2D(3, 8, 4, 4)
        self.cls_token = self.create_parameter([1, 1, 8], default_initializer=nn.initializer.Normal())
        self.blocks = nn.Sequential(Mix(8), Mix(8))
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose([0, 2, 1])
        x = paddle.concat([self.cls_token.expand([x.shape[0], -1, -1]), x], 1)
        return self.head(self.norm(self.blocks(x))[:, 0])


class TinyNHWC(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2D(3, 8, 4, 4)
        self.stages = nn.Sequential(Mix(8), Down(8, 16), Mix(16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.stages(self.stem(x).transpose([0, 2, 3, 1])).mean(axis=[1, 2]))


class Gated(nn.Layer):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, 2, 2)

    def forward(self, x):
        y = self.conv(x)
        return y.mean(axis=[2, 3]), y


class TinyTuple(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2D(3, 8, 2, 2)
        self.stages = nn.LayerList([Gated(8, 16), Gated(16, 32)])
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            g, x = stage(x)
            x = x * g.unsqueeze([2, 3])
        return self.head(x.mean(axis=[2, 3]))


def _x(shape=(2, 3, 16, 16)):
    return np.random.RandomState(0).standard_normal(shape).astype(np.float32)


def test_token_model():
    paddle.seed(0)
    layouts.check_token_model(theseus.get_backend("paddle"), TinyViT(), _x())


def test_nhwc_model():
    paddle.seed(0)
    layouts.check_nhwc_model(theseus.get_backend("paddle"), TinyNHWC(), _x())


def test_tuple_output_stages():
    paddle.seed(0)
    layouts.check_tuple_model(theseus.get_backend("paddle"), TinyTuple(), _x())


def _sgd_step(model, x):
    opt = paddle.optimizer.SGD(learning_rate=0.1, parameters=[p for p in model.parameters() if not p.stop_gradient])
    (model(x) ** 2).mean().backward()
    opt.step()
    opt.clear_grad()


@pytest.mark.parametrize("norm", ["train", "eval", "frozen"])
def test_freeze_survives_sgd(norm):
    net = theseus_paddle.MobileNetV1(scale=0.25, class_num=10)
    layouts.check_freeze_survives_sgd(theseus.get_backend("paddle"), net, _x((4, 3, 32, 32)), _sgd_step, norm)
