"""Token and channels-last models, truncate with functional code after the cut, and the
freeze policy under real SGD steps (the checks live in theseus_conformance.layouts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import theseus
from _torch_stage_checks import Gated
import theseus_torch
from theseus_conformance import layouts


class Mix(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        return x + self.fc(x)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2, 2)

    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class TinyViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.blocks = nn.Sequential(Mix(8), Mix(8))
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        return self.head(self.norm(self.blocks(x))[:, 0])


class TinyNHWC(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, 4)
        self.stages = nn.Sequential(Mix(8), Down(8, 16), Mix(16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.stages(self.stem(x).permute(0, 2, 3, 1)).mean((1, 2)))


class TinyTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, 2)
        self.stages = nn.ModuleList([Gated(8, 16), Gated(16, 32)])
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            g, x = stage(x)
            x = x * g[..., None, None]
        return self.head(x.mean((2, 3)))


def _x(shape=(2, 3, 16, 16)):
    return np.random.RandomState(0).standard_normal(shape).astype(np.float32)


def test_token_model():
    torch.manual_seed(0)
    layouts.check_token_model(theseus.get_backend("torch"), TinyViT(), _x())


def test_nhwc_model():
    torch.manual_seed(0)
    layouts.check_nhwc_model(theseus.get_backend("torch"), TinyNHWC(), _x())


def test_tuple_output_stages():
    torch.manual_seed(0)
    layouts.check_tuple_model(theseus.get_backend("torch"), TinyTuple(), _x())


def _sgd_step(model, x):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt.zero_grad()
    (model(x) ** 2).mean().backward()
    opt.step()


@pytest.mark.parametrize("norm", ["train", "eval", "frozen"])
def test_freeze_survives_sgd(norm):
    net = theseus_torch.MobileNetV1(scale=0.25, class_num=10)
    layouts.check_freeze_survives_sgd(theseus.get_backend("torch"), net, _x((4, 3, 32, 32)), _sgd_step, norm)


def test_truncate_under_compile_and_trace():
    torch.manual_seed(0)
    model = TinyViT().eval()
    x = torch.from_numpy(_x())
    cut = theseus.truncate(model, "blocks[1]")
    ref = cut(x)
    assert ref.shape == (2, 17, 8)
    torch._dynamo.reset()
    for run in (torch.compile(cut), torch.jit.trace(cut, x, strict=False)):
        with torch.no_grad():
            got = run(x)
        assert layouts._close(got.numpy(), ref.detach().numpy())


# -- MMDetection's ResNet(depth=50, frozen_stages=1, norm_eval=True), from its documented
# semantics: the stem (conv1, bn1) and res-layer 1 get requires_grad=False and stay in eval
# mode; with norm_eval every BatchNorm of the backbone is in eval mode after train().

class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            seq = []
            for i in range(blocks):
                seq.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
            layers.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(2048, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_mmdetection_resnet50_frozen_stages_1_norm_eval_parity():
    model = ResNet50()
    mmdet_frozen = [n for n, _ in model.named_parameters() if n.startswith(("conv1.", "bn1.", "layer1."))]
    mmdet_eval = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    names = theseus.freeze_stages(model, 1, norm="eval", input_shape=(1, 3, 64, 64))
    model.train()
    assert names == mmdet_frozen and len(names) == 3 + 30
    assert [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and not m.training] == mmdet_eval
    assert model.layer2[0].conv1.training and model.layer2[0].bn1.weight.requires_grad
    info = theseus.features(model, input_shape=(1, 3, 64, 64)).feature_info
    assert [(f["name"], f["reduction"]) for f in info] == [
        ("relu", 2), ("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32)]


class TwoHeads(nn.Module):
    """Heads in a ModuleDict that the forward indexes (the 'Identity' object is not
    subscriptable trap when stop_after replaced the whole dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.heads = nn.ModuleDict({"cls": nn.Conv2d(4, 2, 1), "box": nn.Conv2d(4, 4, 1)})

    def forward(self, x):
        x = self.body(x)
        return self.heads["cls"](x), self.heads["box"](x)


def test_stop_after_keeps_an_indexed_dict_of_heads():
    model = TwoHeads().eval()
    x = torch.from_numpy(_x())
    body = model.body(x)
    assert theseus.stop_after(model, "body") == ['heads["cls"]', 'heads["box"]']
    cls_out, box_out = model(x)
    assert torch.equal(cls_out, body) and torch.equal(box_out, body)
    theseus.reset(model)
    assert model(x)[0].shape == (2, 2, 16, 16)
