"""The ``theseus`` command line.

    theseus backends                       what is installed (no framework is imported)
    theseus tree MODEL [--input-shape S]   the layer tree of ``module:callable``
    theseus conformance [--backend NAME]   the conformance suite (theseus_conformance.runner), one subprocess per backend,
                                           as one table: scenario x backend
    theseus port SRC DST --to MODEL        move neutral weights (.npz) into a model and write
                                           that model's weights back out

Importing this module imports no framework; ``tree`` and ``port`` import what the given
model's module imports, ``conformance`` runs each backend in its own ``python -m pytest``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
from importlib import metadata
from typing import Any, NoReturn, Optional, Sequence, TextIO

from ._errors import DescriptorSyntaxError, TheseusError, clip, clip_repr

__all__ = ["main"]


class CLIError(Exception):
    """A usage problem reported as one line on stderr with exit status 2."""


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a rule under the header."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def _entry_points() -> dict[str, Any]:
    from ._backend import _discover

    return dict(_discover())


def _framework_version(module: Optional[str]) -> str:
    """The installed version of the distribution providing ``module``, without importing it."""
    if module is None:
        return "-"
    dists: list[str] = []
    try:
        dists = list(metadata.packages_distributions().get(module, []))
    except Exception:  # pragma: no cover - python < 3.10 or odd metadata
        pass
    for dist in dists + [module]:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _one_line(err: BaseException) -> str:
    return clip(" ".join(str(err).split()), 300)


def _error_line(err: BaseException) -> str:
    """An error as the one line the CLI prints (multi-line theseus messages joined)."""
    if isinstance(err, DescriptorSyntaxError):
        text = f"{err.problem} at position {err.position} in descriptor {clip_repr(err.text)}"
        return text + (f"; {err.hint}" if err.hint else "")
    return clip("; ".join(line.strip() for line in str(err).splitlines() if line.strip()), 1000)


def _import_model_module(module_name: str, spec: str) -> Any:
    """Import ``pkg.mod`` (the current folder first on the path, as ``python -m`` does) or
    the file ``path/to/file.py`` (its folder first on the path, for its own imports)."""
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise CLIError(f"no file {module_name!r} (MODEL {spec!r})")
        folder, name = os.path.split(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        loader_spec = importlib.util.spec_from_file_location(name[:-3], path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[loader_spec.name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:  # the user's file failed while importing: one line, exit 2
            del sys.modules[loader_spec.name]
            raise CLIError(f"cannot import {module_name!r} of MODEL {clip_repr(spec)}: {type(err).__name__}: "
                           f"{_one_line(err)}") from None
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise CLIError(f"cannot import module {module_name!r} of MODEL {clip_repr(spec)}: {_one_line(err)}") \
            from None
    except Exception as err:  # the user's module failed while importing
        raise CLIError(f"importing module {module_name!r} of MODEL {clip_repr(spec)} failed: "
                       f"{type(err).__name__}: {_one_line(err)}") from None


def load_model(spec: str) -> Any:
    """``module:callable`` or ``path/to/file.py:callable`` -> ``callable()`` (``callable`` may
    be dotted: ``pkg.mod:Cls.make``). A module is looked up in the current folder first."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr \
            or not (module_name.endswith(".py") or re.fullmatch(r"[\w.]+", module_name)) \
            or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attr):
        raise CLIError(f"MODEL must be 'module:callable' or 'path/to/file.py:callable' "
                       f"(e.g. theseus_torch:MobileNetV1), got {clip_repr(spec)}")
    obj: Any = _import_model_module(module_name, spec)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr!r} (MODEL {spec!r})") from None
    if not callable(obj):
        raise CLIError(f"{spec!r} is not callable (MODEL must name a class or function building the model)")
    try:
        return obj()
    except TheseusError:
        raise
    except Exception as err:  # the user's constructor failed: say so in one line
        raise CLIError(f"building the model {spec}() failed: {type(err).__name__}: {_one_line(err)}") from None


