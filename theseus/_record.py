"""What theseus changed on each model, so that every change can be undone by ``reset``.

Records are kept outside the model (keyed by identity, dropped when the model is collected)
so that no framework's attribute machinery is involved.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Optional

from ._backend import Backend, HookHandle

__all__ = ["Record", "Replacement", "record_of", "peek_record", "replace_all"]


@dataclass
class Replacement:
    parent: Any
    name: str
    old: Any
    new: Any


@dataclass
class Record:
    replacements: list = field(default_factory=list)
    capture: Optional[Any] = None                      # the active update_res capture
    handles: dict = field(default_factory=dict)        # purpose -> [HookHandle]

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
