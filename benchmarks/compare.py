"""Cost of ``theseus.compare`` on a ResNet50 pair (Paddle ``paddle.vision.models.resnet50`` ->
torch ResNet50 with the same descriptors, weights ported), against the two plain forwards;
and the port certificate: size and ``verify`` time against one target forward.

    python benchmarks/compare.py [--reps 5] [--size 224] [--clock wall|cpu] [--phases]

compare measures float64 round-off only on suspicion (see theseus._compare): on this port,
which agrees, it judges on the fan-in estimate alone and the report's notes say so.

Targets (issue 11): compare <= 5 x (source forward + destination forward); certificate
<= 20 MB at 1x3x224x224; verify <= 2 x one target forward plus I/O. Ratios are medians of
per-round ratios (calls interleaved); 'A/A' is the destination forward against itself in the
same rounds (the noise floor). ``--phases`` prints where compare's time goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: E402
import torch  # noqa: E402
import theseus_paddle  # noqa: E402,F401
import theseus_torch  # noqa: E402,F401

import theseus  # noqa: E402
from _common import add_timing_args, interleaved, use_clock  # noqa: E402
from _resnet_torch import ResNet50  # noqa: E402


def phases(src, dst, x) -> None:
    """One compare split into its phases (wall-clock, one run); the float64 re-runs, which
    compare makes only on suspicion (none on a port that agrees), timed apart."""
    from theseus import _compare as C

    t = {}
    t0 = time.perf_counter()
    rec = C._record(src, x, True, lazy_weights=True)            # what compare() does
    rec.float64.checked = True                                   # (judged at once, as compare() does)
    t["record float32 (hooks, reads, fan-in)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    theseus.judge(dst, rec, isolate=False)
    t["judge: destination forward + metrics"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = theseus.judge(dst, rec)
    t["judge with isolated runs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec.float64.measure_acc()
    t["(suspicion only) float64 copy + full forward"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec.float64.measure_iso({e.key for e in rec.entries if e.leaf})
    t["(suspicion only) float64 re-run of every leaf"] = time.perf_counter() - t0
    for k, v in t.items():
        print(f"  {k:<46} {v * 1e3:8.0f} ms")
    print("  " + "; ".join(report.notes))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--phases", action="store_true")
    add_timing_args(ap)
    args = ap.parse_args()
    clock = use_clock(args.clock, args.steady_malloc)
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
    assert report.ok
    if args.phases:
        phases(src, dst, x)
    t = interleaved({
        "src": lambda: Bs.infer(src, xs),
        "dst": lambda: Bd.infer(dst, xd),
        "dst again": lambda: Bd.infer(dst, xd),
        "compare": lambda: theseus.compare(src, dst, x),
    }, args.reps, warmup=1)
    ratio = statistics.median(c / (s + d) for c, s, d in zip(t.samples["compare"], t.samples["src"],
                                                              t.samples["dst"]))
    print(f"{clock}, {args.reps} rounds: paddle forward {t['src'] * 1e3:.0f} ms, torch forward {t['dst'] * 1e3:.0f} ms, "
          f"compare {t['compare'] * 1e3:.0f} ms: {ratio:.2f} x the two plain forwards (target <= 5); "
          f"A/A {t.ratio('dst again', 'dst'):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet50.tcert")
        certify_t = time.perf_counter()
        theseus.certify(src, dst, path, input_shape=shape)
        certify_t = time.perf_counter() - certify_t
        size = os.path.getsize(path)
        from theseus._certificate import read_certificate

        tv = interleaved({"dst": lambda: Bd.infer(dst, xd), "dst again": lambda: Bd.infer(dst, xd),
                          "read": lambda: read_certificate(path),
                          "verify": lambda: theseus.verify(path, dst)}, args.reps, warmup=1)
        assert theseus.verify(path, dst).ok
    s = tv.samples
    excl = statistics.median((v - r) / d for v, r, d in zip(s["verify"], s["read"], s["dst"]))
    print(f"certificate {size / 1e6:.2f} MB (target <= 20), certify {certify_t:.1f} s; verify "
          f"{tv['verify'] * 1e3:.0f} ms = {tv.ratio('verify', 'dst'):.2f} x one torch forward including reading "
          f"the file ({tv['read'] * 1e3:.0f} ms), {excl:.2f} x excluding it (forward {tv['dst'] * 1e3:.0f} ms; "
          f"target <= 2 plus I/O); A/A {tv.ratio('dst again', 'dst'):.3f}")


if __name__ == "__main__":
    main()
