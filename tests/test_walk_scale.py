"""Pattern matching visits only what can match, and matches exactly what a full walk
filtered segment by segment would (framework-free, on the reference backend)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theseus
from theseus._grammar import AnyChild, AnyDepth, Attr, Index, Key, Slice
from theseus._walk import walk
from theseus_conformance.reference import Identity, Layer, LayerDict, LayerList, ReferenceBackend

theseus.register_backend(ReferenceBackend(), replace=True)


class Counting(ReferenceBackend):
    """The reference backend counting ``children`` calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def children(self, layer):
        self.calls += 1
        return super().children(layer)


def grid(blocks: int, layers: int) -> Layer:
    m = Layer()
    m.blocks = LayerList([LayerList([Identity() for _ in range(layers)]) for _ in range(blocks)])
    m.head = Identity()
    return m


def odd_model() -> Layer:
    m = Layer()
    m.stem = Identity()
    m.blocks = LayerList([LayerList([Identity(), Identity()]), Identity(), LayerList([Identity()])])
    m.heads = LayerDict({"cls": Identity(), "my key": LayerList([Identity()])})
    m.blocks[0].append(LayerList([Identity(), Identity()]))
    return m


def _oracle(model, pattern: str) -> list[str]:
    """The old definition: a full walk, each path matched segment by segment."""
    backend = theseus.backend_of(model)
    segs = theseus.parse(pattern).segments

    def step(seg, node) -> bool:
        if isinstance(seg, Attr):
            return fnmatch.fnmatchcase(node.name, seg.name)
        if isinstance(seg, Key):
            return node.name == seg.key
        if isinstance(seg, Index):
            if node.parent_kind.value == "sequence":
                return node.position == (seg.index + node.siblings if seg.index < 0 else seg.index)
            return node.name == str(seg.index)
        if isinstance(seg, Slice):
            return node.parent_kind.value == "sequence" and node.position in range(node.siblings)[seg.start:seg.stop]
        return isinstance(seg, AnyChild)

    def go(i, path) -> bool:
        if i == len(segs):
            return not path
        if isinstance(segs[i], AnyDepth):
            return go(i + 1, path) or (bool(path) and go(i, path[1:]))
        return bool(path) and step(segs[i], path[0]) and go(i + 1, path[1:])

    return [n.text for n in walk(backend, model) if go(0, n.path())]


def test_one_layer_per_block_does_not_walk_everything():
    counting = Counting()
    theseus.register_backend(counting, replace=True)
    try:
        theseus.unregister_backend("reference")
        m = grid(100, 100)
        got = theseus.resolve(m, "blocks[*][98]")
        assert list(got) == [f"blocks[{i}][98]" for i in range(100)]
        counting.calls = 0
        theseus.resolve(m, "blocks[*][98]")
        assert counting.calls <= 2 + 100 + 100  # root, blocks, each block, each matched leaf: not 10,000
        counting.calls = 0
        theseus.resolve(m, "blocks[7:9][-1]")
        assert counting.calls <= 6
    finally:
        theseus.unregister_backend("counting")
        theseus.register_backend(ReferenceBackend(), replace=True)


PATTERNS = ["**", "**[0]", "blocks[*]", "blocks[*][*]", "blocks[0].**", "blocks[-1:]", "blocks[0][2][*]",
            "**.*", "heads[*]", 'heads["my key"][0]', "heads.cls", "*", "s*", "blocks.**[1]", "**.**",
            "blocks[:]", "**[-1]", "[*][*][*]"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_search_agrees_with_the_full_walk(pattern):
    m = odd_model()
    expected = _oracle(m, pattern)
    if not expected:
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.resolve(m, pattern)
    else:
        assert list(theseus.resolve(m, pattern)) == expected


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.lists(st.sampled_from(["[*]", ".**", "[0]", "[1]", "[-1]", "[1:]", "[:1]", ".blocks", ".heads", ".*",
                                 ".s*", '["cls"]', '["my key"]', ".0", ".2"]), min_size=1, max_size=5))
def test_search_agrees_with_the_full_walk_fuzzed(steps):
    text = "".join(steps).lstrip(".")
    try:
        pattern = theseus.parse(text)
    except theseus.DescriptorSyntaxError:
        return
    if not pattern.is_pattern:
        return
    m = odd_model()
    expected = _oracle(m, text)
    if expected:
        assert list(theseus.resolve(m, text)) == expected
    else:
        with pytest.raises(theseus.LayerNotFoundError):
            theseus.resolve(m, text)


def test_import_theseus_discovers_backends_lazily():
    code = ("import sys, theseus\n"
            "print('importlib.metadata' in sys.modules)\n"
            "theseus.backends()\n"
            "print('importlib.metadata' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split("\n")[:2]
    assert (first, second) == ("False", "True")  # entry points are read when a backend is first needed
