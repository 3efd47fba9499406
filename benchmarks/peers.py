"""theseus against the peers' own tools, on the peers' own models, side by side in one run.

1. torch: ``theseus.features(m)`` on timm's ``mobilenetv1_100`` vs timm's own
   ``features_only=True`` model of it (same weights, all five stages). Target <= 1.00.
2. paddle: ``theseus.update_res`` vs PaddleClas's own ``update_res`` on PaddleClas's
   MobileNetV1 (same weights, PaddleClas's five stage patterns). Target <= 1.00.

Interleaved calls in rotating order, medians of ``--reps`` rounds (>= 40), batch 8,
224x224, eval, no gradients. The last two columns are the per-call cost on a 1x3x32x32
input (best of 7 x 20 calls), where the Python around the kernels (hooks, module calls)
dominates: where the two differ beyond the compute.

Run:  python benchmarks/peers.py [--reps 40] [--batch 8] [--only timm|paddleclas] [--clock wall|cpu]
      [--steady-malloc] [--processes K]

One process measures one placement of the models in memory; on this VM that placement alone
moves a ratio by about +-1 % from process to process, more than the in-run interval. With
``--processes K`` the whole measurement runs in K fresh processes, one after the other,
alternating which of the two models is built first (so neither side always gets the first
allocations), and the summary gives each process's ratio and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit

import numpy as np

import theseus
from _common import add_timing_args, interleaved, use_clock
from theseus_conformance import peers

PPCLS_STAGES = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]", "blocks[12]"]


def bench_timm(batch: int, reps: int, peer_first: bool = True) -> dict:
    import timm
    import torch

    torch.manual_seed(0)
    if peer_first:   # which model is made first decides where its tensors live (see --processes)
        ref = timm.create_model("mobilenetv1_100", pretrained=False, features_only=True).eval()
    plain = timm.create_model("mobilenetv1_100", pretrained=False).eval()
    if not peer_first:
        ref = timm.create_model("mobilenetv1_100", pretrained=False, features_only=True).eval()
    ref.load_state_dict({k: v for k, v in plain.state_dict().items() if k in ref.state_dict()})
    ours = theseus.features(plain).eval()
    assert ours.feature_info.reduction() == ref.feature_info.reduction()
    x = torch.from_numpy(np.random.RandomState(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        a, b = ours(x), ref(x)
        assert all(torch.equal(p, q) for p, q in zip(a, b)), "theseus and timm feature maps differ"
        hooked = _raw_hooks_early_exit(timm.create_model("mobilenetv1_100", pretrained=False).eval(), plain)
        t = interleaved({"peer": lambda: ref(x), "peer again": lambda: ref(x), "ours": lambda: ours(x),
                         "raw hooks": lambda: hooked(x)}, reps)
        tiny = torch.from_numpy(np.zeros((1, 3, 32, 32), np.float32))
        fixed = _fixed_cost(lambda: ref(tiny), lambda: ours(tiny))
    return {**_result(t, fixed), "raw_hooks": t.ratio("raw hooks", "peer")}


def _raw_hooks_early_exit(model, like):
    """The mechanism without theseus: five bare forward hooks on ``blocks[0..4]`` storing the
    outputs, the last one raising to end the forward (what any hook-based features_only does
    on an unmodified model); separates the mechanism's cost from theseus's own code."""
    model.load_state_dict(like.state_dict())

    class Stop(Exception):
        pass

    outs: list = []

    def keep(last: bool):
        def hook(module, inputs, output):
            outs.append(output)
            if last:
                raise Stop
        return hook

    for i in range(5):
        model.blocks[i].register_forward_hook(keep(i == 4))

    def run(x):
        outs.clear()
        try:
            model(x)
        except Stop:
            pass
        return list(outs)

    return run


def _fixed_cost(peer, ours) -> dict:
    """Per-call cost on a 1x3x32x32 input, where the Python around the kernels dominates
    (best of 7 repeats of 20 calls each: the minimum is what load cannot inflate)."""
    best = {}
    for name, fn in (("peer", peer), ("ours", ours)):
        fn()
        best[name] = min(timeit.repeat(fn, number=20, repeat=7)) / 20
    return best


def _result(t, fixed: dict) -> dict:
    return {"peer_ms": 1e3 * t["peer"], "ours_ms": 1e3 * t["ours"], "ratio": t.ratio("ours", "peer"),
            "noise": t.spread("ours", "peer"), "floor": t.ratio("peer again", "peer"),
            "ci": t.interval("ours", "peer"), "floor_ci": t.interval("peer again", "peer"),
            "fixed_peer_ms": 1e3 * fixed["peer"], "fixed_ours_ms": 1e3 * fixed["ours"]}


def _ci(bounds: tuple) -> str:
    return f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def bench_paddleclas(batch: int, reps: int, peer_first: bool = True) -> dict:
    import paddle

    paddle.seed(0)
    first, second = peers.ppcls_model("MobileNetV1"), peers.ppcls_model("MobileNetV1")
    theirs, ours = (first, second) if peer_first else (second, first)
    ours.set_state_dict(theirs.state_dict())
    theirs.update_res(PPCLS_STAGES)                    # PaddleClas's own
    theseus.update_res(ours, PPCLS_STAGES)             # theseus on the same model code
    x = paddle.to_tensor(np.random.RandomState(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    with paddle.no_grad():
        a, b = ours(x), theirs(x)
        assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in PPCLS_STAGES), "captures differ"
        t = interleaved({"peer": lambda: theirs(x), "peer again": lambda: theirs(x), "ours": lambda: ours(x)},
                        reps)
        tiny = paddle.to_tensor(np.zeros((1, 3, 32, 32), np.float32))
        fixed = _fixed_cost(lambda: theirs(tiny), lambda: ours(tiny))
        chain = {"peer": _hook_chain_us(theirs, tiny), "ours": _hook_chain_us(ours, tiny)}
    return {**_result(t, fixed), "chain": chain}


def _hook_chain_us(model, x) -> float:
    """Microseconds per forward spent in the hooks a capture registered (the root's pre- and
    post-hooks and each captured layer's post-hook), called directly with a real tensor:
    best of 5 x 20,000 calls."""
    layers = theseus.resolve(model, PPCLS_STAGES).values()
    pre, post = list(model._forward_pre_hooks.values()), list(model._forward_post_hooks.values())
    inner = [(layer, list(layer._forward_post_hooks.values())) for layer in layers]

    def once():
        for h in pre:
            h(model, (x,))
        for layer, hooks in inner:
            for h in hooks:
                h(layer, (x,), x)
        out = x
        for h in post:
            r = h(model, (x,), out)
            out = out if r is None else r

    once()
    return min(timeit.repeat(once, number=20000, repeat=5)) / 20000 * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--only", choices=["timm", "paddleclas"])
    ap.add_argument("--processes", type=int, default=1, help="repeat the measurement in K fresh processes")
    ap.add_argument("--json", help=argparse.SUPPRESS)   # a child of --processes writes its results here
    ap.add_argument("--swap", action="store_true", help=argparse.SUPPRESS)   # make the other model first
    add_timing_args(ap)
    args = ap.parse_args(argv)
    if args.processes < 1 or args.reps < 1:
        ap.error("--processes and --reps must be >= 1")
    clock = use_clock(args.clock, args.steady_malloc)
    if args.processes > 1:
        return _across_processes(args, clock)
    results: dict = {}
    peers.install()
    print(f"batch {args.batch}, 224x224, eval, {clock}, medians of {args.reps} interleaved rounds; ratio = median "
          "of per-round ratios (+- half its IQR); A/A = the peer against itself in the same rounds (noise floor)")
    print("95 % CI = distribution-free confidence interval of the median ratio: the target <= 1.00 is met when "
          "the ratio is <= 1.00, and beyond the noise when the whole interval is")
    print(f"{'comparison':<58} {'peer ms':>9} {'theseus ms':>11} {'A/A':>6} {'ratio':>14} {'95 % CI':>15} "
          f"{'32x32 peer ms':>14} {'32x32 theseus ms':>17}")
    if args.only in (None, "paddleclas"):   # paddle before torch: nothing else loaded yet
        r = results["paddleclas"] = bench_paddleclas(args.batch, args.reps, peer_first=not args.swap)
        print(f"{'update_res vs PaddleClas update_res (PaddleClas MobileNetV1)':<58} {r['peer_ms']:>9.1f} "
              f"{r['ours_ms']:>11.1f} {r['floor']:>6.3f} {r['ratio']:>7.3f} +-{r['noise']:.3f} {_ci(r['ci']):>15} "
              f"{r['fixed_peer_ms']:>14.2f} {r['fixed_ours_ms']:>17.2f}", flush=True)
        print(f"  hook chain per forward (the hooks called directly): PaddleClas {r['chain']['peer']:.1f} us, "
              f"theseus {r['chain']['ours']:.1f} us", flush=True)
    if args.only in (None, "timm"):
        r = results["timm"] = bench_timm(args.batch, args.reps, peer_first=not args.swap)
        print(f"{'features vs timm features_only (mobilenetv1_100)':<58} {r['peer_ms']:>9.1f} "
              f"{r['ours_ms']:>11.1f} {r['floor']:>6.3f} {r['ratio']:>7.3f} +-{r['noise']:.3f} {_ci(r['ci']):>15} "
              f"{r['fixed_peer_ms']:>14.2f} {r['fixed_ours_ms']:>17.2f}", flush=True)
        print(f"  bare hooks + early exit, no theseus code (same rounds) / timm features_only: {r['raw_hooks']:.3f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    return 0


LABELS = {"paddleclas": "update_res / PaddleClas update_res", "timm": "features / timm features_only"}


def _across_processes(args, clock: str) -> int:
    """Run this script ``args.processes`` times in fresh processes; print each run's ratios
    and, per comparison, the median over processes."""
    child = [sys.executable, os.path.abspath(__file__), "--reps", str(args.reps), "--batch", str(args.batch),
             "--clock", args.clock, "-q"] + (["--only", args.only] if args.only else [])
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = os.path.join(tmp, f"{i}.json")
            done = subprocess.run(child + ["--json", out] + (["--swap"] if i % 2 else []), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if done.returncode != 0:
                print(done.stdout, end="")
                raise SystemExit(f"peers.py: process {i + 1} failed (exit {done.returncode})")
            with open(out) as f:
                runs.append(json.load(f))
            line = "; ".join(f"{LABELS[k]} {r['ratio']:.3f} {_ci(r['ci'])} (A/A {r['floor']:.3f})"
                             for k, r in runs[-1].items())
            first = "theseus's model made first" if i % 2 else "peer's model made first"
            print(f"process {i + 1}/{args.processes} ({first}): {line}", flush=True)
    print(f"batch {args.batch}, 224x224, eval, {clock}; {args.reps} interleaved rounds per process, "
          f"{args.processes} processes")
    print(f"{'comparison':<40} {'median ratio':>13} {'min':>7} {'max':>7} {'median A/A':>11}")
    for key in runs[0]:
        ratios = [r[key]["ratio"] for r in runs]
        floors = [r[key]["floor"] for r in runs]
        print(f"{LABELS[key]:<40} {statistics.median(ratios):>13.3f} {min(ratios):>7.3f} {max(ratios):>7.3f} "
              f"{statistics.median(floors):>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
