"""Cost of theseus on the forward pass, as ratios against the plain forward of the same run.

1. update_res: MobileNetV1 with the seed's 4 captures vs the plain model (target <= 1.02).
2. stop_after("blocks[5]"): truncated vs full forward, next to the fraction of MACs kept
   (target: within 5 points) and the measured share of the full forward's time spent up
   to the end of blocks[5] (what the truncated forward should cost if it adds nothing).

Run:  python benchmarks/overhead.py [--backend torch ...] [--batch 8] [--reps 20] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import add_timing_args, interleaved, load, macs_per_layer, time_share, use_clock

RETURN = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]


def bench(name: str, batch: int, reps: int) -> dict:
    pkg, backend = load(name)
    x = backend.from_numpy(np.random.RandomState(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    plain = pkg.MobileNetV1()
    captured = pkg.MobileNetV1()
    cut = pkg.MobileNetV1()
    for m in (plain, captured, cut):
        backend.set_training(m, False)
    theseus.update_res(captured, RETURN)
    theseus.stop_after(cut, "blocks[5]")
    t = interleaved({
        "plain": lambda: backend.infer(plain, x),
        "plain again": lambda: backend.infer(plain, x),   # A/A: the run's noise floor
        "captured": lambda: backend.infer(captured, x),
        "cut": lambda: backend.infer(cut, x),
    }, reps)
    full_macs = macs_per_layer(backend, plain, x)
    kept = sum(v for d, v in full_macs.items() if d.startswith(("conv", "blocks[0]", "blocks[1]", "blocks[2]",
                                                                   "blocks[3]", "blocks[4]", "blocks[5]")))
    kept_cut = sum(macs_per_layer(backend, cut, x).values())
    assert kept == kept_cut, (kept, kept_cut)
    return {
        "plain_ms": 1e3 * t["plain"],
        "update_res_ratio": t.ratio("captured", "plain"),
        "noise": t.spread("captured", "plain"),
        "floor": t.ratio("plain again", "plain"),
        "stop_after_ratio": t.ratio("cut", "plain"),
        "kept_macs": kept / sum(full_macs.values()),
        "time_share": time_share(backend, plain, x, "blocks[5]", reps=max(3, reps // 2)),
    }


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
    print(f"{'backend':<10} {'plain ms':>9} {'A/A':>6} {'update_res/plain':>17} {'stop_after(blocks[5])/full':>27} "
          f"{'kept MACs':>10} {'gap (points)':>13} {'time share':>11} {'gap (points)':>13}")
    for n in names:
        r = bench(n, args.batch, args.reps)
        gap = 100 * (r["stop_after_ratio"] - r["kept_macs"])
        gap_t = 100 * (r["stop_after_ratio"] - r["time_share"])
        print(f"{n:<10} {r['plain_ms']:>9.1f} {r['floor']:>6.3f} {r['update_res_ratio']:>9.3f} +-{r['noise']:.3f} {r['stop_after_ratio']:>27.3f} "
              f"{r['kept_macs']:>10.3f} {gap:>+13.1f} {r['time_share']:>11.3f} {gap_t:>+13.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
