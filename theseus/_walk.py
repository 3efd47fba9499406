"""Walking a model through a Backend: structural descriptors, exact lookup, pattern matching.

Framework-free: only ``Backend.children`` and ``Backend.container_kind`` are used.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

from ._backend import Backend, ContainerKind
from ._errors import InvalidArgumentError, LayerNotFoundError, NotALayerError, TheseusError, clip
from ._grammar import AnyChild, AnyDepth, Attr, Descriptor, Index, Key, Slice, parse

__all__ = ["Node", "walk", "lookup", "match", "PatternLike", "eval_mode", "probe_forward"]

PatternLike = Union[str, Descriptor]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class Node:
    """One layer reached from the root, with how it was reached."""

    layer: Any
    descriptor: Descriptor          # canonical, structural
    parent: Optional["Node"] = None
    name: str = ""                  # native child name under ``parent``
    position: int = 0               # position among the parent's children
    siblings: int = 0               # number of children of the parent
    parent_kind: ContainerKind = ContainerKind.PLAIN
    _children: Optional[list] = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return str(self.descriptor)

    def path(self) -> list["Node"]:
        """Nodes from the first level below the root down to this one."""
        out = []
        n: Optional[Node] = self
        while n is not None and n.parent is not None:
            out.append(n)
            n = n.parent
        return out[::-1]


def _segment_for(kind: ContainerKind, name: str, position: int):
    if kind is ContainerKind.SEQUENCE:
        return Index(position)
    if kind is ContainerKind.DICT or not _IDENT.match(name):
        return Key(name)
    return Attr(name)


def children_of(backend: Backend, node: Node) -> list[Node]:
    """The child nodes of ``node`` (cached on the node)."""
    if node._children is None:
        kids = backend.children(node.layer)
        kind = backend.container_kind(node.layer)
        node._children = [
            Node(child, node.descriptor.child(_segment_for(kind, name, i)), node, name, i, len(kids), kind)
            for i, (name, child) in enumerate(kids)
        ]
    return node._children


def root_node(model: Any) -> Node:
    return Node(model, Descriptor(()))


def walk(backend: Backend, model: Any) -> Iterator[Node]:
    """Every layer below the root in definition (pre-)order; shared layers once."""
    seen = {id(model)}
    stack = [root_node(model)]
    while stack:
        node = stack.pop()
        if node.parent is not None:
            yield node
        kids = [k for k in children_of(backend, node) if id(k.layer) not in seen]
        for k in kids:
            seen.add(id(k.layer))
        stack.extend(reversed(kids))


def _suggest(backend: Backend, model: Any, text: str) -> tuple[str, ...]:
    names = [n.text for n in walk(backend, model)]
    return tuple(difflib.get_close_matches(text, names, n=3, cutoff=0.6))


def _not_found(backend: Backend, model: Any, text: str, node: Node, message: str, cls=LayerNotFoundError):
    kids = tuple(k.text for k in children_of(backend, node))
    return cls(text, message, node.text, kids, _suggest(backend, model, text))


def lookup(backend: Backend, model: Any, descriptor: PatternLike) -> Node:
    """The node a plain (wildcard-free) descriptor names, or a precise LayerNotFoundError."""
    desc = parse(descriptor)
    text = str(descriptor) if isinstance(descriptor, str) else str(desc)
    node = root_node(model)
    for seg in desc.segments:
        kids = children_of(backend, node)
        where = node.text or "the model"
        tname = backend.type_name(node.layer)
        hit: Optional[Node] = None
        if isinstance(seg, Index):
            if backend.container_kind(node.layer) is ContainerKind.SEQUENCE:
                n = len(kids)
                i = seg.index + n if seg.index < 0 else seg.index
                if not 0 <= i < n:
                    valid = f"valid indices are {-n}..{n - 1}" if n else "it is empty"
                    raise _not_found(backend, model, text, node,
                                     f"index {seg.index} is out of range for {where} ({tname} with {n} children; {valid})")
                hit = kids[i]
            else:
                hit = next((k for k in kids if k.name == str(seg.index)), None)
                if hit is None:
                    raise _not_found(backend, model, text, node,
                                     f"{where} is a {tname}, not a sequence container, so [{seg.index}] names nothing")
        elif isinstance(seg, (Attr, Key)):
            name = seg.name if isinstance(seg, Attr) else seg.key
            hit = next((k for k in kids if k.name == name), None)
            if hit is None:
                attr = _safe_getattr(node.layer, name)
                if attr is not _MISSING and attr is not None and not backend.is_layer(attr):
                    kind = type(attr).__name__
                    raise _not_found(backend, model, text, node,
                                     f"{text!r} names a {kind} attribute of {where} ({tname}), not a layer; "
                                     "descriptors name layers only (for weights see theseus.state)",
                                     NotALayerError)
                raise _not_found(backend, model, text, node, f"{where} ({tname}) has no child layer {name!r}")
        else:  # wildcard in a plain lookup: callers use match() for patterns
            raise LayerNotFoundError(text, f"{text!r} is a pattern; it names several layers, not one", node.text)
        node = hit
    if node.parent is None:
        raise LayerNotFoundError(text, "the empty descriptor names the model itself, not one of its layers")
    return node


_MISSING = object()


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:
        return _MISSING


def _step_matches(seg, node: Node) -> bool:
    if isinstance(seg, Attr):
        return fnmatch.fnmatchcase(node.name, seg.name)
    if isinstance(seg, Key):
        return node.name == seg.key
    if isinstance(seg, Index):
        if node.parent_kind is ContainerKind.SEQUENCE:
            i = seg.index + node.siblings if seg.index < 0 else seg.index
            return node.position == i
        return node.name == str(seg.index)
    if isinstance(seg, Slice):
        return node.parent_kind is ContainerKind.SEQUENCE and node.position in range(node.siblings)[seg.start:seg.stop]
    if isinstance(seg, AnyChild):
        return True
    raise AssertionError(seg)  # pragma: no cover - AnyDepth handled by the caller


def _matches(segs: tuple, path: list[Node]) -> bool:
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(segs):
            r = j == len(path)
        elif isinstance(segs[i], AnyDepth):
            r = go(i + 1, j) or (j < len(path) and go(i, j + 1))
        else:
            r = j < len(path) and _step_matches(segs[i], path[j]) and go(i + 1, j + 1)
        memo[key] = r
        return r

    return go(0, 0)


def match(backend: Backend, model: Any, pattern: PatternLike) -> list[Node]:
    """Every node a pattern matches, in definition order; a plain descriptor gives one node
    (with lookup's precise errors). Raises LayerNotFoundError when nothing matches."""
    desc = parse(pattern)
    if not desc.is_pattern:
        return [lookup(backend, model, pattern)]
    text = str(pattern) if isinstance(pattern, str) else str(desc)
    out = [n for n in walk(backend, model) if _matches(desc.segments, n.path())]
    if not out:
        raise _not_found(backend, model, text, root_node(model), f"pattern {text!r} matches no layer")
    return out


@contextlib.contextmanager
def eval_mode(backend: Backend, model: Any) -> Iterator[None]:
    """Run a probe forward in eval mode (no running statistics change), then put every
    layer's own training flag back exactly as it was (mixed modes included). A backend
    without the ``train_eval`` capability has no modes: nothing to switch."""
    if "train_eval" not in backend.capabilities:
        yield
        return
    layers = [model] + [n.layer for n in walk(backend, model)]
    flags = [backend.is_training(layer) for layer in layers]
    backend.set_training(model, False)
    try:
        yield
    finally:
        for layer, flag in zip(layers, flags):
            backend.set_training(layer, flag, recurse=False)


def probe_forward(backend: Backend, model: Any, input_shape: tuple, what: str) -> None:
    """One forward on float32 zeros of ``input_shape`` (already checked), in eval mode
    without gradients; a model that cannot take that input is the caller's argument error."""
    import numpy as np

    x = backend.from_numpy(np.zeros(input_shape, dtype=np.float32))
    with eval_mode(backend, model):
        try:
            backend.infer(model, x)
        except TheseusError:
            raise
        except Exception as err:  # the framework refused the input: name the argument
            msg = clip(" ".join(str(err).split()), 300)
            raise InvalidArgumentError(
                f"{what}: the probe forward on zeros of shape {input_shape} failed ({type(err).__name__}: {msg}); "
                "pass input_shape as the model takes it, e.g. (1, 3, 224, 224) for an image model") from err
