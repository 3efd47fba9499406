"""Cost of ``theseus.match`` on the ResNet-50 pair (PaddleClas -> timm), in plain forwards.

Target (issue "port between implementations"): match <= 3 x (one plain forward of each
model). Both are timed interleaved, medians over --reps rounds, in eval mode, on one
seeded input. Random init, nothing downloaded.

    python benchmarks/match.py [--size 224] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_progress_arg, interleaved, progress  # noqa: E402

from theseus_conformance import peers  # noqa: E402

peers.install()

import theseus  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--reps", type=int, default=5)
    add_progress_arg(p)
    args = p.parse_args()
    steps = progress(3)
    steps.step("building PaddleClas ResNet50 and timm resnet50")
    src = peers.ppcls_model("ResNet50")
    dst = peers.timm_model("resnet50")
    x = np.random.RandomState(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
    bs, bd = theseus.backend_of(src), theseus.backend_of(dst)
    xs, xd = bs.from_numpy(x), bd.from_numpy(x)

    def forwards():
        bs.infer(src, xs)
        bd.infer(dst, xd)

    steps.step("theseus.match once")
    pm = theseus.match(src, dst, x)
    steps.step(f"timing {args.reps} interleaved rounds")
    t = interleaved({"two plain forwards": forwards, "match": lambda: theseus.match(src, dst, x)},
                    reps=args.reps, warmup=1)
    ratio = t["match"] / t["two plain forwards"]
    print(f"ResNet50 PaddleClas -> timm at {args.size}x{args.size}: {len(pm)} tensors matched")
    print(f"two plain forwards {t['two plain forwards'] * 1e3:.0f} ms, match {t['match'] * 1e3:.0f} ms "
          f"(median of {args.reps}): {ratio:.2f} x  (target <= 3 x)")
    return 0 if ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
