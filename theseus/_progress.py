"""Progress of long commands (``theseus conformance``, benchmarks, the walkthrough): one
short line per step on stderr, ``[3/12] resnet50 ...``; stdout is left to the results.

Shown when stderr is a terminal, never under ``quiet``; ``force=True`` shows it anyway
(tests, logs that want it).
"""

from __future__ import annotations

import sys
from typing import Optional, TextIO

__all__ = ["Progress", "add_quiet_arg"]


class Progress:
    """Counts steps and prints ``[i/total] label ...`` for each.

    Args:
        total: the number of steps (``step`` beyond it still counts, as ``[13/12]``).
        quiet: print nothing.
        stream: where to print (default: ``sys.stderr`` at each step).
        force: print even when the stream is not a terminal.
        indent: spaces before each line (steps inside another command's step).

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> p = Progress(2, stream=buf, force=True)
        >>> p.step("torch"); p.step("paddle")
        >>> buf.getvalue()
        '[1/2] torch ...\\n[2/2] paddle ...\\n'
    """

    def __init__(self, total: int, quiet: bool = False, stream: Optional[TextIO] = None, force: bool = False,
                 indent: int = 0) -> None:
        self.total = int(total)
        self.done = 0
        self.quiet = quiet
        self.force = force
        self._stream = stream
        self.indent = " " * indent

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        if self.quiet:
            return False
        if self.force:
            return True
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError):  # closed or file-like without isatty
            return False

    def step(self, label: str) -> None:
        """Count one step and, when enabled, print its line (flushed)."""
        self.done += 1
        if self.enabled:
            print(f"{self.indent}[{self.done}/{self.total}] {' '.join(str(label).split())} ...", file=self.stream, flush=True)


def add_quiet_arg(ap) -> None:
    """``-q/--quiet`` (no progress lines) on a script's argument parser."""
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
