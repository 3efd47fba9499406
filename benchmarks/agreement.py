"""Numeric agreement with the framework-free oracle, judged by scale (``theseus.agree``).

Seeded neutral MobileNetV1 weights (non-trivial BN statistics) are loaded into each
backend's MobileNetV1 (eval) and compared with the numpy reference on one (2, 3, 224, 224)
input: logits, the seed's update_res features, and stop_after outputs. Each cell is the
judge's ratio max|a - b| / max|ref| of the worst tensor (float32 round-off is ~1e-6); the
last column says whether every scenario passes the judge's defaults.

Run:  python benchmarks/agreement.py [--backend torch ...] [--quiet]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import add_progress_arg, load, progress
from theseus_conformance.oracle import neutral_weights, oracle_net

RETURN = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]
STOPS = ["blocks[0].depthwise_conv.conv", "blocks[5]", "blocks[12].pointwise_conv.bn"]


def outputs(backend, make, x) -> dict:
    """{scenario: [arrays]} for one model factory."""
    res = {}
    net = make()
    res["logits"] = [backend.to_numpy(backend.infer(net, backend.from_numpy(x)))]
    theseus.update_res(net, RETURN)
    out = backend.infer(net, backend.from_numpy(x))
    res["update_res features"] = [backend.to_numpy(out[k]) for k in RETURN]
    theseus.reset(net)
    for d in STOPS:
        theseus.stop_after(net, d)
        res[f"stop_after({d})"] = [backend.to_numpy(backend.infer(net, backend.from_numpy(x)))]
        theseus.reset(net)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append")
    add_progress_arg(ap)
    args = ap.parse_args(argv)
    names = args.backend or [n for n in ("mindspore", "paddle", "torch") if n in theseus.backends()]
    w = neutral_weights(seed=0)
    x = np.random.RandomState(7).standard_normal((2, 3, 224, 224)).astype(np.float32)
    ref = oracle_net(w)
    rb = theseus.backend_of(ref)
    expected = outputs(rb, lambda: oracle_net(w), x)
    print(f"max|a - b| / max|ref| against the numpy oracle (judge: rtol {theseus.DEFAULT_RTOL:g}, "
          f"atol {theseus.DEFAULT_ATOL:g})")
    widths = [max(len(k), 9) for k in expected]
    print(f"{'backend':<10} " + "  ".join(f"{k:>{wd}}" for k, wd in zip(expected, widths)) + "  judge")
    status = False
    steps = progress(len(names))
    for n in names:
        steps.step(f"{n}: MobileNetV1 against the oracle")
        pkg, backend = load(n)

        def make():
            net = pkg.MobileNetV1()
            backend.set_training(net, False)
            theseus.load_state(net, w)
            return net

        got = outputs(backend, make, x)
        verdicts = [theseus.agree(got[k], expected[k], name=k) for k in expected]
        bad = [v for v in verdicts if not v]
        print(f"{n:<10} " + "  ".join(f"{v.ratio:>{wd}.2e}" for v, wd in zip(verdicts, widths))
              + ("  pass" if not bad else "  FAIL"), flush=True)
        for v in bad:
            print(f"  {v.message}", flush=True)
        status = status or bool(bad)
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
