"""Token and channels-last models, truncate with functional code after the cut, and the
freeze policy under real SGD steps (the checks live in theseus_conformance.layouts)."""

from __future__ import annotations

import numpy as np
import pytest

import theseus_mindspore  # noqa: F401  (first: MindSpore's oneDNN before Paddle's)
import mindspore as ms
from mindspore import nn, ops

import theseus
from theseus_conformance import layouts


class Mix(nn.Cell):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Dense(c, c)

    def construct(self, x):
        return x + self.fc(x)


class Down(nn.Cell):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2, 2, pad_mode="valid", has_bias=True)

    def construct(self, x):
        return ops.transpose(self.conv(ops.transpose(x, (0, 3, 1, 2))), (0, 2, 3, 1))


class TinyViT(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, 4, pad_mode="valid", has_bias=True)
        self.cls_token = ms.Parameter(ms.Tensor(np.random.RandomState(1).standard_normal((1, 1, 8)), ms.float32))
        self.blocks = nn.SequentialCell([Mix(8), Mix(8)])
        self.norm = nn.LayerNorm((8,))
        self.head = nn.Dense(8, 10)

    def construct(self, x):
        b = x.shape[0]
        x = self.patch(x)
        x = ops.transpose(x.reshape(b, 8, -1), (0, 2, 1))
        x = ops.concat([ops.broadcast_to(self.cls_token, (b, 1, 8)), x], 1)
        return self.head(self.norm(self.blocks(x))[:, 0])


class TinyNHWC(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, 4, pad_mode="valid", has_bias=True)
        self.stages = nn.SequentialCell([Mix(8), Down(8, 16), Mix(16)])
        self.head = nn.Dense(16, 10)

    def construct(self, x):
        return self.head(ops.mean(self.stages(ops.transpose(self.stem(x), (0, 2, 3, 1))), (1, 2)))


class Gated(nn.Cell):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2, 2, pad_mode="valid", has_bias=True)

    def construct(self, x):
        y = self.conv(x)
        return ops.mean(y, (2, 3)), y


class TinyTuple(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, 2, pad_mode="valid", has_bias=True)
        self.stages = nn.CellList([Gated(8, 16), Gated(16, 32)])
        self.head = nn.Dense(32, 10)

    def construct(self, x):
        x = self.stem(x)
        for stage in self.stages:
            g, x = stage(x)
            x = x * g.reshape(g.shape[0], g.shape[1], 1, 1)
        return self.head(ops.mean(x, (2, 3)))


def _x(shape=(2, 3, 16, 16)):
    return np.random.RandomState(0).standard_normal(shape).astype(np.float32)


def test_token_model():
    layouts.check_token_model(theseus.get_backend("mindspore"), TinyViT(), _x())


def test_nhwc_model():
    layouts.check_nhwc_model(theseus.get_backend("mindspore"), TinyNHWC(), _x())


def test_tuple_output_stages():
    layouts.check_tuple_model(theseus.get_backend("mindspore"), TinyTuple(), _x())


def _sgd_step(model, x):
    opt = nn.SGD(model.trainable_params(), learning_rate=0.1)

    def loss_fn(x):
        return (model(x) ** 2).mean()

    _, grads = ms.value_and_grad(loss_fn, None, opt.parameters)(x)
    opt(grads)


@pytest.mark.parametrize("norm", ["train", "eval", "frozen"])
def test_freeze_survives_sgd(norm):
    net = theseus_mindspore.MobileNetV1(scale=0.25, class_num=10)
    layouts.check_freeze_survives_sgd(theseus.get_backend("mindspore"), net, _x((4, 3, 32, 32)), _sgd_step, norm)
