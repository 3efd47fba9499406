"""Cost of theseus on the forward pass, as ratios against the plain forward of the same run.

1. update_res: MobileNetV1 with the seed's 4 captures vs the plain model (target <= 1.02).
2. stop_after("blocks[5]"): truncated vs full forward, next to the fraction of MACs kept
   (target: within 5 points) and the measured share of the full forward's time spent up
   to the end of blocks[5] (what the truncated forward should cost if it adds nothing).

Run:  python benchmarks/overhead.py [--backend torch ...] [--batch 8] [--reps 20] [--clock wall|cpu]
"""

from __future__ import annotations


import numpy as np

import theseus
from _common import interleaved, load, macs_per_layer, run_per_backend, time_share

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


COLUMNS = (f"{'update_res/plain':>17} {'stop_after(blocks[5])/full':>27} {'kept MACs':>10} {'gap (points)':>13} "
    f"{'time share':>11} {'gap (points)':>13}")


def _row(r: dict) -> str:
    return (f"{r['update_res_ratio']:>9.3f} +-{r['noise']:.3f} {r['stop_after_ratio']:>27.3f} {r['kept_macs']:>10.3f} "
            f"{100 * (r['stop_after_ratio'] - r['kept_macs']):>+13.1f} {r['time_share']:>11.3f} "
            f"{100 * (r['stop_after_ratio'] - r['time_share']):>+13.1f}")


def main(argv=None) -> int:
    return run_per_backend(__doc__, argv, COLUMNS, bench, _row)


if __name__ == "__main__":
    raise SystemExit(main())
