"""CLI: ``theseus match`` and ``theseus port --map`` (ports between implementations).

    theseus match SRC DST --input-shape 1,3,224,224 -o map.json
    theseus port CKPT OUT --map map.json --to MODEL [--prefix P] [--from MODEL --input-shape S]

Importing this module imports no framework.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

__all__ = ["register"]


def _progress(out: TextIO, t0: float, text: str) -> None:
    print(f"[{time.perf_counter() - t0:6.1f}s] {text}", file=out, flush=True)


def _input(shape: tuple, seed: int = 0) -> Any:
    import numpy as np

    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


def cmd_match(args: argparse.Namespace, out: TextIO) -> int:
    import theseus
    from theseus._cli import load_model

    t0 = time.perf_counter()
    src = load_model(args.src)
    dst = load_model(args.dst)
    _progress(out, t0, f"built {args.src} and {args.dst}; probing both on {args.input_shape}")
    pm = theseus.match(src, dst, _input(args.input_shape))
    print(pm, file=out)
    kinds = ", ".join(f"{a}->{b} x{n}" for (a, b), n in sorted(pm.transforms().items()))
    _progress(out, t0, f"matched {len(pm)} tensors in {len(pm.layers)} layers, 0 ambiguous; transforms: {kinds}")
    if args.output:
        pm.save(args.output)
        _progress(out, t0, f"wrote {args.output}")
    return 0


def cmd_port_map(args: argparse.Namespace, out: TextIO) -> int:
    import os

    import theseus
    from theseus._cli import CLIError, load_model
    from theseus._formats import format_of

    t0 = time.perf_counter()
    pm = theseus.PortMap.load(args.map)
    if not os.path.isfile(args.src):
        raise CLIError(f"CKPT {args.src!r} is not a file")
    weights = theseus.read_state(args.src)
    _progress(out, t0, f"read {len(weights)} arrays from {args.src}")
    arrays = pm.apply(weights, prefix=args.prefix)
    unused = getattr(pm, "unused", [])
    _progress(out, t0, f"map {args.map}: {len(arrays)} tensors matched"
              + (f", {len(unused)} checkpoint arrays not in the map: {', '.join(unused[:3])}" if unused else ""))
    dst = load_model(args.to_model)
    src = load_model(args.from_model) if args.from_model else None
    if src is not None:
        theseus.load_state(src, pm.source_state(weights, prefix=args.prefix))
        if args.input_shape is None:
            raise CLIError("--from needs --input-shape to verify the port")
        report = theseus.port(src, dst, map=pm, example_input=_input(args.input_shape), fix_padding=args.fix_padding)
    else:
        load = theseus.load_state(dst, arrays)
        report = theseus.PortReport(load=load, matched=len(pm), transforms=pm.transforms())
    _progress(out, t0, f"loaded into {args.to_model}")
    if format_of(args.dst) is not None:
        theseus.save_state(args.dst, dst)
    else:
        theseus.save_state(args.dst, theseus.state(dst))
    _progress(out, t0, f"wrote {args.dst}")
    print(report.summary(), file=out)
    if report.verified and not report.ok:
        print(report.message, file=out)
        return 1
    return 0


def register(sub: Any) -> None:
    """Add ``match`` and the ``--map`` form of ``port`` to the ``theseus`` parser."""
    from theseus._cli import _parse_shape

    s = sub.add_parser("match", help="pair the layers of two implementations; print and save the port map")
    s.add_argument("src", metavar="SRC", help="module:callable building the source model")
    s.add_argument("dst", metavar="DST", help="module:callable building the destination model")
    s.add_argument("--input-shape", type=_parse_shape, required=True, metavar="N,C,H,W",
                   help="shape of the probe input (seeded normal values)")
    s.add_argument("-o", "--output", metavar="MAP.json", help="write the map as JSON")
    s.set_defaults(func=cmd_match)

    port = sub.choices.get("port")
    if port is None:  # pragma: no cover - the core parser always has it
        return
    plain = port.get_default("func")
    port.add_argument("--map", metavar="MAP.json", help="a map from 'theseus match': SRC is then a checkpoint "
                      "file of the map's source implementation (.pdparams, .pt, .pth, .bin, .safetensors, "
                      ".ckpt, .npz), --prefix its key prefix (backbone., module.), and DST is written in the "
                      "format its extension names")
    port.add_argument("--input-shape", type=_parse_shape, default=None, metavar="N,C,H,W",
                      help="with --map and --from: verify the port on a seeded input of this shape")
    port.add_argument("--fix-padding", action="store_true",
                      help="with --map and --from: give the destination's pools the source's padding convention")

    def dispatch(args: argparse.Namespace, out: TextIO) -> int:
        return cmd_port_map(args, out) if args.map else plain(args, out)

    port.set_defaults(func=dispatch)
