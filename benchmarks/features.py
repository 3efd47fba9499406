"""Cost of theseus.features, as ratios against the plain forward of the same run.

1. features() (all five stages) vs the plain MobileNetV1 forward (target <= 1.02; the
   feature model skips the classifier head, so it may be below 1).
2. features(out_indices=[2]) (stops after blocks[4]) vs the full forward, next to the
   fraction of MACs it keeps and the measured share of the full forward's time spent up to
   the end of blocks[4].

Run:  python benchmarks/features.py [--backend torch ...] [--batch 8] [--reps 20] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import add_timing_args, interleaved, load, macs_per_layer, time_share, use_clock


def bench(name: str, batch: int, reps: int) -> dict:
    pkg, backend = load(name)
    x = backend.from_numpy(np.random.RandomState(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    plain = pkg.MobileNetV1()
    backend.set_training(plain, False)
    feat_all = theseus.features(plain)
    feat_2 = theseus.features(plain, out_indices=[2])
    t = interleaved({
        "plain": lambda: backend.infer(plain, x),
        "plain again": lambda: backend.infer(plain, x),   # A/A: the run's noise floor
        "all": lambda: backend.infer(feat_all, x),
        "two": lambda: backend.infer(feat_2, x),
    }, reps)
    macs = macs_per_layer(backend, plain, x)
    kept = sum(v for d, v in macs.items() if d.startswith(("conv",) + tuple(f"blocks[{i}]" for i in range(5))))
    return {"plain_ms": 1e3 * t["plain"], "all": t.ratio("all", "plain"), "two": t.ratio("two", "plain"),
            "floor": t.ratio("plain again", "plain"),
            "kept": kept / sum(macs.values()), "share": time_share(backend, plain, x, "blocks[4]", max(3, reps // 2))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20)
    add_timing_args(ap)
    args = ap.parse_args(argv)
    clock = use_clock(args.clock)
    names = args.backend or [n for n in ("mindspore", "paddle", "torch") if n in theseus.backends()]
    print(f"MobileNetV1, batch {args.batch}, 224x224, eval, {clock}, medians of {args.reps} interleaved rounds; "
          "ratios are medians of per-round ratios; 'A/A' is plain vs plain in the same rounds (the noise floor)")
    print(f"{'backend':<10} {'plain ms':>9} {'A/A':>6} {'features()/plain':>17} {'features([2])/plain':>20} "
          f"{'kept MACs':>10} {'gap (points)':>13} {'time share':>11} {'gap (points)':>13}")
    for n in names:
        r = bench(n, args.batch, args.reps)
        print(f"{n:<10} {r['plain_ms']:>9.1f} {r['floor']:>6.3f} {r['all']:>17.3f} {r['two']:>20.3f} {r['kept']:>10.3f} "
              f"{100 * (r['two'] - r['kept']):>+13.1f} {r['share']:>11.3f} {100 * (r['two'] - r['share']):>+13.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
