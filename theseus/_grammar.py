"""Descriptor grammar: parse text into an immutable, hashable ``Descriptor``.

Pure Python, no framework. A descriptor is a tuple of segments; a pattern is a descriptor
that contains a wildcard segment. ``str(d)`` is the canonical spelling.

Grammar (whitespace is allowed only inside brackets; text is stripped at both ends)::

    descriptor := first ( "." step | bracket )*
    first      := step | bracket
    step       := NAME | INT | "**"          NAME may contain the glob characters * and ?
    bracket    := "[" ( INT | "*" | [INT] ":" [INT] | STRING ) "]"
    INT        := ["-"] DIGITS               (a dotted INT such as ``blocks.0`` is an index)
    STRING     := '"' chars '"' | "'" chars "'"   (backslash escapes \\ and the quote)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

from ._errors import DescriptorSyntaxError, InvalidArgumentError, clip_repr

__all__ = ["Attr", "Index", "Key", "Slice", "AnyChild", "AnyDepth", "Segment", "Descriptor", "parse"]

_NAME_RE = re.compile(r"[A-Za-z_*?][A-Za-z0-9_*?]*")
_INT_RE = re.compile(r"-?[0-9]+")
_NAME_FULL = re.compile(r"[A-Za-z_*?][A-Za-z0-9_*?]*\Z")

#: Longest index a descriptor may hold (digits): far beyond any container, far below the
#: 4,300-digit limit of ``int()``.
MAX_INDEX_DIGITS = 18
#: Longest descriptor or pattern text accepted (characters).
MAX_TEXT = 10_000
#: Most glob characters (``*``/``?``) in one name step (bounds the matching work).
MAX_GLOBS = 32


@dataclass(frozen=True)
class Attr:
    """A child by attribute name; may hold glob characters (``layer*``)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_FULL.match(self.name):
            _bad_segment(self, "name", "a name of letters, digits, '_' and the globs * ?, not starting with a digit")

    @property
    def is_wild(self) -> bool:
        return "*" in self.name or "?" in self.name

    def text(self) -> str:
        return "." + self.name


@dataclass(frozen=True)
class Index:
    """A child of a sequence container by position (negative counts from the end)."""

    index: int

    is_wild = False

    def __post_init__(self) -> None:
        if not _is_index(self.index):
            _bad_segment(self, "index", f"an int of at most {MAX_INDEX_DIGITS} digits")

    def text(self) -> str:
        return f"[{self.index}]"


@dataclass(frozen=True)
class Key:
    """A child by its native name, written ``["name"]`` (dict containers, named sequences)."""

    key: str

    is_wild = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str):
            _bad_segment(self, "key", "a str")

    def text(self) -> str:
        escaped = self.key.replace("\\", "\\\\").replace('"', '\\"')
        return f'["{escaped}"]'


@dataclass(frozen=True)
class Slice:
    """Children of a sequence container in ``[start:stop]`` (Python slice semantics)."""

    start: Optional[int]
    stop: Optional[int]

    is_wild = True

    def __post_init__(self) -> None:
        for name in ("start", "stop"):
            v = getattr(self, name)
            if v is not None and not _is_index(v):
                _bad_segment(self, name, f"None or an int of at most {MAX_INDEX_DIGITS} digits")

    def text(self) -> str:
        a = "" if self.start is None else str(self.start)
        b = "" if self.stop is None else str(self.stop)
        return f"[{a}:{b}]"


@dataclass(frozen=True)
class AnyChild:
    """Any direct child, written ``[*]``."""

    is_wild = True

    def text(self) -> str:
        return "[*]"


@dataclass(frozen=True)
class AnyDepth:
    """Zero or more levels, written ``**``."""

    is_wild = True

    def text(self) -> str:
        return ".**"


Segment = Union[Attr, Index, Key, Slice, AnyChild, AnyDepth]
_SEGMENT_TYPES = frozenset({Attr, Index, Key, Slice, AnyChild, AnyDepth})


def _is_index(v: object) -> bool:
    return type(v) is int and -10**MAX_INDEX_DIGITS < v < 10**MAX_INDEX_DIGITS


def _bad_segment(seg: object, field_name: str, right: str) -> None:
    raise InvalidArgumentError(f"{type(seg).__name__}.{field_name} must be {right}, got "
                               f"{clip_repr(getattr(seg, field_name))}; build descriptors with theseus.parse(...)")


