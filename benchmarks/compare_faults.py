"""What compare, a fixed ``atol=1e-5`` and a mean comparison say about the 60 injected faults
(tests/compare_faults.py: 6 kinds x 10 sites) on MobileNetV1 ported from torch to each
framework, and how many layers each flags on clean ports (20 seeded inputs).

    python benchmarks/compare_faults.py [--fw torch paddle mindspore]

A fault counts as *named* when the method's first flagged layer (execution order) is the
injected one; *wrong* when it flags another layer first; *missed* when it flags nothing.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import numpy as np  # noqa: E402
import theseus_mindspore  # noqa: E402,F401  (oneDNN first)

import theseus  # noqa: E402
from theseus import judge, make_input, record  # noqa: E402
import compare_faults as cf  # noqa: E402

ATOL = 1e-5


def verdicts(report, desc):
    rows = [r for r in report.rows]
    ours = report.first_divergence
    atol = next((r.src_layer for r in rows if not (r.acc.max_abs <= ATOL)), None)
    mean = next((r.src_layer for r in rows if not (r.acc.mean_diff <= ATOL)), None)
    return {k: ("named" if v == desc else "missed" if v is None else "wrong") for k, v in
            (("compare", ours), ("atol=1e-5", atol), ("mean", mean))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fw", nargs="*", default=["torch", "paddle", "mindspore"])
    args = ap.parse_args()
    src = cf.Torch().mobilenet(seed=1, class_num=1024)
    cf.randomize_norms(src, 7)
    sd = theseus.state(src)
    rec = record(src, make_input((1, 3, 64, 64), 0, 2.0))
    x20 = np.concatenate([make_input((1, 3, 32, 32), s, 2.0) for s in range(20)])
    rec20 = record(src, x20)
    print("| destination | method | named | wrong layer | missed | layers flagged on the clean port (20 inputs) |")
    print("|---|---|---|---|---|---|")
    for name in args.fw:
        fw = cf.FRAMEWORKS[name]()
        dst = fw.mobilenet(seed=3, class_num=1024)
        theseus.load_state(dst, sd)
        counts = {m: {"named": 0, "wrong": 0, "missed": 0} for m in ("compare", "atol=1e-5", "mean")}
        for kind, desc, detail in cf.plan(fw, dst):
            undo = cf.inject(fw, dst, kind, desc, detail)
            try:
                v = verdicts(judge(dst, rec), desc)
            finally:
                undo()
            for m, out in v.items():
                counts[m][out] += 1
        clean = judge(dst, rec20)
        flagged = {"compare": len(clean.flagged),
                   "atol=1e-5": sum(1 for r in clean.rows if not (r.acc.max_abs <= ATOL)),
                   "mean": sum(1 for r in clean.rows if not (r.acc.mean_diff <= ATOL))}
        for m, c in counts.items():
            print(f"| torch -> {name} | {m} | {c['named']}/60 | {c['wrong']} | {c['missed']} | "
                  f"{flagged[m]} of {len(clean.rows)} |", flush=True)


if __name__ == "__main__":
    main()
