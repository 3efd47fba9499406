"""Cost of true captures on a ResNet-50-style torch model whose BatchNorms are followed by
``ReLU(inplace=True)`` and whose residual sums are ``out += identity`` (torchvision's
design, written here): update_res on layers an in-place op modifies (copied each forward)
and on layers nothing modifies (returned as they are), against the plain forward of the
same run (target <= 1.05). Each capture's values are checked against the BN output first.

Run:  python benchmarks/inplace.py [--batch 8] [--reps 10]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import interleaved

MODIFIED = ["layer1[0].bn1", "layer2[0].bn2", "layer3[0].bn3", "layer4[0].bn1"]   # ReLU_/+= follow
UNTOUCHED = ["layer1[0].conv1", "layer2[0].conv2", "layer3[0].conv3", "layer4[0].conv1"]


def resnet50():
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride, down):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(width * 4)) if down else None

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, (width, n, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
                blocks = []
                for j in range(n):
                    blocks.append(Bottleneck(cin, width, stride if j == 0 else 1, j == 0))
                    cin = width * 4
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet().eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    import torch

    torch.manual_seed(0)
    backend = theseus.get_backend("torch")
    x = torch.from_numpy(np.random.RandomState(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32))
    plain, modified, untouched = resnet50(), resnet50(), resnet50()
    for m in (modified, untouched):
        m.load_state_dict(plain.state_dict())
    theseus.update_res(modified, MODIFIED)
    theseus.update_res(untouched, UNTOUCHED)
    # the values are true: the BN outputs (with negatives), not what the in-place ReLU left
    out = backend.infer(modified, x)
    with torch.no_grad():
        a = plain.maxpool(plain.relu(plain.bn1(plain.conv1(x))))
        bn1 = plain.layer1[0].bn1(plain.layer1[0].conv1(a)).clone()
    theseus.assert_agree(backend.to_numpy(out["layer1[0].bn1"]), bn1.numpy(), name="layer1[0].bn1")
    assert float(out["layer1[0].bn1"].min()) < 0
    t = interleaved({
        "plain": lambda: backend.infer(plain, x),
        "modified": lambda: backend.infer(modified, x),
        "untouched": lambda: backend.infer(untouched, x),
    }, args.reps)
    print(f"ResNet-50 (torch, in-place ReLU and +=), batch {args.batch}, 224x224, eval, "
          f"median of {args.reps} interleaved runs")
    print(f"plain {1e3 * t['plain']:.1f} ms; captures modified in place (copied) / plain "
          f"{t['modified'] / t['plain']:.3f}; captures not modified (no copy) / plain {t['untouched'] / t['plain']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
