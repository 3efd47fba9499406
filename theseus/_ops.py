"""The surgery operations, written once for every backend.

Every mutating operation resolves and validates all of its input before it changes
anything, so a failing call leaves the model exactly as it was.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from ._backend import Backend, ContainerKind, backend_of, serial_lock
from ._errors import InvalidArgumentError, InvalidReplacementError, LayerNotFoundError, UnsupportedOperation, clip_repr
from ._grammar import Descriptor, parse
from ._record import peek_record, record_of, replace_all
from ._truth import TrueValues
from ._walk import Node, PatternLike, children_of, lookup, match, walk

__all__ = ["list_descriptors", "resolve", "stop_after", "update_res", "upgrade_sublayer", "reset"]

Patterns = Union[PatternLike, Iterable[PatternLike]]


#: Most patterns one call accepts (bounds the work a hostile argument can cause).
MAX_PATTERNS = 100_000


def _as_list(patterns: Patterns, what: str) -> list:
    """One descriptor/pattern or an iterable of them, as a list; anything else (bytes,
    numbers, arrays, nested lists) is an ``InvalidArgumentError`` naming ``what``."""
    example = "e.g. 'blocks[0]' or ['blocks[0]', 'blocks[2]']"
    if isinstance(patterns, (str, Descriptor)):
        return [patterns]
    if isinstance(patterns, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"{what} takes descriptor strings, got {type(patterns).__name__} "
                                   f"{clip_repr(bytes(patterns))}; decode it first ({example})")
    if hasattr(patterns, "__array__") or hasattr(patterns, "__array_interface__"):
        raise InvalidArgumentError(f"{what} takes descriptor strings, got an array ({type(patterns).__name__}); "
                                   f"pass a list of str, e.g. list(array.tolist()) ({example})")
    if not isinstance(patterns, Iterable) or isinstance(patterns, Mapping):
        raise InvalidArgumentError(f"{what} takes descriptor strings, got {type(patterns).__name__} "
                                   f"{clip_repr(patterns)} ({example})")
    out = []
    for p in patterns:
        if not isinstance(p, (str, Descriptor)):
            raise InvalidArgumentError(f"{what} takes descriptor strings, got {type(p).__name__} {clip_repr(p)} "
                                       f"in the list ({example})")
        out.append(p)
        if len(out) > MAX_PATTERNS:
            raise InvalidArgumentError(f"{what}: more than {MAX_PATTERNS} patterns in one call; use wildcards "
                                       "such as 'blocks[*]' or '**.bn'")
    return out


def _resolve_nodes(backend: Backend, model: Any, patterns: list) -> list[tuple[str, Node]]:
    """``(pattern_text, node)`` for every match of every pattern; duplicates dropped."""
    if len(patterns) == 1:  # one pattern's matches are already distinct
        return [(str(patterns[0]), node) for node in match(backend, model, patterns[0])]
    seen: set[str] = set()
    out = []
    for p in patterns:
        for node in match(backend, model, p):
            if node.text not in seen:
                seen.add(node.text)
                out.append((str(p), node))
    return out


def list_descriptors(model: Any) -> list[str]:
    """Every layer's canonical descriptor, in definition order (shared layers once).

    Example:
        >>> import theseus, theseus_torch                          # doctest: +SKIP
        >>> theseus.list_descriptors(theseus_torch.MobileNetV1())[:3]  # doctest: +SKIP
        ['conv', 'conv.conv', 'conv.bn']
    """
    backend = backend_of(model)
    return [n.text for n in walk(backend, model)]


def resolve(model: Any, pattern: Patterns) -> dict[str, Any]:
    """``{descriptor: layer}`` for a descriptor or pattern(s), in the order given, each
    pattern's matches in definition order.

    Raises:
        DescriptorSyntaxError: a pattern does not parse.
        LayerNotFoundError: a pattern matches nothing (the message names the deepest
            prefix that resolved, its children and the closest matches).

    Example:
        >>> list(theseus.resolve(net, "blocks[0:2]"))   # doctest: +SKIP
        ['blocks[0]', 'blocks[1]']
    """
    backend = backend_of(model)
    return {n.text: n.layer for _, n in _resolve_nodes(backend, model, _as_list(pattern, "resolve"))}


def stop_after(model: Any, descriptor: PatternLike) -> list[str]:
    """Truncate the network after one layer (the seed's semantics), in place.

    At every level of the descriptor's path, every sibling registered after the named layer
    becomes an Identity. A sibling that is a container (ModuleDict/ModuleList/LayerDict/
    CellDict, Sequential...) keeps its place and has its children replaced instead (its
    containers' children, recursively), so a forward that indexes it still runs.
    Functional code written in ``forward`` still runs: when the forward flattens, pools or
    slices tokens after the layer, use ``theseus.truncate`` (a new module that returns
    exactly the layer's output and runs nothing after it). Undo with ``theseus.reset``.

    Returns:
        The canonical descriptors of the layers that became Identity, in definition order.

    Example:
        >>> theseus.stop_after(net, "blocks[0].depthwise_conv.conv")[:3]   # doctest: +SKIP
        ['blocks[0].depthwise_conv.bn', 'blocks[0].depthwise_conv.relu', 'blocks[0].pointwise_conv']
    """
    backend = backend_of(model)
    if parse(descriptor).is_pattern:
        raise LayerNotFoundError(str(descriptor), f"stop_after needs one layer, but {str(descriptor)!r} is a pattern; "
                                 "name a single layer such as 'blocks[5]'")
    node = lookup(backend, model, descriptor)
    items: list = []

    def cut(sib: Node) -> None:
        kids = children_of(backend, sib)
        if kids and backend.container_kind(sib.layer) is not ContainerKind.PLAIN:
            for k in kids:
                cut(k)
        else:
            items.append((sib.parent.layer, sib.name, sib.layer, sib.text))

    for level in reversed(node.path()):  # deepest level first: that is definition order
        for sib in children_of(backend, level.parent)[level.position + 1:]:
            cut(sib)
    replace_all(backend, model, [(p, name, old, backend.identity()) for p, name, old, _ in items])
    return [text for *_, text in items]


class _Capture:
    """Hooks that make the root return ``{"output": ..., descriptor: tensor, ...}``.

    Each forward collects into a buffer that belongs to the calling thread, reset by a
    pre-hook on the root, so concurrent forwards never see each other's features.
    """

    def __init__(self, backend: Backend, model: Any, targets: dict[str, Any], patterns: list) -> None:
        self.backend = backend
        self._model = weakref.ref(model)  # the model's hooks hold this capture, never the reverse
        self.patterns = patterns
        self.keys = list(targets)
        self.local = threading.local()
        self.truth = TrueValues(backend, "update_res")
        self.handles = []
        b = backend
        self.handles.append(b.add_forward_pre_hook(model, self._start))
        for key, layer in targets.items():
            if layer is not None:
                self.handles.append(b.add_forward_hook(layer, self._store(key)))
        self.handles.append(b.add_forward_hook(model, self._finish))
        if not b.thread_safe:  # concurrent forwards would be wrong: run them one at a time
            self.handles.append(b.lock_calls(model, serial_lock(b)))

    def _start(self, layer: Any, inputs: tuple) -> None:
        self.local.buf = {}
        self.local.record = {}

    def _store(self, key: str) -> Callable:
        local, truth = self.local, self.truth

        def hook(layer: Any, inputs: tuple, output: Any) -> None:
            buf = getattr(local, "buf", None)
            if buf is not None:
                buf[key] = truth.take(key, output, local.record)

        return hook

    def _finish(self, layer: Any, inputs: tuple, output: Any) -> dict:
        local = self.local
        buf = getattr(local, "buf", None) or {}
        record = getattr(local, "record", None) or {}
        local.buf = local.record = None
        self.truth.check(record)
        missing = [k for k in self.keys if k not in buf] if len(buf) != len(self.keys) else None
        if missing:
            raise UnsupportedOperation(
                f"update_res: the captured layer(s) {', '.join(missing)} did not run during this forward "
                "(not called by the model's forward, hooks are not executed in this execution mode, or the "
                "model was compiled before the capture was installed: compile again after theseus surgery); "
                "capture layers that run, or call theseus.update_res(model, []) to stop capturing",
                "hooks",
            )
        out = {"output": output}
        for k in self.keys:
            out[k] = buf[k]
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def rebuilt(self) -> "_Capture":
        """The same capture on the current structure (after a layer was replaced)."""
        self.remove()
        model = self._model()
        targets: dict[str, Any] = {}
        for p in self.patterns:
            try:
                targets.update((n.text, n.layer) for _, n in _resolve_nodes(self.backend, model, [p]))
            except LayerNotFoundError:  # the layer is gone: the next forward says so
                targets[str(p)] = None
        new = _Capture(self.backend, model, targets, self.patterns)
        new.truth.copy_keys = set(self.truth.copy_keys)
        return new


def update_res(model: Any, patterns: Patterns) -> dict[str, Any]:
    """Make ``model(x)`` also return the outputs of the given layers.

    Afterwards ``model(x)`` returns a dict: ``"output"`` (the model's own output) first,
    then one entry per matched layer in the order the patterns were given. Calling it again
    replaces the capture (nothing accumulates); ``update_res(model, [])`` stops capturing.
    Each thread's forward collects its own outputs.

    Returns:
        ``{descriptor: layer}`` of the layers that will be returned.

    Example:
        >>> theseus.update_res(net, ["blocks[0]", "blocks[2]"])   # doctest: +SKIP
        >>> list(net(x))                                           # doctest: +SKIP
        ['output', 'blocks[0]', 'blocks[2]']
    """
    backend = backend_of(model)
    pats = _as_list(patterns, "update_res")
    found = _resolve_nodes(backend, model, pats)
    targets = {n.text: n.layer for _, n in found}
    if targets:
        backend.check_hooks_usable(model)
    rec = record_of(model)
    if rec.capture is not None:
        rec.capture.remove()
        rec.capture = None
    if targets:
        rec.capture = _Capture(backend, model, targets, pats)
    return dict(targets)


def upgrade_sublayer(model: Any, patterns: Patterns, handle_func: Callable[[Any, str], Any]) -> dict[str, Any]:
    """Replace every layer a pattern matches with ``handle_func(layer, pattern)``.

    All replacements are computed (and checked to be layers of the model's framework)
    before the model changes, so an exception in ``handle_func`` changes nothing.

    Returns:
        ``{descriptor: new_layer}`` in match order.

    Raises:
        InvalidReplacementError: ``handle_func`` returned something that is not a layer, or
            two matches are nested (one inside the other).

    Example:
        >>> theseus.upgrade_sublayer(net, "blocks[12].depthwise_conv.conv", lambda l, p: make_conv())  # doctest: +SKIP
    """
    backend = backend_of(model)
    if not callable(handle_func):
        raise InvalidReplacementError(f"handle_func must be callable as handle_func(layer, pattern), got {handle_func!r}")
    found = _resolve_nodes(backend, model, _as_list(patterns, "upgrade_sublayer"))
    texts = [n.text for _, n in found]
    for _, n in found:
        for anc in n.path()[:-1]:
            if anc.text in texts:
                raise InvalidReplacementError(
                    f"upgrade_sublayer: {anc.text!r} and its descendant {n.text!r} both match; "
                    "replace one level only (narrow the pattern)")
    new_layers = []
    for pat, n in found:
        new = handle_func(n.layer, pat)
        if not backend.is_layer(new):
            raise InvalidReplacementError(
                f"handle_func returned {type(new).__name__} for {n.text!r}; it must return a "
                f"{backend.name} layer (e.g. the layer itself, modified, or a new one)")
        new_layers.append(new)
    items = [(n.parent.layer, n.name, n.layer, new) for (_, n), new in zip(found, new_layers) if new is not n.layer]
    replace_all(backend, model, items)
    return {n.text: new for (_, n), new in zip(found, new_layers)}


def reset(model: Any) -> None:
    """Undo every theseus change on the model: captures, held norm modes and replaced layers.

    Example:
        >>> theseus.stop_after(net, "blocks[5]"); theseus.reset(net)   # doctest: +SKIP
    """
    backend = backend_of(model)
    rec = peek_record(model)
    if rec is None:
        return
    if rec.capture is not None:
        rec.capture.remove()
        rec.capture = None
    for purpose in list(rec.handles):
        rec.remove_handles(purpose)
    if rec.replacements:
        for r in reversed(rec.replacements):
            parent = r.parent
            if parent is not None:  # a collected parent is no longer part of the model
                backend.replace_child(parent, r.name, r.old)
        rec.replacements.clear()
        backend.after_surgery(model)
