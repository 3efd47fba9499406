"""A torch ResNet-50 (bottleneck v1.5) whose descriptors equal ``paddle.vision.models.resnet50``'s
(``conv1``, ``bn1``, ``layer1[0].conv1`` ... ``downsample[0]``, ``fc``): the torch side of the
ResNet50 pair of benchmarks/compare.py (torchvision cannot be imported beside the CPU torch
wheel here, see docs/framework-traps.md). ``inplace=True`` gives torchvision's own in-place
design (``ReLU(inplace=True)``, ``out += identity``): the model of benchmarks/inplace.py."""

from __future__ import annotations

import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int, down: bool, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=inplace)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))
                           if down else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.inplace:
            y += skip
            return self.relu(y)
        return self.relu(y + skip)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000, inplace: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=inplace)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (width, n, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
            blocks = []
            for k in range(n):
                blocks.append(Bottleneck(cin, width, stride if k == 0 else 1, k == 0, inplace))
                cin = width * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
