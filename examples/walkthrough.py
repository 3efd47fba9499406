"""Seed 000's walkthrough (PaddleClas TheseusLayer) on every installed backend, side by side.

Run:  python examples/walkthrough.py [--backend torch --backend paddle ...] [--tree] [--quiet]
(progress lines go to stderr when it is a terminal; the results to stdout)
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np

import theseus
from theseus._progress import Progress, add_quiet_arg

STOP = "blocks[0].depthwise_conv.conv"
RETURN = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]
UPGRADE = ["blocks[11].depthwise_conv.conv", "blocks[12].depthwise_conv.conv"]


def rep_funcs():
    """The seed's handle_func in each framework: a dense 5x5 conv, padding 2."""

    def torch_rep(layer, pattern):
        import torch.nn as nn
        return nn.Conv2d(layer.in_channels, layer.out_channels, kernel_size=5, padding=2)

    def paddle_rep(layer, pattern):
        import paddle.nn as nn
        return nn.Conv2D(in_channels=layer._in_channels, out_channels=layer._out_channels, kernel_size=5, padding=2)

    def mindspore_rep(layer, pattern):
        import mindspore.nn as nn
        return nn.Conv2d(layer.in_channels, layer.out_channels, 5, pad_mode="pad", padding=2, has_bias=True)

    return {"torch": torch_rep, "paddle": paddle_rep, "mindspore": mindspore_rep}


def shapes(backend, out):
    if isinstance(out, dict):
        return {k: backend.shape(v) for k, v in out.items()}
    return backend.shape(out)


def walkthrough(name: str, x: np.ndarray, show_tree: bool) -> dict:
    pkg = importlib.import_module(f"theseus_{name}")       # imports the framework
    backend = theseus.get_backend(name)
    t0 = time.perf_counter()
    res = {}

    net = pkg.MobileNetV1()
    backend.set_training(net, False)
    if show_tree:
        print(theseus.tree(net, input_shape=(1, 3, 224, 224)))
    res["stop_after() returned"] = net.stop_after(stop_layer_name=STOP)
    ids = [d for d, layer in theseus.resolve(net, "**").items() if backend.type_name(layer) == "Identity"]
    res["layers now Identity"] = f"{len(ids)}: {ids[0]} ... {ids[-1]}"
    res["truncated output"] = shapes(backend, backend.infer(net, backend.from_numpy(x)))

    net = pkg.MobileNetV1()
    backend.set_training(net, False)
    plain = backend.to_numpy(backend.infer(net, backend.from_numpy(x)))
    res["update_res() returned"] = list(net.update_res(return_patterns=RETURN))
    out = backend.infer(net, backend.from_numpy(x))
    res["output keys and shapes"] = shapes(backend, out)

    got = net.upgrade_sublayer(layer_name_pattern=UPGRADE, handle_func=rep_funcs()[name])
    res["upgrade_sublayer() returned"] = {k: backend.type_name(v) + str(tuple(backend.export_local(v)["weight"].shape))
                                          for k, v in got.items()}
    res["upgraded output"] = shapes(backend, backend.infer(net, backend.from_numpy(x)))["output"]
    theseus.reset(net)
    again = backend.to_numpy(backend.infer(net, backend.from_numpy(x)))
    res["reset(): output identical"] = bool(np.array_equal(plain, again))
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", help="torch, paddle, mindspore (default: all installed)")
    ap.add_argument("--tree", action="store_true", help="also print the tree with output shapes")
    add_quiet_arg(ap)
    args = ap.parse_args(argv)
    names = args.backend or [n for n in ("mindspore", "paddle", "torch") if n in theseus.backends()]
    x = np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    results = {}
    progress = Progress(len(names), quiet=args.quiet)
    for n in names:
        progress.step(f"{n}: the seed walkthrough")
        results[n] = walkthrough(n, x, args.tree and n == names[0])
    rows = list(next(iter(results.values())))
    print()
    for row in rows:
        print(f"== {row}")
        for n in names:
            print(f"   {n:<10} {results[n][row]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