def _parse_shape(text: str) -> tuple:
    """``"1,3,224,224"`` (or ``1x3x224x224``) -> ``(1, 3, 224, 224)``; every item must be a
    positive integer (``1,,3`` is refused, not read as ``(1, 3)``)."""
    from ._validate import check_input_shape

    items = text.replace("x", ",").split(",")
    if len(text) > 400 or not all(re.fullmatch(r"\s*[0-9]{1,12}\s*", t) for t in items):
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas (1,3,224,224), got "
                                         f"{clip_repr(text)}")
    try:
        return check_input_shape([int(t) for t in items], "--input-shape")
    except TheseusError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line on stderr (exit 2), like every other CLI error."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {clip(' '.join(message.split()), 400)} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse, but an unknown option is reported by the subcommand it was given to."""
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            sub = next((a.choices.get(getattr(ns, "command", None)) for a in self._actions
                        if isinstance(a, argparse._SubParsersAction)), None)
            (sub or self).error(f"unrecognized arguments: {' '.join(extra)}")
        return ns


def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    eps = _entry_points()
    rows = []
    for name in sorted(eps):
        try:
            cls = eps[name].load()
        except Exception as err:  # a broken third-party adapter must not hide the others
            rows.append([name, "?", "?", f"cannot load {eps[name].value}: {type(err).__name__}: {err}", "-"])
            continue
        fw = getattr(cls, "framework", None)
        caps = ",".join(sorted(getattr(cls, "capabilities", ()) or ())) or "-"
        rows.append([name, fw or "-", _framework_version(fw), caps,
                     getattr(cls, "conformance_module", None) or "-"])
    if not rows:
        from ._backend import FIRST_PARTY_HINT

        print(f"no theseus backends installed; {FIRST_PARTY_HINT}", file=out)
        return 0
    print(_table(["backend", "framework", "version", "capabilities", "conformance module"], rows), file=out)
    return 0


# ----------------------------------------------------------------------------------------
# theseus tree
# ----------------------------------------------------------------------------------------

def cmd_tree(args: argparse.Namespace, out: TextIO) -> int:
    import theseus

    model = load_model(args.model)
    backend = theseus.backend_of(model)
    if args.input_shape is not None and "train_eval" in backend.capabilities:
        backend.set_training(model, False)  # statistics, not batch ones
    print(theseus.tree(model, input_shape=args.input_shape), file=out)
    return 0


# ----------------------------------------------------------------------------------------
# theseus port
# ----------------------------------------------------------------------------------------

def cmd_port(args: argparse.Namespace, out: TextIO) -> int:
    import theseus

    dst = args.dst if args.dst.endswith(".npz") else args.dst + ".npz"  # what save_state writes
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise CLIError(f"DST {args.dst!r}: the folder {folder!r} does not exist")
    if os.path.isdir(dst):
        raise CLIError(f"DST {args.dst!r} is a folder; name the .npz file to write")
    if args.src == "-":
        if not args.from_model:
            raise CLIError("SRC '-' means the weights of the --from model; pass --from module:callable")
        src_model = load_model(args.from_model)
        weights = theseus.state(src_model)
        where = f"{args.from_model} (as constructed)"
    else:
        if not os.path.isfile(args.src):
            raise CLIError(f"SRC {args.src!r} is not a file (a .npz written by theseus.save_state, or '-')")
        try:
            weights = theseus.read_state(args.src)
        except (OSError, ValueError) as err:
            raise CLIError(f"cannot read {args.src!r} as neutral weights (.npz without pickles): {_one_line(err)}") \
                from None
        where = args.src
    dst_model = load_model(args.to_model)
    dst_backend = theseus.backend_of(dst_model)
    report = theseus.load_state(dst_model, weights, strict=not args.no_strict, prefix=args.prefix,
                                skip_mismatched=args.skip_mismatched)
    result = theseus.state(dst_model)
    theseus.save_state(dst, result)
    print(f"read {len(weights)} arrays from {where}", file=out)
    print(f"loaded into {args.to_model} (backend {dst_backend.name}): {report}", file=out)
    for name in ("missing", "unexpected", "skipped"):
        items = getattr(report, name)
        if items and args.no_strict:
            print(f"  {name} ({len(items)}): {', '.join(items)}", file=out)
    for key, (a, b) in report.mismatched.items():
        print(f"  shape-mismatched: {key} model {a} vs state {b}", file=out)
    print(f"wrote {len(result)} arrays to {dst}", file=out)
    return 0


# ----------------------------------------------------------------------------------------
# theseus conformance
# ----------------------------------------------------------------------------------------

