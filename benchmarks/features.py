"""Cost of theseus.features, as ratios against the plain forward of the same run.

1. features() (all five stages) vs the plain MobileNetV1 forward (target <= 1.02; the
   feature model skips the classifier head, so it may be below 1).
2. features(out_indices=[2]) (stops after blocks[4]) vs the full forward, next to the
   fraction of MACs it keeps and the measured share of the full forward's time spent up to
   the end of blocks[4].

Run:  python benchmarks/features.py [--backend torch ...] [--batch 8] [--reps 20] [--clock wall|cpu]
"""

from __future__ import annotations


import numpy as np

import theseus
from _common import interleaved, load, macs_per_layer, run_per_backend, time_share


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


COLUMNS = (f"{'features()/plain':>17} {'features([2])/plain':>20} {'kept MACs':>10} {'gap (points)':>13} "
    f"{'time share':>11} {'gap (points)':>13}")


def _row(r: dict) -> str:
    return (f"{r['all']:>17.3f} {r['two']:>20.3f} {r['kept']:>10.3f} {100 * (r['two'] - r['kept']):>+13.1f} "
            f"{r['share']:>11.3f} {100 * (r['two'] - r['share']):>+13.1f}")


def main(argv=None) -> int:
    return run_per_backend(__doc__, argv, COLUMNS, bench, _row)


if __name__ == "__main__":
    raise SystemExit(main())
