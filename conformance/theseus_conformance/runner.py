"""The conformance runner behind ``theseus conformance``: each backend's conformance module
in its own ``python -m pytest`` subprocess (frameworks never share a process), progress on
stderr, one scenario x backend table from the JUnit XML files.

Example:
    >>> from theseus_conformance.runner import run_conformance            # doctest: +SKIP
    >>> run_conformance([("torch", "theseus_torch.conformance")])           # doctest: +SKIP
    0
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, TextIO

__all__ = ["Run", "UsageError", "build_table", "exit_status", "parse_junit", "run_conformance"]


class UsageError(Exception):
    """A problem with what was asked (e.g. a module that cannot be found); the CLI prints it
    as one line and exits 2."""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


_OUTCOME_RE = re.compile(r"\s(PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR)\b")
_COLLECTED_RE = re.compile(r"collected (\d+) items?(?: / (\d+) deselected)?")


@dataclass
class Run:
    """One backend's conformance run."""

    backend: str
    module: str
    results: dict = field(default_factory=dict)   # scenario -> cell text
    failed: int = 0
    passed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    returncode: Optional[int] = None
    error: str = ""                                 # why the run itself failed (not a test)
    failures: dict = field(default_factory=dict)    # scenario -> the assertion's message

    @property
    def ok(self) -> bool:
        return not self.error and self.failed == 0


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_junit(path: str, run: Run) -> None:
    """Fill ``run.results`` and the counts from a pytest junit xml file."""
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None or error is not None:
            cell = "FAIL"
            run.failed += 1
            node = failure if failure is not None else error
            run.failures.setdefault(name, (node.get("message") or node.text or "").strip())
        elif skipped is not None:
            reason = skipped.get("message") or skipped.text or ""
            reason = re.sub(r"^(Skipped|XFAIL|xfail):\s*", "", reason.strip())
            kind = "xfail" if skipped.get("type") == "pytest.xfail" else "skip"
            cell = f"{kind}: {_short(reason)}" if reason else kind
            run.skipped += 1
        else:
            cell = "pass"
            run.passed += 1
        if name in run.results:  # same test name in two classes of one module: keep the worst
            if run.results[name] == "FAIL" or cell != "FAIL":
                continue
        run.results[name] = cell


def build_table(runs: Sequence[Run]) -> str:
    """Rows: scenarios in first-seen order; columns: backends; plus totals and wall time."""
    order: list[str] = []
    seen = set()
    for r in runs:
        for name in r.results:
            if name not in seen:
                seen.add(name)
                order.append(name)
    rows = [[name] + [r.results.get(name, "-") for r in runs] for name in order]
    rows.append([""] * (len(runs) + 1))
    rows.append(["passed"] + [str(r.passed) for r in runs])
    rows.append(["failed"] + [str(r.failed) for r in runs])
    rows.append(["skipped"] + [str(r.skipped) for r in runs])
    rows.append(["run"] + [("ERROR (see above)" if r.error else "ok") for r in runs])
    rows.append(["wall time"] + [f"{r.seconds:.1f}s" for r in runs])
    return _table(["scenario"] + [r.backend for r in runs], rows)


def failure_details(runs: Sequence[Run], max_lines: int = 8) -> str:
    """Why each failing scenario failed: the assertion's message (e.g. the judge's numbers)."""
    lines = []
    for r in runs:
        for name, msg in r.failures.items():
            lines.append(f"FAIL {r.backend}: {name}")
            body = [ln for ln in msg.splitlines() if ln.strip()] or ["(no message)"]
            lines += ["    " + _short(ln, 300) for ln in body[:max_lines]]
            if len(body) > max_lines:
                lines.append(f"    ... ({len(body) - max_lines} more lines; rerun with --junit-dir DIR to keep them)")
    return "\n".join(lines)


def exit_status(runs: Sequence[Run]) -> int:
    """0 when every run completed and no test failed, else 1."""
    return 0 if runs and all(r.ok for r in runs) else 1


