"""Shared helpers of the benchmark scripts: timing by interleaved medians, MAC counting
from neutral weight shapes and probed output shapes (framework-free).

Progress: every ``interleaved`` round is one short line on stderr (``  [3/20] round: plain,
captured ...``) when stderr is a terminal; ``--quiet`` (``add_timing_args`` or
``add_progress_arg``) turns it off. Results go to stdout."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

import theseus
from theseus._progress import Progress


def load(name: str):
    """Import ``theseus_<name>`` (and so its framework); return (package, backend)."""
    pkg = importlib.import_module(f"theseus_{name}")
    pkg.MobileNetV1  # noqa: B018 - loads the framework
    return pkg, theseus.get_backend(name)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = {"name": "wall"}


_progress = {"quiet": False}


class _Quiet(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        _progress["quiet"] = True
        setattr(namespace, self.dest, True)


def add_progress_arg(ap: Any) -> None:
    """``-q/--quiet`` on a benchmark's argument parser: no progress lines (see ``progress``)."""
    ap.add_argument("-q", "--quiet", nargs=0, action=_Quiet, default=False, help="no progress lines on stderr")


def progress(total: int, indent: int = 0) -> Progress:
    """Progress lines for ``total`` steps on stderr (a terminal only; none under ``--quiet``)."""
    return Progress(total, quiet=_progress["quiet"], indent=indent)


STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def add_timing_args(ap: Any) -> None:
    """``--clock wall|cpu``, ``--steady-malloc`` and ``--quiet`` on a benchmark's argument
    parser (see ``use_clock``)."""
    add_progress_arg(ap)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: elapsed time (needs a quiet machine); cpu: the process's CPU time, which other "
                         "processes on a busy machine do not inflate (run with OMP_NUM_THREADS=1 so that "
                         "no intra-op thread spins)")
    ap.add_argument("--steady-malloc", action="store_true",
                    help="re-run this script with glibc's mmap and trim thresholds raised, so freed activations "
                         "are not returned to the OS and page-faulted back on the next forward (an allocator "
                         "effect that makes a model holding its activations longer look faster: "
                         "docs/framework-traps.md)")


def use_clock(name: str, steady_malloc: bool = False) -> str:
    """Select the clock every later ``interleaved`` call uses; returns a label for reports.

    With ``steady_malloc`` the process first re-executes itself with ``STEADY_MALLOC`` in its
    environment (glibc reads it at start-up only)."""
    if steady_malloc and any(os.environ.get(k) != v for k, v in STEADY_MALLOC.items()):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **STEADY_MALLOC})
    _clock["name"] = name
    label = "wall-clock" if name == "wall" else "process CPU time"
    if all(os.environ.get(k) == v for k, v in STEADY_MALLOC.items()):
        label += ", glibc mmap/trim thresholds raised (--steady-malloc)"
    return label