@dataclass(frozen=True)
class Descriptor:
    """An immutable, hashable path to one layer (or, with wildcards, a pattern).

    Example:
        >>> d = parse("blocks.0.depthwise_conv")
        >>> str(d), d.is_pattern
        ('blocks[0].depthwise_conv', False)
        >>> parse("**.bn").is_pattern
        True
    """

    segments: tuple

    def __post_init__(self) -> None:
        segs = self.segments
        if type(segs) is not tuple or not all(type(seg) in _SEGMENT_TYPES for seg in segs):
            raise InvalidArgumentError(
                f"Descriptor(segments) takes a tuple of Attr/Index/Key/Slice/AnyChild/AnyDepth, got "
                f"{clip_repr(segs)}; build descriptors with theseus.parse('blocks[0].conv')")

    @property
    def is_pattern(self) -> bool:
        """True when any segment is a wildcard (``*``, ``[*]``, ``[a:b]``, ``**``)."""
        return any(s.is_wild for s in self.segments)

    def __str__(self) -> str:
        text = "".join(s.text() for s in self.segments)
        return text[1:] if text.startswith(".") else text

    def __repr__(self) -> str:
        return f"Descriptor({str(self)!r})"

    def __len__(self) -> int:
        return len(self.segments)

    def child(self, segment: Segment) -> "Descriptor":
        """This descriptor extended by one segment."""
        return Descriptor(self.segments + (segment,))

    @classmethod
    def _trusted(cls, segments: tuple) -> "Descriptor":
        """A descriptor from segments theseus built itself (no validation: the walk's hot path)."""
        d = object.__new__(cls)
        object.__setattr__(d, "segments", segments)
        return d

    @property
    def parent(self) -> "Descriptor":
        """The descriptor one level up (the empty descriptor names the model)."""
        return Descriptor(self.segments[:-1])


def _fail(text: str, pos: int, problem: str, hint: str = "") -> DescriptorSyntaxError:
    return DescriptorSyntaxError(text, pos, problem, hint)


def _int(text: str, m: "re.Match[str]") -> int:
    digits = m.group().lstrip("-")
    if len(digits) > MAX_INDEX_DIGITS:
        raise _fail(text, m.start(), f"an index of {len(digits)} digits is too large",
                    f"indices are positions in a container (at most {MAX_INDEX_DIGITS} digits)")
    return int(m.group())