def cmd_conformance(args: argparse.Namespace, out: TextIO) -> int:
    eps = _entry_points()
    targets: list[tuple[str, str]] = []  # (backend name, module or file)
    extra: list[tuple[str, str]] = []
    for item in args.module or []:
        name, sep, mod = item.partition("=")
        if not sep or not name or not mod:
            raise CLIError(f"--module expects NAME=MODULE_OR_FILE, got {item!r}")
        extra.append((name, mod))
    wanted = args.backend or ([] if extra else sorted(eps))
    for name in wanted:
        if name not in eps:
            raise CLIError(f"no theseus backend named {name!r} is installed; installed: {', '.join(sorted(eps)) or 'none'}")
        try:
            cls = eps[name].load()
        except Exception as err:
            raise CLIError(f"cannot load backend {name!r} ({eps[name].value}): {type(err).__name__}: {err}") from None
        mod = getattr(cls, "conformance_module", None)
        if not mod:
            if args.backend:
                raise CLIError(f"backend {name!r} declares no conformance_module; run its Test*Conformance module "
                               f"with --module {name}=path/to/module.py")
            print(f"theseus: {name}: no conformance_module declared, not run", file=sys.stderr)
            continue
        targets.append((name, mod))
    targets += extra
    if not targets:
        raise CLIError("nothing to run: no installed backend declares a conformance_module")

    try:
        from theseus_conformance.runner import UsageError, run_conformance
    except ImportError:
        raise CLIError("the conformance suite is not installed: pip install theseus-surgery-conformance") from None
    try:
        return run_conformance(targets, keyword=args.keyword, pytest_args=args.pytest_args or [],
                               junit_dir=args.junit_dir, out=out, quiet=args.quiet)
    except UsageError as err:
        raise CLIError(str(err)) from None


# ----------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="theseus", description="Framework-neutral model surgery: command line.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("backends", help="list installed backends (imports no framework)")
    s.set_defaults(func=cmd_backends)

    s = sub.add_parser("tree", help="print the layer tree of a model")
    s.add_argument("model", metavar="MODEL", help="module:callable building the model, e.g. theseus_torch:MobileNetV1")
    s.add_argument("--input-shape", type=_parse_shape, default=None, metavar="N,C,H,W",
                   help="run one forward on zeros of this shape and show output shapes")
    s.set_defaults(func=cmd_tree)

    s = sub.add_parser("conformance", help="run the conformance suite of each backend; print scenario x backend")
    s.add_argument("--backend", action="append", metavar="NAME", help="a backend to run (repeatable; default: all)")
    s.add_argument("--module", action="append", metavar="NAME=MODULE_OR_FILE",
                   help="also run a conformance module or file not declared by an installed backend (repeatable)")
    s.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression selecting scenarios")
    s.add_argument("--junit-dir", metavar="DIR", help="keep each backend's junit xml as DIR/<backend>.xml")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    s.add_argument("--pytest-args", nargs=argparse.REMAINDER, help="everything after this goes to pytest")
    s.set_defaults(func=cmd_conformance)

    s = sub.add_parser("port", help="load neutral weights into a model and write its weights as .npz")
    s.add_argument("src", metavar="SRC", help="a .npz written by theseus.save_state, or '-' for the --from model's weights")
    s.add_argument("dst", metavar="DST", help="the .npz to write (the destination model's weights after loading)")
    s.add_argument("--from", dest="from_model", metavar="MODEL", help="module:callable; the source when SRC is '-'")
    s.add_argument("--to", dest="to_model", metavar="MODEL", required=True, help="module:callable; the destination")
    s.add_argument("--no-strict", action="store_true", help="load what fits and report the rest")
    s.add_argument("--prefix", metavar="DESCRIPTOR", help="load only weights under this descriptor (e.g. blocks)")
    s.add_argument("--skip-mismatched", action="store_true", help="skip (report) keys whose shapes differ")
    s.set_defaults(func=cmd_port)
    __import__("theseus._cli_compare", fromlist=["register"]).register(sub)
    importlib.import_module("theseus._cli_build").register(sub)
    importlib.import_module("theseus._cli_port").register(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args, sys.stdout) or 0)
    except (CLIError, TheseusError) as err:
        print(f"theseus {args.command}: error: {_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("theseus: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `theseus tree ... | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
