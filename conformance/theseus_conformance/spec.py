"""Neutral model specs: small structures every backend builds with its ``build`` fixture.

A node is ``[kind, *args]``:

* ``["conv", cin, cout, k, stride, padding, groups, bias]``, ``["bn", c]``, ``["relu"]``,
  ``["identity"]``, ``["flatten"]``, ``["pool"]`` (adaptive average to 1×1),
  ``["linear", in, out]``;
* ``["seq", [node, ...]]`` a Sequential; ``["named_seq", [[name, node], ...]]`` a
  Sequential with named children; ``["list", [...]]`` a ModuleList/LayerList/CellList;
  ``["dict", [[name, node], ...]]`` a ModuleDict/LayerDict/CellDict;
* ``["chain", [[name, node], ...]]`` a plain layer whose children are attributes and
  whose forward runs them in order (list/dict children: their items in order);
* ``["residual", node]`` a plain layer with child ``body``: ``x + body(x)``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

#: Node kinds whose argument is a list of child nodes, of ``[name, node]`` pairs, or one node.
_LISTS, _NAMED, _ONE = ("seq", "list"), ("named_seq", "dict", "chain"), ("residual",)
KINDS = ("conv", "bn", "relu", "identity", "flatten", "pool", "linear") + _LISTS + _NAMED + _ONE


def builder(table: Mapping[str, Callable[..., Any]]) -> Callable[[list], Any]:
    """The ``build`` fixture from a table ``kind -> constructor`` (every kind of ``KINDS``).

    Leaf constructors get the node's arguments (``conv``: ``cin, cout, k, stride, padding,
    groups, bias``); ``seq``/``list`` get the built children as a list, ``named_seq``/
    ``dict``/``chain`` a list of ``(name, child)``, ``residual`` the built body.

    Example:
        >>> build = builder({"relu": lambda: "ReLU", "seq": lambda kids: ("Seq", kids)})
        >>> build(["seq", [["relu"], ["relu"]]])
        ('Seq', ['ReLU', 'ReLU'])
    """

    def build(spec: list) -> Any:
        kind, *args = spec
        if kind not in table:
            raise ValueError(f"unknown spec node {kind!r}; this builder knows {', '.join(table)}")
        if kind in _LISTS:
            return table[kind]([build(c) for c in args[0]])
        if kind in _NAMED:
            return table[kind]([(n, build(c)) for n, c in args[0]])
        if kind in _ONE:
            return table[kind](build(args[0]))
        return table[kind](*args)

    return build

__all__ = ["NESTED", "NESTED_DESCRIPTORS", "NAMED_SEQ", "RESNETISH", "builder", "conv"]


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, bias: bool = True) -> list:
    return ["conv", cin, cout, k, stride, k // 2, groups, bias]


#: Nested sequences, a dict container and a residual block, input (N, 3, 8, 8).
NESTED = ["chain", [
    ["stem", conv(3, 4)],
    ["stages", ["seq", [
        ["seq", [conv(4, 4), ["relu"]]],
        ["seq", [conv(4, 6, stride=2), ["bn", 6], ["relu"]]],
    ]]],
    ["heads", ["dict", [["cls", conv(6, 6, k=1)], ["box", ["relu"]]]]],
    ["res", ["residual", ["seq", [conv(6, 6), ["relu"]]]]],
]]

NESTED_DESCRIPTORS = [
    "stem", "stages", "stages[0]", "stages[0][0]", "stages[0][1]", "stages[1]", "stages[1][0]",
    "stages[1][1]", "stages[1][2]", 'heads', 'heads["cls"]', 'heads["box"]', "res", "res.body",
    "res.body[0]", "res.body[1]",
]

#: A Sequential with named children (the Paddle append trap), input (N, 3, 8, 8).
NAMED_SEQ = ["named_seq", [["a", ["identity"]], ["b", ["relu"]], ["c", ["identity"]]]]


def _block(c: int, stride: int = 1) -> list:
    return ["residual", ["seq", [conv(c, c), ["bn", c], ["relu"], conv(c, c)]]]


#: A small ResNet-like net with residual stages, input (N, 3, 16, 16).
RESNETISH = ["chain", [
    ["stem", ["seq", [conv(3, 8, stride=2), ["bn", 8], ["relu"]]]],
    ["layer1", ["seq", [_block(8), _block(8)]]],
    ["down", ["seq", [conv(8, 16, stride=2), ["bn", 16], ["relu"]]]],
    ["layer2", ["seq", [_block(16)]]],
    ["avgpool", ["pool"]],
    ["flatten", ["flatten"]],
    ["fc", ["linear", 16, 10]],
]]