class Timings(dict):
    """Median seconds per call of each function (a dict), plus paired ratios.

    ``ratio(key, base)`` is the median over rounds of ``t[key] / t[base]`` measured in the
    same round (adjacent calls), which cancels the slow drift of a shared machine better
    than a ratio of two medians. ``floor(a, b)`` reports ``ratio`` between two entries that
    run the same thing: the noise floor of the run."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        super().__init__({k: statistics.median(v) for k, v in samples.items()})
        self.samples = samples

    def ratio(self, key: str, base: str) -> float:
        return statistics.median(a / b for a, b in zip(self.samples[key], self.samples[base]))

    def interval(self, key: str, base: str) -> tuple[float, float]:
        """95 % confidence interval of ``ratio(key, base)`` (the median of the paired ratios),
        distribution-free: the order statistics ``n/2 -+ 0.98 sqrt(n)`` of the sorted ratios.
        A target such as "<= 1.00" is shown met when the interval's upper end is below it, and
        indistinguishable when the interval contains it."""
        ratios = sorted(a / b for a, b in zip(self.samples[key], self.samples[base]))
        n = len(ratios)
        if n < 6:
            return float("nan"), float("nan")
        half = 0.98 * n ** 0.5
        return ratios[max(0, int(n / 2 - half))], ratios[min(n - 1, int(math.ceil(n / 2 + half)))]

    def spread(self, key: str, base: str) -> float:
        """Half the inter-quartile range of the paired ratios (their round-to-round noise)."""
        ratios = [a / b for a, b in zip(self.samples[key], self.samples[base])]
        if len(ratios) < 2:
            return float("nan")
        q = statistics.quantiles(ratios, n=4)
        return (q[2] - q[0]) / 2


def interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 3) -> Timings:
    """Time each function ``reps`` times, calls interleaved in rotating order so drift and
    position effects hit all alike; medians and paired ratios in the returned ``Timings``.
    Each round is a progress line (see the module docstring)."""
    clock = CLOCKS[_clock["name"]]
    steps, label = progress(reps, indent=2), "round: " + ", ".join(fns)
    label = label if len(label) <= 60 else label[:59] + "…"
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for r in range(reps):
        steps.step(label)
        for k in order[r % len(order):] + order[:r % len(order)]:  # rotate: no position bias
            t = clock()
            fns[k]()
            times[k].append(clock() - t)
    return Timings(times)


def macs_per_layer(backend: Any, model: Any, x: Any) -> dict[str, int]:
    """Multiply-accumulates of every conv/linear leaf, keyed by descriptor (one probe forward)."""
    layers = theseus.resolve(model, "**")
    out_shapes: dict[str, tuple] = {}
    handles = []
    for d, layer in layers.items():
        def hook(m, i, o, d=d):
            out_shapes[d] = backend.shape(o)
        handles.append(backend.add_forward_hook(layer, hook))
    try:
        backend.infer(model, x)
    finally:
        for h in handles:
            h.remove()
    macs = {}
    for d, layer in layers.items():
        w = backend.export_local(layer).get("weight")
        if w is None or d not in out_shapes or out_shapes[d] is None:
            continue
        shp = out_shapes[d]
        if w.ndim == 4:      # conv [out, in/groups, kh, kw], output (N, out, H, W)
            macs[d] = int(np.prod(shp[1:]) * np.prod(w.shape[1:]))
        elif w.ndim == 2:    # linear [out, in]
            macs[d] = int(w.shape[0] * w.shape[1])
    return macs


def time_share(backend: Any, model: Any, x: Any, last: str, reps: int = 5) -> float:
    """Median fraction of the plain forward's wall time spent up to the end of ``last``
    (timestamps from a pre-hook on the model and a post-hook on ``last``)."""
    marks: dict[str, float] = {}
    layer = theseus.resolve(model, last)[last]
    handles = [
        backend.add_forward_pre_hook(model, lambda m, i: marks.__setitem__("start", time.perf_counter())),
        backend.add_forward_hook(layer, lambda m, i, o: marks.__setitem__("last", time.perf_counter())),
        backend.add_forward_hook(model, lambda m, i, o: marks.__setitem__("end", time.perf_counter())),
    ]
    shares = []
    try:
        for _ in range(reps):
            backend.infer(model, x)
            shares.append((marks["last"] - marks["start"]) / (marks["end"] - marks["start"]))
    finally:
        for h in handles:
            h.remove()
    return statistics.median(shares)


def run_per_backend(doc: str, argv: Any, columns: str, bench: Callable[[str, int, int], dict],
                    row: Callable[[dict], str]) -> int:
    """The MobileNetV1 benchmarks' command line: ``--backend`` (repeatable), ``--batch``,
    ``--reps``, ``--clock``; one header, then one row per backend (plain ms, A/A, ``row(r)``)
    from ``bench(name, batch, reps)`` (a dict with ``plain_ms`` and ``floor``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--backend", action="append")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20)
    add_timing_args(ap)
    args = ap.parse_args(argv)
    clock = use_clock(args.clock, args.steady_malloc)
    names = args.backend or [n for n in ("mindspore", "paddle", "torch") if n in theseus.backends()]
    print(f"MobileNetV1, batch {args.batch}, 224x224, eval, {clock}, medians of {args.reps} interleaved rounds; "
          "ratios are medians of per-round ratios; 'A/A' is plain vs plain in the same rounds (the noise floor)")
    print(f"{'backend':<10} {'plain ms':>9} {'A/A':>6} {columns}")
    steps = progress(len(names))
    for n in names:
        steps.step(f"{n}: MobileNetV1")
        r = bench(n, args.batch, args.reps)
        print(f"{n:<10} {r['plain_ms']:>9.1f} {r['floor']:>6.3f} {row(r)}", flush=True)
    return 0