def _parse_string(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in ("\\", quote):
            out.append(text[i + 1])
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise _fail(text, pos, f"unterminated string starting with {quote}", f"close it: [{quote}name{quote}]")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _parse_bracket(text: str, pos: int) -> tuple[Segment, int]:
    """Parse ``[ ... ]`` starting at ``pos`` (which holds '[')."""
    i = _skip_ws(text, pos + 1)
    if i >= len(text):
        raise _fail(text, pos, "unclosed '['", "write an index like [0], [-1], [*], [1:3] or a key like [\"name\"]")
    c = text[i]
    seg: Segment
    if c in "\"'":
        key, i = _parse_string(text, i)
        seg = Key(key)
    elif c == "*":
        seg = AnyChild()
        i += 1
    else:
        m = _INT_RE.match(text, i)
        start = _int(text, m) if m else None
        j = m.end() if m else i
        j = _skip_ws(text, j)
        if j < len(text) and text[j] == ":":
            j = _skip_ws(text, j + 1)
            m2 = _INT_RE.match(text, j)
            stop = _int(text, m2) if m2 else None
            i = m2.end() if m2 else j
            seg = Slice(start, stop)
        elif m is None:
            bad = text[i] if i < len(text) else ""
            raise _fail(
                text,
                i,
                f"expected an integer, '*', a slice or a quoted key inside brackets, found {bad!r}",
                'use [0] for a position, [*] for every child, [1:3] for a slice, ["name"] for a named child',
            )
        else:
            seg = Index(start)  # type: ignore[arg-type]
            i = j
    i = _skip_ws(text, i)
    if i >= len(text):
        raise _fail(text, pos, "unclosed '['", f"add ']' : {text}]")
    if text[i] != "]":
        raise _fail(text, i, f"expected ']' but found {text[i]!r}")
    return seg, i + 1


def _parse_step(text: str, i: int) -> tuple[Segment, int]:
    """Parse a dotted step (a name, an integer, or ``**``) at ``i``."""
    if text.startswith("**", i):
        j = i + 2
        if j < len(text) and text[j] not in ".[":
            raise _fail(text, j, f"'**' must stand alone between dots, found {text[j]!r} after it",
                        "write '**.bn' (any depth) or 'layer*' (a name glob)")
        return AnyDepth(), j
    m = _INT_RE.match(text, i)
    if m and not text[i] == "-":
        j = m.end()
        if j < len(text) and (text[j].isalpha() or text[j] in "_*?"):
            raise _fail(text, i, f"a name cannot start with a digit: {text[i:]!r}")
        return Index(_int(text, m)), j
    m = _NAME_RE.match(text, i)
    if not m:
        found = text[i] if i < len(text) else "end of text"
        raise _fail(text, i, f"expected a layer name, found {found!r}",
                    "a name is letters, digits and '_' (and the globs * ?), not starting with a digit")
    name = m.group()
    if name.count("*") + name.count("?") > MAX_GLOBS:
        raise _fail(text, i, f"a name with {name.count('*') + name.count('?')} glob characters",
                    f"use at most {MAX_GLOBS} '*'/'?' in one name ('**' matches any depth)")
    return Attr(name), m.end()


def parse(text: Union[str, Descriptor]) -> Descriptor:
    """Parse a descriptor or pattern.

    Args:
        text: e.g. ``"blocks[0].depthwise_conv.conv"``, ``"blocks.0.conv"`` (native dotted
            spelling), ``'heads["cls"]'``, ``"blocks[-1]"``, ``"blocks[1:3]"``, ``"**.bn"``.
            A ``Descriptor`` is returned unchanged.

    Returns:
        The immutable ``Descriptor``; ``str()`` of it is the canonical spelling.

    Raises:
        DescriptorSyntaxError: the text does not parse; the message shows the position.

    Example:
        >>> str(parse("blocks.0.conv"))
        'blocks[0].conv'
        >>> str(parse("stages[1][ 0 ]"))
        'stages[1][0]'
    """
    if isinstance(text, Descriptor):
        return text
    if not isinstance(text, str):
        hint = "decode it first: b.decode()" if isinstance(text, (bytes, bytearray)) else \
            "write it as text, e.g. 'blocks[0]'"
        raise DescriptorSyntaxError(clip_repr(text), 0, f"a descriptor must be a str, not {type(text).__name__}", hint)
    if len(text) > MAX_TEXT:
        raise DescriptorSyntaxError(text, MAX_TEXT, f"a descriptor of {len(text)} characters is too long",
                                    f"descriptors are limited to {MAX_TEXT} characters")
    original = text
    stripped = text.strip()
    offset = len(text) - len(text.lstrip())
    text = stripped
    if not text:
        raise DescriptorSyntaxError(original, 0, "empty descriptor",
                                    "name a layer, e.g. 'blocks[0]'; the model itself has no descriptor")
    segs: list[Segment] = []
    i = 0
    try:
        if text[0] == "[":
            seg, i = _parse_bracket(text, 0)
        else:
            seg, i = _parse_step(text, 0)
        segs.append(seg)
        while i < len(text):
            c = text[i]
            if c == ".":
                if i + 1 >= len(text):
                    raise _fail(text, i, "descriptor ends with '.'", "remove the trailing '.' or add a name")
                seg, i = _parse_step(text, i + 1)
            elif c == "[":
                seg, i = _parse_bracket(text, i)
            elif c == "]":
                raise _fail(text, i, "unmatched ']'")
            elif c in " \t":
                raise _fail(text, i, "whitespace outside brackets", "remove the space")
            else:
                raise _fail(text, i, f"unexpected character {c!r}",
                            "separate names with '.', indices with [i]")
            segs.append(seg)
    except DescriptorSyntaxError as err:
        if text != original:
            raise DescriptorSyntaxError(original, err.position + offset, err.problem, err.hint) from None
        raise
    # '**' followed directly by '**' is redundant but harmless; collapse it.
    out: list[Segment] = []
    for s in segs:
        if isinstance(s, AnyDepth) and out and isinstance(out[-1], AnyDepth):
            continue
        out.append(s)
    return Descriptor(tuple(out))
