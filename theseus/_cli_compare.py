"""``theseus compare``, ``theseus certify`` and ``theseus verify``.

    theseus compare SRC DST [--map MAP] [--input-shape S] [--plot FILE]
    theseus certify SRC DST [--map MAP] -o port.tcert [--input-shape S]
    theseus verify port.tcert --model MODULE:ATTR [--weights FILE]

SRC and DST are ``module:callable`` building each model (``--src-weights``/``--dst-weights``
load neutral ``.npz`` weights). The source is recorded in a subprocess, so any two frameworks
can be compared (Paddle and MindSpore included); ``verify`` imports only the target's module.
Exit status: 0 agree / certified / verified, 1 a layer is flagged, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

__all__ = ["register"]


def _cli():
    from . import _cli

    return _cli


def _load_map(path: str | None) -> Any:
    if path is None:
        return None
    CLIError = _cli().CLIError
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as err:
        raise CLIError(f"cannot read the map {path!r}: {err}") from None
    if isinstance(data, dict) and "format" in data:
        from ._portmap import PortMap

        return PortMap.load(path)
    if isinstance(data, dict) and data and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return data
    raise CLIError(f"{path!r} is not a layer map: expected JSON {{source descriptor: destination descriptor}} "
                   "or a theseus PortMap file")


def _build(spec: str, weights: str | None) -> Any:
    from ._files import read_state
    from ._state import load_state

    model = _cli().load_model(spec)
    if weights:
        if not os.path.isfile(weights):
            raise _cli().CLIError(f"weights file {weights!r} does not exist")
        load_state(model, read_state(weights))
    return model


def _source_recording(args: argparse.Namespace, x: Any) -> Any:
    from ._compare import _record_in_subprocess

    return _record_in_subprocess(args.src, x, args.src_weights, True)


def _output_path(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _cli().CLIError(f"cannot write {path!r}: folder {folder!r} does not exist")
    return path


def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    from ._compare import check_map, judge, make_input

    if args.plot:
        _output_path(args.plot)
        if not args.plot.endswith((".svg", ".png")):
            raise _cli().CLIError(f"--plot must end in .svg or .png, got {args.plot!r}")
    pairs = _load_map(args.map)
    dst = _build(args.dst, args.dst_weights)
    check_map(dst, pairs)                      # before the (slow) source recording
    x = make_input(args.input_shape, args.seed, args.scale)
    rec = _source_recording(args, x)
    report = judge(dst, rec, pairs)
    print(report.summary(), file=out)
    print(report.table(args.rows), file=out)
    if report.unmapped:
        print(report.unmapped_line(), file=out)
    for n in report.notes:
        print(f"note: {n}", file=out)
    if args.plot:
        report.plot(args.plot)
        print(f"plot: {args.plot}", file=out)
    return 0 if report.ok else 1


def cmd_certify(args: argparse.Namespace, out: TextIO) -> int:
    from ._certificate import PortMismatchError, certify
    from ._compare import check_map, make_input

    _output_path(args.output)
    pairs = _load_map(args.map)
    dst = _build(args.dst, args.dst_weights)
    check_map(dst, pairs)
    x = make_input(args.input_shape, args.seed, args.scale)
    rec = _source_recording(args, x)
    try:
        report = certify(None, dst, args.output, map=pairs, input_shape=args.input_shape, seed=args.seed,
                         scale=args.scale, recording=rec)
    except PortMismatchError as err:
        print(err.report.summary(), file=out)
        print(err.report.table(args.rows), file=out)
        print("not certified", file=out)
        return 1
    print(report.summary(), file=out)
    print(f"certificate: {args.output} ({os.path.getsize(args.output)} bytes)", file=out)
    return 0


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from ._certificate import verify

    if not os.path.isfile(args.certificate):
        raise _cli().CLIError(f"certificate {args.certificate!r} does not exist")
    model = _build(args.model, args.weights)
    report = verify(args.certificate, model)
    print(report.summary(), file=out)
    if not report.ok:
        print(report.table(args.rows), file=out)
    for n in report.notes:
        print(f"note: {n}", file=out)
    return 0 if report.ok else 1


def _common(s: argparse.ArgumentParser) -> None:
    shape = _cli()._parse_shape
    s.add_argument("src", metavar="SRC", help="module:callable building the source model (run in a subprocess)")
    s.add_argument("dst", metavar="DST", help="module:callable building the destination model")
    s.add_argument("--map", metavar="MAP.json", help="layer map: {source descriptor: destination descriptor} "
                   "or a theseus PortMap file (default: equal descriptors)")
    s.add_argument("--src-weights", metavar="FILE", help="neutral .npz loaded into the source")
    s.add_argument("--dst-weights", metavar="FILE", help="neutral .npz loaded into the destination")
    s.add_argument("--input-shape", type=shape, default=(1, 3, 224, 224), metavar="N,C,H,W")
    s.add_argument("--seed", type=int, default=0, help="input generator seed (default 0)")
    s.add_argument("--scale", type=float, default=1.0, help="input standard deviation (default 1)")
    s.add_argument("--rows", type=int, default=20, help="table rows, worst first (default 20)")


def register(sub: Any) -> None:
    """Add ``compare``, ``certify`` and ``verify`` to the ``theseus`` command."""
    s = sub.add_parser("compare", help="judge a port layer by layer; name the first layer that differs")
    _common(s)
    s.add_argument("--plot", metavar="FILE", help="draw relative error per layer (.svg, or .png with matplotlib)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("certify", help="compare a port and write a framework-neutral certificate")
    _common(s)
    s.add_argument("-o", "--output", required=True, metavar="FILE.tcert", help="the certificate to write")
    s.set_defaults(func=cmd_certify)

    s = sub.add_parser("verify", help="re-check a port certificate on the target model only")
    s.add_argument("certificate", metavar="CERT", help="a .tcert written by theseus certify")
    s.add_argument("--model", required=True, metavar="MODULE:ATTR", help="module:callable building the target")
    s.add_argument("--weights", metavar="FILE", help="neutral .npz loaded into the target")
    s.add_argument("--rows", type=int, default=20, help="table rows on failure (default 20)")
    s.set_defaults(func=cmd_verify)