def _module_file(module: str) -> str:
    """The file of ``module`` found without importing it (its parent packages are imported,
    which for first-party backends imports no framework)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as err:
        raise UsageError(f"cannot find conformance module {module!r}: {err}") from None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise UsageError(f"cannot find conformance module {module!r} (is its package installed?)")
    return spec.origin


def _run_one(run: Run, path: str, junit: str, keyword: Optional[str], extra: Sequence[str],
             progress: Callable[[str, bool], None]) -> None:
    cmd = [sys.executable, "-m", "pytest", path, "-v", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
           f"--junitxml={junit}"]
    if keyword:
        cmd += ["-k", keyword]
    cmd += list(extra)
    start = time.monotonic()
    tail: list[str] = []
    total: Optional[int] = None
    done = 0
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            bufsize=1, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip("\n"))
        del tail[:-40]
        m = _COLLECTED_RE.search(line)
        if m and total is None:
            total = int(m.group(1)) - int(m.group(2) or 0)
        if "::" in line and _OUTCOME_RE.search(line):
            done += 1
            progress(f"  {run.backend}: {done}/{total if total is not None else '?'} tests", False)
    run.returncode = proc.wait()
    run.seconds = time.monotonic() - start
    if os.path.isfile(junit):
        try:
            parse_junit(junit, run)
        except ET.ParseError as err:
            run.error = f"unreadable junit xml {junit}: {err}"
    # 0 all passed, 1 some failed, 5 nothing selected (fine with -k); anything else: the run broke.
    if run.returncode not in (0, 1) and not (run.returncode == 5 and keyword):
        run.error = run.error or f"pytest exited with status {run.returncode}"
    elif run.returncode == 1 and run.failed == 0:
        run.error = "pytest reported failures but the junit xml lists none (collection error?)"
    if run.error:
        run.error += "\n" + "\n".join("    " + t for t in tail[-25:])


def run_conformance(targets: Sequence[tuple[str, str]], keyword: Optional[str] = None,
                    pytest_args: Sequence[str] = (), junit_dir: Optional[str] = None,
                    out: TextIO = sys.stdout, quiet: bool = False) -> int:
    """Run each ``(backend name, module or .py file)`` in its own pytest subprocess, print the
    scenario x backend table on ``out``; 0 when every run completed without a failure.

    Args:
        targets: what to run, in order.
        keyword: a pytest ``-k`` expression.
        pytest_args: more pytest arguments.
        junit_dir: keep the JUnit XML files there (default: a temporary folder).
        out: where the table goes (progress goes to stderr: on a terminal a live count of
            tests, else one line as each backend starts (``[1/3] torch: running ...``) and ends).
        quiet: no progress lines (a run that breaks is still reported on stderr).
    """
    junit_dir_arg = junit_dir
    tty = sys.stderr.isatty()
    lock = threading.Lock()
    width = [0]

    def progress(msg: str, final: bool) -> None:
        if quiet:
            return
        with lock:
            if tty:
                sys.stderr.write("\r" + msg.ljust(width[0]) + ("\n" if final else ""))
                width[0] = 0 if final else len(msg)
                sys.stderr.flush()
            elif final:
                print(msg, file=sys.stderr, flush=True)

    junit_dir = junit_dir_arg
    tmp = None
    if junit_dir:
        os.makedirs(junit_dir, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="theseus-conformance-")
        junit_dir = tmp
    runs: list[Run] = []
    try:
        for i, (name, mod) in enumerate(targets, 1):
            path = mod if mod.endswith(".py") and os.path.isfile(mod) else _module_file(mod)
            run = Run(name, mod)
            runs.append(run)
            progress(f"[{i}/{len(targets)}] {name}: running {mod}" + (f" ({path})" if path != mod else "") + " ...",
                     True)
            _run_one(run, path, os.path.join(junit_dir, f"{name}.xml"), keyword, list(pytest_args),
                     progress)
            status = "ERROR" if run.error else ("ok" if run.ok else "FAILED")
            progress(f"theseus: {name}: {status}: {run.passed} passed, {run.failed} failed, "
                     f"{run.skipped} skipped in {run.seconds:.1f}s", True)
            if run.error:
                print(f"theseus: {name}: the run failed: {run.error}", file=sys.stderr)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(build_table(runs), file=out)
    details = failure_details(runs)
    if details:
        print("\n" + details, file=out)
    return exit_status(runs)
