"""Cost of ``theseus.compare`` on a ResNet50 pair (Paddle ``paddle.vision.models.resnet50`` ->
torch ResNet50 with the same descriptors, weights ported), against the two plain forwards;
and the port certificate: size and ``verify`` time against one target forward.

    python benchmarks/compare.py [--reps 5] [--size 224]

Targets (issue 11): compare <= 5 x (source forward + destination forward); certificate
<= 20 MB at 1x3x224x224; verify <= 2 x one target forward plus I/O.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: E402
import torch  # noqa: E402
import theseus_paddle  # noqa: E402,F401
import theseus_torch  # noqa: E402,F401

import theseus  # noqa: E402
from _common import interleaved  # noqa: E402
from _resnet_torch import ResNet50  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    paddle.seed(0)
    torch.manual_seed(0)
    src = paddle.vision.models.resnet50()
    src.eval()
    dst = ResNet50().eval()
    assert theseus.load_state(dst, theseus.state(src)).ok
    shape = (1, 3, args.size, args.size)
    x = theseus.make_input(shape, 0)
    Bs, Bd = theseus.backend_of(src), theseus.backend_of(dst)
    xs, xd = Bs.from_numpy(x), Bd.from_numpy(x)
    report = theseus.compare(src, dst, x)
    print(report.summary())
    t = interleaved({
        "src": lambda: Bs.infer(src, xs),
        "dst": lambda: Bd.infer(dst, xd),
        "compare": lambda: theseus.compare(src, dst, x),
    }, args.reps, warmup=1)
    ratio = t["compare"] / (t["src"] + t["dst"])
    print(f"paddle forward {t['src'] * 1e3:.0f} ms, torch forward {t['dst'] * 1e3:.0f} ms, compare "
          f"{t['compare'] * 1e3:.0f} ms: {ratio:.2f} x the two plain forwards (target <= 5)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet50.tcert")
        certify_t = time.perf_counter()
        theseus.certify(src, dst, path, input_shape=shape)
        certify_t = time.perf_counter() - certify_t
        size = os.path.getsize(path)
        tv = interleaved({"dst": lambda: Bd.infer(dst, xd), "verify": lambda: theseus.verify(path, dst)},
                         args.reps, warmup=1)
        assert theseus.verify(path, dst).ok
    print(f"certificate {size / 1e6:.2f} MB (target <= 20), certify {certify_t:.1f} s; verify "
          f"{tv['verify'] * 1e3:.0f} ms = {tv['verify'] / tv['dst']:.2f} x one torch forward "
          f"({tv['dst'] * 1e3:.0f} ms; target <= 2 plus I/O)")


if __name__ == "__main__":
    main()
