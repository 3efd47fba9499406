"""``python -m theseus._compare_worker MODEL X.npy OUT [--weights FILE] [--no-float64]``:
record a source model (``module:callable``) in its own process for ``compare``."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m theseus._compare_worker")
    ap.add_argument("model")
    ap.add_argument("x")
    ap.add_argument("out")
    ap.add_argument("--weights")
    ap.add_argument("--no-float64", action="store_true")
    args = ap.parse_args(argv)
    from ._cli import CLIError, load_model
    from ._compare import record
    from ._files import read_state
    from ._state import load_state

    try:
        model = load_model(args.model)
        if args.weights:
            load_state(model, read_state(args.weights))
        rec = record(model, np.load(args.x), float64=not args.no_float64)
        rec.save(args.out)
    except (CLIError, Exception) as err:  # reported to the parent as one line
        print(f"{type(err).__name__}: {err}".replace("\n", " "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
