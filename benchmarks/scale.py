"""Scale: resolving patterns on a 10,000-layer model, and the cost of ``import theseus``.

    python benchmarks/scale.py [--backend reference|torch] [--reps 15]

The model is 100 ``ModuleList``-style blocks of 100 leaf layers each (10,101 layers with the
containers). Each figure is the median of interleaved repetitions (``_common.interleaved``).
Targets (issue 14): ``resolve(m, "**")`` <= 100 ms, ``resolve(m, "blocks[*][98]")`` <= 20 ms
(a pattern naming one layer per block must not cost a walk of everything), and
``import theseus`` <= 30 ms beyond numpy (median of fresh interpreters, ``-X importtime``
self-reported cumulative time of the ``theseus`` package).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_progress_arg, interleaved, progress  # noqa: E402

import theseus  # noqa: E402

BLOCKS, LAYERS = 100, 100


def big_model(backend_name: str):
    if backend_name == "torch":
        import theseus_torch  # noqa: F401 - registers the framework as imported
        import torch.nn as nn

        return _torch_model(nn)
    from theseus_conformance.reference import Identity, Layer, LayerList, ReferenceBackend

    theseus.register_backend(ReferenceBackend(), replace=True)
    m = Layer()
    m.blocks = LayerList([LayerList([Identity() for _ in range(LAYERS)]) for _ in range(BLOCKS)])
    m.head = Identity()
    return m


def _torch_model(nn):
    m = nn.Module()
    m.blocks = nn.ModuleList([nn.ModuleList([nn.Identity() for _ in range(LAYERS)]) for _ in range(BLOCKS)])
    m.head = nn.Identity()
    return m


def import_ms(rounds: int) -> tuple[float, float]:
    """Median ms of ``import theseus`` (cumulative, from -X importtime) and of numpy alone."""
    ours, base = [], []
    env = dict(os.environ)
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import numpy, theseus"],
                             capture_output=True, text=True, env=env).stderr
        cum = {}
        for line in out.splitlines():
            m = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
            if m and len(m.group(2)) <= 2:  # top-level imports only
                cum[m.group(3)] = int(m.group(1)) / 1000
        ours.append(cum.get("theseus", float("nan")))
        base.append(cum.get("numpy", float("nan")))
    return statistics.median(ours), statistics.median(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="reference", choices=["reference", "torch"])
    ap.add_argument("--reps", type=int, default=15)
    add_progress_arg(ap)
    args = ap.parse_args()
    steps = progress(3)
    steps.step(f"building the {args.backend} model")
    m = big_model(args.backend)
    n_all = len(theseus.resolve(m, "**"))
    n_one = len(theseus.resolve(m, "blocks[*][98]"))
    assert n_one == BLOCKS, n_one
    steps.step(f"timing resolve, {args.reps} interleaved rounds")
    t = interleaved({"**": lambda: theseus.resolve(m, "**"),
                     "blocks[*][98]": lambda: theseus.resolve(m, "blocks[*][98]"),
                     "blocks[50][98]": lambda: theseus.resolve(m, "blocks[50][98]"),
                     "**.5": lambda: theseus.resolve(m, "**[5]")}, reps=args.reps)
    print(f"backend {args.backend}: {n_all} layers; median of {args.reps} interleaved rounds")
    targets = {"**": 100.0, "blocks[*][98]": 20.0}
    for k, v in t.items():
        goal = f"  (target <= {targets[k]:.0f} ms: {'ok' if v * 1000 <= targets[k] else 'MISSED'})" if k in targets else ""
        print(f"  resolve(m, {k!r:18}) {v * 1000:8.2f} ms{goal}")
    steps.step("timing import theseus (-X importtime)")
    ours, base = import_ms(max(5, args.reps // 2))
    print(f"  import theseus        {ours:8.2f} ms beyond numpy ({base:.1f} ms) (target <= 30 ms: "
          f"{'ok' if ours <= 30 else 'MISSED'})")


if __name__ == "__main__":
    main()
