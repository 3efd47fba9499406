"""What theseus changed on each model, so that every change can be undone by ``reset``.

Records are kept outside the model (keyed by identity, dropped when the model is collected)
so that no framework's attribute machinery is involved. A record never holds the model
alive: parents are weak references, and the active capture is held by the model's own
hooks (the record only points at it weakly), so ``del model`` frees everything.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Optional

from ._backend import Backend, HookHandle

__all__ = ["Record", "Replacement", "record_of", "peek_record", "replace_all"]


def _weak(obj: Any) -> Callable[[], Any]:
    """A weak reference to ``obj``, or a strong one for objects that do not support them."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class Replacement:
    """One replaced child: ``parent``'s child ``name`` was ``old`` and is now ``new``.

    ``parent`` is held weakly (it may be the model itself); ``old`` is held strongly so that
    ``reset`` can put it back.
    """

    __slots__ = ("_parent", "name", "old", "new")

    def __init__(self, parent: Any, name: str, old: Any, new: Any) -> None:
        self._parent = _weak(parent)
        self.name = name
        self.old = old
        self.new = new

    @property
    def parent(self) -> Any:
        """The parent layer, or None once it has been collected."""
        return self._parent()


class Record:
    """Replacements, the active capture (weakly: the model's hooks own it) and hook handles
    by purpose."""

    __slots__ = ("replacements", "_capture", "handles")

    def __init__(self) -> None:
        self.replacements: list[Replacement] = []
        self._capture: Optional[Callable[[], Any]] = None
        self.handles: dict[str, list[HookHandle]] = {}

    @property
    def capture(self) -> Optional[Any]:
        """The active ``update_res`` capture, or None."""
        return None if self._capture is None else self._capture()

    @capture.setter
    def capture(self, value: Optional[Any]) -> None:
        self._capture = None if value is None else weakref.ref(value)

    def add_handles(self, purpose: str, handles: list[HookHandle]) -> None:
        self.handles.setdefault(purpose, []).extend(handles)

    def remove_handles(self, purpose: str) -> None:
        for h in self.handles.pop(purpose, []):
            h.remove()


_records: dict[int, Record] = {}


def peek_record(model: Any) -> Optional[Record]:
    return _records.get(id(model))


def record_of(model: Any) -> Record:
    rec = _records.get(id(model))
    if rec is None:
        rec = _records[id(model)] = Record()
        try:
            weakref.finalize(model, _records.pop, id(model), None)
        except TypeError:  # not weak-referenceable: keep the record for the process lifetime
            pass
    return rec


def replace_all(backend: Backend, model: Any, items: list[tuple[Any, str, Any, Any]]) -> None:
    """Apply ``(parent, name, old, new)`` replacements atomically and record them.

    If the framework fails half-way, the ones already applied are put back and the error
    propagates: the model is as before.
    """
    done: list[Replacement] = []
    try:
        for parent, name, old, new in items:
            backend.replace_child(parent, name, new)
            done.append(Replacement(parent, name, old, new))
    except BaseException:
        for r in reversed(done):
            backend.replace_child(r.parent, r.name, r.old)
        backend.after_surgery(model)
        raise
    if done:
        rec = record_of(model)
        rec.replacements.extend(done)
        if rec.capture is not None:  # captures follow descriptors, not the replaced objects
            rec.capture = rec.capture.rebuilt()
        backend.after_surgery(model)
