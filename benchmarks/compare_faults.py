"""What compare, a fixed ``atol=1e-5`` and a mean comparison say about injected porting faults
(tests/compare_faults.py: 6 kinds x 10 sites = 60 per destination), and how many layers each
flags on clean ports (20 seeded inputs).

    python benchmarks/compare_faults.py [--model mobilenet|resnet50] [--fw torch paddle mindspore]

``mobilenet``: theseus's MobileNetV1 ported from torch to each framework (same descriptors).
``resnet50``: three different implementations, timm (torch), PaddleClas (paddle) and MindCV
(mindspore), paired by ``theseus.match``; every ordered pair of frameworks, the 60 faults
injected into the destination (64x64 inputs).

A fault counts as *named* when the method's first flagged layer (execution order) is the
injected one (for compare: found in isolation); *wrong* when it flags another layer first;
*missed* when it flags nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import numpy as np  # noqa: E402
import theseus_mindspore  # noqa: E402,F401  (oneDNN first)

import theseus  # noqa: E402
from theseus import judge, make_input, record  # noqa: E402
import compare_faults as cf  # noqa: E402

ATOL = 1e-5
METHODS = ("compare", "atol=1e-5", "mean")


def verdicts(report, desc):
    """named / wrong / missed for each method; ``desc`` is the injected destination layer."""
    rows = report.rows
    ours = report.first_fault.dst_layer if report.first_fault is not None else None
    if ours is not None and not cf.first_named(report, "", desc):
        ours = ours if ours != desc else "(accumulated only)"
    atol = next((r.dst_layer for r in rows if not (r.acc.max_abs <= ATOL)), None)
    mean = next((r.dst_layer for r in rows if not (r.acc.mean_diff <= ATOL)), None)
    return {k: ("named" if v == desc else "missed" if v is None else "wrong") for k, v in
            zip(METHODS, (ours, atol, mean))}


def run_pair(label, fw, dst, rec, rec20, pm, misses):
    counts = {m: {"named": 0, "wrong": 0, "missed": 0} for m in METHODS}
    plan = cf.plan(fw, dst, called=cf.called_layers(dst, rec.x))
    t = time.perf_counter()
    for kind, desc, detail in plan:
        undo = cf.inject(fw, dst, kind, desc, detail)
        try:
            report = judge(dst, rec, pm)
        finally:
            undo()
        v = verdicts(report, desc)
        if v["compare"] != "named":
            misses.append((label, kind, desc, detail, report.first_divergence, report.cause))
        for m, out in v.items():
            counts[m][out] += 1
    per = (time.perf_counter() - t) / len(plan)
    clean = judge(dst, rec20, pm)
    flagged = {"compare": len(clean.flagged),
               "atol=1e-5": sum(1 for r in clean.rows if not (r.acc.max_abs <= ATOL)),
               "mean": sum(1 for r in clean.rows if not (r.acc.mean_diff <= ATOL))}
    for m, c in counts.items():
        print(f"| {label} | {m} | {c['named']}/{len(plan)} | {c['wrong']} | {c['missed']} | "
              f"{flagged[m]} of {len(clean.rows)} |", flush=True)
    n_all = sum(1 + (r.iso is not None) for r in clean.rows)
    n_est = sum((r.acc.noise_method == "fan-in estimate") + (r.iso is not None and r.iso.noise_method
                                                              == "fan-in estimate") for r in clean.rows)
    print(f"<!-- {label}: {per:.2f} s per judged fault; clean port (20 inputs): {n_est} of {n_all} judgments on "
          f"the fan-in estimate alone; recording: {rec20.noise_method} -->", flush=True)


def mobilenet(fws, misses):
    src = cf.Torch().mobilenet(seed=1, class_num=1024)
    cf.randomize_norms(src, 7)
    sd = theseus.state(src)
    rec = record(src, make_input((1, 3, 64, 64), 0, 2.0))
    x20 = np.concatenate([make_input((1, 3, 32, 32), s, 2.0) for s in range(20)])
    rec20 = record(src, x20)
    for name in fws:
        fw = cf.FRAMEWORKS[name]()
        dst = fw.mobilenet(seed=3, class_num=1024)
        theseus.load_state(dst, sd)
        run_pair(f"MobileNetV1 torch -> {name}", fw, dst, rec, rec20, None, misses)


def resnet50(fws, misses):
    shape = (1, 3, 64, 64)
    models, maps = cf.resnet50_ports(shape)
    x = make_input(shape, 0, cf.RESNET_SCALE)
    x20 = np.concatenate([make_input(shape, s, cf.RESNET_SCALE) for s in range(20)])
    for a in fws:
        rec, rec20 = record(models[a], x), record(models[a], x20)
        for b in fws:
            if a != b:
                label = f"ResNet50 {cf.RESNET50[a]} -> {cf.RESNET50[b]}"
                run_pair(label, cf.FRAMEWORKS[b](), models[b], rec, rec20, maps[a, b], misses)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mobilenet", "resnet50"], default="mobilenet")
    ap.add_argument("--fw", nargs="*", default=["torch", "paddle", "mindspore"])
    args = ap.parse_args()
    print("| source -> destination | method | named | wrong layer | missed | layers flagged on the clean port "
          "(20 inputs) |")
    print("|---|---|---|---|---|---|")
    misses: list = []
    (mobilenet if args.model == "mobilenet" else resnet50)(args.fw, misses)
    for m in misses:
        print("compare did not name:", m)


if __name__ == "__main__":
    main()
