"""True captures: a captured value is the layer's output as it was produced, whatever
in-place operation runs on it later (torch ``ReLU(inplace=True)``/``+=``, Paddle ``relu_``).

Costs nothing where no in-place op follows: the first forward copies every capture and
notes each tensor's in-place version counter (``Backend.version``); captures whose counter
moved before the forward ended are copied (``Backend.copy``, gradient flow kept) on every
later forward, the others are returned as they are and only their counters are checked.
Nothing ever runs a forward twice (BatchNorm statistics would move). Framework-free.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._errors import UnsupportedOperation

__all__ = ["TrueValues"]


# Plain loops, no generator expressions or closures: Paddle's SOT (to_static) translates the
# hooks' bytecode and mis-resolves the cell variables of generator expressions.
def _map(fn: Callable[[Any], Any], backend: Any, value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k in value:
            out[k] = _map(fn, backend, value[k])
        return type(value)(out)
    if isinstance(value, (list, tuple)):
        items = []
        for v in value:
            items.append(_map(fn, backend, v))
        if isinstance(value, tuple) and hasattr(value, "_fields"):   # namedtuple
            return type(value)(*items)
        return type(value)(items)
    return fn(value) if backend.shape(value) is not None else value


def _leaves(backend: Any, value: Any, out: list) -> list:
    if isinstance(value, dict):
        for k in value:
            _leaves(backend, value[k], out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _leaves(backend, v, out)
    elif backend.shape(value) is not None:
        out.append(value)
    return out


class TrueValues:
    """Per capture set: which keys need a copy, learned on the first forward.

    Use: ``record = {}`` per forward; ``value = tv.take(key, output, record)`` in each hook;
    ``tv.check(record)`` once the forward has ended.
    """

    def __init__(self, backend: Any, what: str) -> None:
        self.backend = backend
        self.version = backend.version
        self.what = what
        self.copy_keys: set = set()
        self.learned = False
        self._lock = threading.Lock()
        self._tensor_types: set = set()   # types backend.shape() accepted: later a set lookup

    def _versions(self, tensors: list) -> list:
        versions = []
        for t in tensors:
            versions.append(self.version(t))
        return versions

    def take(self, key: str, output: Any, record: dict) -> Any:
        """The value to hand back for ``output`` (a copy where an in-place op may follow).

        Tensors without a version counter (a framework that keeps none, or a tracing mode)
        go through ``Backend.copy`` on every forward: the backend decides what that costs.
        Runs inside every capture hook, so the one-tensor case is kept short."""
        backend = self.backend
        if type(output) in self._tensor_types:   # the common case, one tensor: no containers walked
            version = self.version(output)
            if version is None:
                return backend.copy(output)
            if self.learned and key not in self.copy_keys:
                record[key] = (output, version)
                return output
            if not self.learned:
                record[key] = (output, version)
            return backend.copy(output)
        if isinstance(output, (dict, list, tuple)):
            tensors = _leaves(backend, output, [])
        elif backend.shape(output) is None:
            return output
        else:
            self._tensor_types.add(type(output))
            return self.take(key, output, record)
        versions = self._versions(tensors)
        known = False
        for v in versions:
            known = known or v is not None
        if not known:
            return _map(backend.copy, backend, output)
        if self.learned and key not in self.copy_keys:
            record[key] = (tensors, versions)
            return output
        if not self.learned:
            record[key] = (tensors, versions)
        return _map(backend.copy, backend, output)

    def check(self, record: dict) -> None:
        """After the forward: learn (first forward) or verify that uncopied captures are intact."""
        changed = []
        version = self.version
        for k in record:
            held, noted = record[k]
            if isinstance(held, list):
                now = self._versions(held)
            else:
                now = version(held)
            if now != noted:
                changed.append(k)
        if self.learned and not changed:
            return
        with self._lock:
            first = not self.learned
            self.learned = True
            fresh = [k for k in changed if k not in self.copy_keys]
            self.copy_keys.update(changed)
        if fresh and not first:
            raise UnsupportedOperation(
                f"{self.what}: the output(s) of {', '.join(fresh)} were modified in place later in this forward, "
                "which earlier forwards did not do, so the values captured in this forward are not the layers' "
                "outputs; theseus copies them from the next forward on: run the forward again", "hooks")
