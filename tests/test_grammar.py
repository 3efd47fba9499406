"""The descriptor grammar: canonical spelling, aliases, precise syntax errors (no framework)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theseus import Descriptor, DescriptorSyntaxError, parse
from theseus._grammar import AnyChild, AnyDepth, Attr, Index, Key, Slice

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
globs = st.from_regex(r"[A-Za-z_*][A-Za-z0-9_*?]{0,6}", fullmatch=True).filter(lambda s: "**" not in s)
ints = st.integers(-50, 50)
keys = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
segments = st.one_of(
    names.map(Attr), globs.map(Attr), ints.map(Index), keys.map(Key),
    st.tuples(st.none() | ints, st.none() | ints).map(lambda t: Slice(*t)),
    st.just(AnyChild()), st.just(AnyDepth()),
)
descriptors = st.lists(segments, min_size=1, max_size=6).filter(
    lambda segs: not any(isinstance(a, AnyDepth) and isinstance(b, AnyDepth) for a, b in zip(segs, segs[1:]))
).map(lambda segs: Descriptor(tuple(segs)))


@given(descriptors)
@settings(max_examples=400)
def test_canonical_text_round_trips(d):
    text = str(d)
    assert parse(text) == d
    assert str(parse(text)) == text


@given(st.text(max_size=30))
@settings(max_examples=1500)
def test_arbitrary_text_parses_or_raises_syntax_error_only(text):
    try:
        d = parse(text)
    except DescriptorSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert repr(text) in str(err) or text in str(err)
    else:
        assert parse(str(d)) == d


@given(st.text(alphabet="ab0123[]*.:-\"' _", max_size=20))
@settings(max_examples=1500)
def test_grammar_alphabet_never_raises_anything_else(text):
    try:
        parse(text)
    except DescriptorSyntaxError:
        pass


@pytest.mark.parametrize("text,canonical", [
    ("blocks[0].depthwise_conv.conv", "blocks[0].depthwise_conv.conv"),
    ("blocks.0.depthwise_conv.conv", "blocks[0].depthwise_conv.conv"),
    ("blocks[-1]", "blocks[-1]"),
    ("stages[1][0]", "stages[1][0]"),
    ("stages.1.0", "stages[1][0]"),
    ('heads["cls"]', 'heads["cls"]'),
    ("heads['cls']", 'heads["cls"]'),
    ("heads.cls", "heads.cls"),
    ("blocks[ 0 ]", "blocks[0]"),
    ("  flatten ", "flatten"),
    ("blocks[1:3]", "blocks[1:3]"),
    ("blocks[ : -1]", "blocks[:-1]"),
    ("blocks[*]", "blocks[*]"),
    ("**.bn", "**.bn"),
    ("**.**.bn", "**.bn"),
    ("layer*", "layer*"),
    ("[0].conv", "[0].conv"),
    ('a["q\\"x"]', 'a["q\\"x"]'),
])
def test_canonical_spelling(text, canonical):
    assert str(parse(text)) == canonical


@pytest.mark.parametrize("text,is_pattern", [
    ("blocks[0]", False), ("heads.cls", False), ("blocks[*]", True), ("blocks[0:2]", True),
    ("layer?", True), ("**.bn", True),
])
def test_is_pattern(text, is_pattern):
    assert parse(text).is_pattern is is_pattern


@pytest.mark.parametrize("text,position,problem", [
    ("", 0, "empty descriptor"),
    ("   ", 0, "empty descriptor"),
    ("blocks[0", 6, "unclosed '['"),
    ("blocks[0]]", 9, "unmatched ']'"),
    ("blocks[a]", 7, "expected an integer"),
    ("blocks[-]", 7, "expected an integer"),
    ("a..b", 2, "expected a layer name"),
    ("a.", 1, "ends with '.'"),
    ("a b", 1, "whitespace outside brackets"),
    (" a b", 2, "whitespace outside brackets"),
    ("0abc", 0, "cannot start with a digit"),
    ("**x", 2, "'**' must stand alone"),
    ('a["x]', 2, "unterminated string"),
    ("a[0 1]", 4, "expected ']'"),
    ("a-b", 1, "unexpected character"),
])
def test_syntax_errors_are_precise(text, position, problem):
    with pytest.raises(DescriptorSyntaxError) as info:
        parse(text)
    assert info.value.position == position
    assert problem in str(info.value)
    assert isinstance(info.value, ValueError)


def test_descriptor_is_immutable_and_hashable():
    d = parse("blocks[0].conv")
    assert {d: 1}[parse("blocks.0.conv")] == 1
    with pytest.raises(AttributeError):
        d.segments = ()  # type: ignore[misc]


def test_non_string_is_a_syntax_error():
    with pytest.raises(DescriptorSyntaxError, match="must be a str"):
        parse(3)  # type: ignore[arg-type]
