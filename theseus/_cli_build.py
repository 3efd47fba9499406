"""``theseus build CONFIG``: build a model from a .yaml/.json config on one backend.

    theseus build cfg.yaml --backend paddle --tree --input-shape 1,3,224,224

Importing this module imports no framework; ``build`` imports the chosen backend's.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ._tree import _fmt_shape

__all__ = ["register"]


def cmd_build(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    import theseus

    cfg = theseus.load_config(args.config)
    if args.input_shape is not None and "input_shape" not in cfg:
        cfg["input_shape"] = list(args.input_shape)  # the stage probe uses the same shape
    if args.checkpoint is not None or args.mode is not None:
        model, report = theseus.init_model(cfg, args.checkpoint, mode=args.mode or "eval", backend=args.backend)
    else:
        model, report = theseus.build(cfg, backend=args.backend), None
        theseus.backend_of(model).set_training(model, False)
    backend = theseus.backend_of(model)
    weights = theseus.state(model)
    count = sum(int(np.prod(v.shape)) for v in weights.values())
    parts = [n for n, _ in backend.children(model)]
    print(f"built {backend.type_name(model)} on {backend.name}: {' -> '.join(parts)}; "
          f"{len(weights)} tensors, {count:,} values", file=out)
    if report is not None:
        print(f"checkpoint: {report}", file=out)
        for key, why in report.reasons.items():
            print(f"  {key}: {why}", file=out)
    if args.tree:
        print(theseus.tree(model, input_shape=args.input_shape), file=out)
    elif args.input_shape is not None:
        x = backend.from_numpy(np.zeros(tuple(args.input_shape), dtype=np.float32))
        print(f"output for input {tuple(args.input_shape)}: {_fmt_shape(backend, backend.infer(model, x))}", file=out)
    if args.save is not None:
        theseus.save_state(args.save, weights)
        print(f"wrote {len(weights)} arrays to {args.save}", file=out)
    return 0


def register(sub: Any) -> None:
    """Add the ``build`` subcommand to the ``theseus`` parser's subparsers."""
    from ._cli import _parse_shape

    s = sub.add_parser("build", help="build a model from a .yaml/.json config (backbone, neck, head)")
    s.add_argument("config", metavar="CONFIG", help="a .yaml, .yml or .json model config")
    s.add_argument("--backend", metavar="NAME", help="torch, paddle, mindspore, ... (default: the config's backend)")
    s.add_argument("--tree", action="store_true", help="print the layer tree (with output shapes given --input-shape)")
    s.add_argument("--input-shape", type=_parse_shape, default=None, metavar="N,C,H,W",
                   help="run one forward on zeros of this shape (also the backbone's stage probe)")
    s.add_argument("--checkpoint", metavar="FILE", help="load what fits from these weights (theseus.init_model)")
    s.add_argument("--mode", choices=("eval", "train"), help="init_model mode: train loads backbone keys only")
    s.add_argument("--save", metavar="FILE.npz", help="write the built model's weights (neutral .npz)")
    s.set_defaults(func=cmd_build)
