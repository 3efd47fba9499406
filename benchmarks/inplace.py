"""Cost of true captures on a ResNet-50-style torch model whose BatchNorms are followed by
``ReLU(inplace=True)`` and whose residual sums are ``out += identity`` (torchvision's
design, written here): update_res on layers an in-place op modifies (copied each forward)
and on layers nothing modifies (returned as they are), against the plain forward of the
same run (target <= 1.05). Each capture's values are checked against the BN output first.

Run:  python benchmarks/inplace.py [--batch 8] [--reps 10] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import add_timing_args, interleaved, use_clock
from _resnet_torch import ResNet50

MODIFIED = ["layer1[0].bn1", "layer2[0].bn2", "layer3[0].bn3", "layer4[0].bn1"]   # ReLU_/+= follow
UNTOUCHED = ["layer1[0].conv1", "layer2[0].conv2", "layer3[0].conv3", "layer4[0].conv1"]


def resnet50():
    return ResNet50(inplace=True).eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    add_timing_args(ap)
    args = ap.parse_args(argv)
    clock = use_clock(args.clock, args.steady_malloc)
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
        "plain again": lambda: backend.infer(plain, x),   # A/A: the run's noise floor
        "modified": lambda: backend.infer(modified, x),
        "untouched": lambda: backend.infer(untouched, x),
    }, args.reps)
    print(f"ResNet-50 (torch, in-place ReLU and +=), batch {args.batch}, 224x224, eval, "
          f"{clock}, medians of {args.reps} interleaved rounds (ratios: medians of per-round ratios)")
    print(f"plain {1e3 * t['plain']:.1f} ms; A/A (plain / plain, noise floor) {t.ratio('plain again', 'plain'):.3f}; "
          f"captures modified in place (copied) / plain {t.ratio('modified', 'plain'):.3f}; "
          f"captures not modified (no copy) / plain {t.ratio('untouched', 'plain'):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
