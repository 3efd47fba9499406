"""Walking a model through a Backend: structural descriptors, exact lookup, pattern matching.

Framework-free: only ``Backend.children`` and ``Backend.container_kind`` are used.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from typing import Any, Iterator, Optional, Union

from ._backend import Backend, ContainerKind
from ._errors import InvalidArgumentError, LayerNotFoundError, NotALayerError, TheseusError, clip
from ._grammar import AnyChild, AnyDepth, Attr, Descriptor, Index, Key, Slice, parse

__all__ = ["Node", "walk", "lookup", "match", "PatternLike", "eval_mode", "probe_forward"]

PatternLike = Union[str, Descriptor]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Node:
    """One layer reached from the root, with how it was reached.

    Attributes:
        layer: the layer.
        parent: the node above (None for the root).
        name: native child name under ``parent``.
        position: position among the parent's children; ``siblings``: their number.
        parent_kind: how the parent addresses its children.
        segment: the descriptor segment that leads from ``parent`` to this node.
    """

    __slots__ = ("layer", "parent", "name", "position", "siblings", "parent_kind", "segment", "text",
                 "_descriptor", "_children")

    def __init__(self, layer: Any, parent: Optional["Node"] = None, name: str = "", position: int = 0,
                 siblings: int = 0, parent_kind: ContainerKind = ContainerKind.PLAIN,
                 segment: Optional[Any] = None, text: str = "") -> None:
        self.layer = layer
        self.parent = parent
        self.name = name
        self.position = position
        self.siblings = siblings
        self.parent_kind = parent_kind
        self.segment = segment
        self.text = text  # str(self.descriptor), built from the parent's
        self._descriptor: Optional[Descriptor] = None
        self._children: Optional[list] = None

    @property
    def descriptor(self) -> Descriptor:
        """The canonical, structural descriptor (computed once)."""
        if self._descriptor is None:
            segs = []
            n: Optional[Node] = self
            while n is not None and n.parent is not None:
                segs.append(n.segment)
                n = n.parent
            self._descriptor = Descriptor._trusted(tuple(reversed(segs)))
        return self._descriptor

    def path(self) -> list["Node"]:
        """Nodes from the first level below the root down to this one."""
        out = []
        n: Optional[Node] = self
        while n is not None and n.parent is not None:
            out.append(n)
            n = n.parent
        return out[::-1]

    def __repr__(self) -> str:
        return f"Node({self.text!r})"


_INDEX = [(Index(i), f"[{i}]") for i in range(1024)]
_NAMED: dict[tuple, tuple] = {}


def _segment_for(kind: ContainerKind, name: str, position: int) -> tuple:
    """``(segment, its text)`` for a child; the common ones are cached."""
    if kind is ContainerKind.SEQUENCE:
        if position < 1024:
            return _INDEX[position]
        return Index(position), f"[{position}]"
    key = (kind is ContainerKind.DICT, name)
    hit = _NAMED.get(key)
    if hit is None:
        seg = Key(name) if kind is ContainerKind.DICT or not _IDENT.match(name) else Attr(name)
        hit = (seg, seg.text())
        if len(_NAMED) < 100_000:
            _NAMED[key] = hit
    return hit


def _child(node: Node, child: Any, name: str, i: int, n: int, kind: ContainerKind) -> Node:
    seg, step = _segment_for(kind, name, i)
    head = node.text
    return Node(child, node, name, i, n, kind, seg, head + step if head else (step[1:] if step[0] == "." else step))


def _new_children(backend: Backend, node: Node) -> list[Node]:
    kids = backend.children(node.layer)
    kind = backend.container_kind(node.layer)
    n = len(kids)
    return [_child(node, child, name, i, n, kind) for i, (name, child) in enumerate(kids)]


def children_of(backend: Backend, node: Node) -> list[Node]:
    """The child nodes of ``node`` (cached on the node)."""
    if node._children is None:
        node._children = _new_children(backend, node)
    return node._children


def root_node(model: Any) -> Node:
    return Node(model)


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
    import difflib  # errors only: keeps import theseus fast

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


def _step_matches(seg, name: str, position: int, siblings: int, kind: ContainerKind) -> bool:
    """Whether a child (by its native name and position) matches one non-``**`` segment."""
    t = type(seg)
    if t is Attr:
        return name == seg.name if not seg.is_wild else fnmatch.fnmatchcase(name, seg.name)
    if t is Key:
        return name == seg.key
    if t is Index:
        if kind is ContainerKind.SEQUENCE:
            i = seg.index + siblings if seg.index < 0 else seg.index
            return position == i
        return name == str(seg.index)
    if t is Slice:
        return kind is ContainerKind.SEQUENCE and position in range(siblings)[seg.start:seg.stop]
    if t is AnyChild:
        return True
    raise AssertionError(seg)  # pragma: no cover - AnyDepth handled by the caller


class _Matcher:
    """The pattern as a small automaton over child steps: a state set is the set of
    pattern positions reached; ``**`` positions stay and may be skipped."""

    def __init__(self, segs: tuple) -> None:
        self.segs = segs
        self.n = len(segs)
        self.start = self.closure((0,))
        self._free: dict[frozenset, Optional[frozenset]] = {}
        self._direct: dict[frozenset, Optional[list]] = {}

    def closure(self, states) -> frozenset:
        out = set()
        stack = list(states)
        while stack:
            i = stack.pop()
            if i in out:
                continue
            out.add(i)
            if i < self.n and type(self.segs[i]) is AnyDepth:
                stack.append(i + 1)
        return frozenset(out)

    def free_step(self, states: frozenset) -> Optional[frozenset]:
        """The next state set when it does not depend on the child (only ``**`` pending),
        else None."""
        if states not in self._free:
            fixed = all(i == self.n or type(self.segs[i]) is AnyDepth for i in states)
            self._free[states] = self.closure(i for i in states if i < self.n) if fixed else None
        return self._free[states]

    def direct(self, states: frozenset) -> Optional[list]:
        """The pending segments when each names children exactly (an index, a key, a plain
        name): the children to try can then be looked up instead of scanned. Else None."""
        if states not in self._direct:
            segs = [self.segs[i] for i in states if i < self.n]
            exact = all(type(seg) in (Index, Key) or (type(seg) is Attr and not seg.is_wild) for seg in segs)
            self._direct[states] = segs if exact else None
        return self._direct[states]

    def step(self, states: frozenset, name: str, position: int, siblings: int, kind: ContainerKind) -> frozenset:
        nxt = []
        for i in states:
            if i == self.n:
                continue
            seg = self.segs[i]
            if type(seg) is AnyDepth:
                nxt.append(i)
            elif _step_matches(seg, name, position, siblings, kind):
                nxt.append(i + 1)
        return self.closure(nxt) if nxt else frozenset()


def _candidates(exact: Optional[list], raw: list, count: int, kind: ContainerKind) -> Any:
    """Positions of the children worth trying: all, or those the exact segments name."""
    if exact is None:
        return range(count)
    hits = set()
    for seg in exact:
        if type(seg) is Index and kind is ContainerKind.SEQUENCE:
            j = seg.index + count if seg.index < 0 else seg.index
            if 0 <= j < count:
                hits.add(j)
        else:
            target = seg.name if type(seg) is Attr else seg.key if type(seg) is Key else str(seg.index)
            hits.update(j for j, (name, _) in enumerate(raw) if name == target)
    return sorted(hits)


def _search(backend: Backend, model: Any, segs: tuple) -> list[Node]:
    """Nodes a pattern matches, in definition order, visiting only subtrees that can still
    match (``blocks[*][98]`` looks at one child per block, not at every layer)."""
    m = _Matcher(segs)
    accept = m.n
    out: list[Node] = []
    got = set()
    seen = {id(model)}
    stack: list[tuple[Node, frozenset]] = [(root_node(model), m.start)]
    while stack:
        node, states = stack.pop()
        if node.parent is not None and accept in states and id(node.layer) not in got:
            got.add(id(node.layer))
            out.append(node)
        layer = node.layer
        raw = backend.children(layer)
        if not raw:
            continue
        kind = backend.container_kind(layer)
        count = len(raw)
        free = m.free_step(states)
        todo = []
        for i in _candidates(m.direct(states), raw, count, kind):
            name, child = raw[i]
            if id(child) in seen:
                continue
            nxt = free if free is not None else m.step(states, name, i, count, kind)
            if nxt:
                seen.add(id(child))
                todo.append((_child(node, child, name, i, count, kind), nxt))
        stack.extend(reversed(todo))
    return out


def match(backend: Backend, model: Any, pattern: PatternLike) -> list[Node]:
    """Every node a pattern matches, in definition order; a plain descriptor gives one node
    (with lookup's precise errors). Raises LayerNotFoundError when nothing matches."""
    desc = parse(pattern)
    if not desc.is_pattern:
        return [lookup(backend, model, pattern)]
    text = str(pattern) if isinstance(pattern, str) else str(desc)
    out = _search(backend, model, desc.segments)
    if not out:
        raise _not_found(backend, model, clip(text), root_node(model), f"pattern {clip(text)!r} matches no layer")
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
