"""Numeric agreement with the framework-free oracle: max abs difference per backend.

Seeded neutral MobileNetV1 weights (non-trivial BN statistics) are loaded into each
backend's MobileNetV1 (eval) and compared with the numpy reference on one (2, 3, 224, 224)
input: logits, the seed's update_res features, and stop_after outputs.

Run:  python benchmarks/agreement.py [--backend torch ...]
"""

from __future__ import annotations

import argparse

import numpy as np

import theseus
from _common import load
from theseus_conformance.oracle import neutral_weights, oracle_net

RETURN = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]
STOPS = ["blocks[0].depthwise_conv.conv", "blocks[5]"]


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
    args = ap.parse_args(argv)
    names = args.backend or [n for n in ("mindspore", "paddle", "torch") if n in theseus.backends()]
    w = neutral_weights(seed=0)
    x = np.random.RandomState(7).standard_normal((2, 3, 224, 224)).astype(np.float32)
    ref = oracle_net(w)
    rb = theseus.backend_of(ref)
    expected = outputs(rb, lambda: oracle_net(w), x)
    scale = float(np.abs(expected["logits"][0]).max())
    print(f"max abs difference to the numpy oracle (logits up to {scale:.1f} in magnitude)")
    widths = [max(len(k), 9) for k in expected]
    print(f"{'backend':<10} " + "  ".join(f"{k:>{wd}}" for k, wd in zip(expected, widths)))
    for n in names:
        pkg, backend = load(n)

        def make():
            net = pkg.MobileNetV1()
            backend.set_training(net, False)
            theseus.load_state(net, w)
            return net

        got = outputs(backend, make, x)
        diffs = [max(float(np.max(np.abs(a - b))) for a, b in zip(got[k], expected[k])) for k in expected]
        print(f"{n:<10} " + "  ".join(f"{d:>{wd}.2e}" for d, wd in zip(diffs, widths)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
