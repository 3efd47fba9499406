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

__all__ = ["NESTED", "NESTED_DESCRIPTORS", "NAMED_SEQ", "RESNETISH", "STAGE_RULE", "builder", "conv"]


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


def _cbr(cin: int, cout: int, stride: int = 1) -> list:
    return ["seq", [conv(cin, cout, stride=stride), ["relu"]]]


def _head(c: int) -> list:
    return [["pool", ["pool"]], ["flatten", ["flatten"]], ["fc", ["linear", c, 10]]]


#: Models for the stage rule (theseus/_features.py), input (N, 3, 32, 32); each with the
#: stages ``features`` must find: ``(name, channels, reduction)``.
STAGE_RULE = {
    # a stem of blocks going /2 -> /4 before a /4 stage (timm fastvit, PaddleClas ResNet-vd's
    # stem of ConvBNLayers): its /2 block is internal to the stem, not a stage
    "stem_of_blocks": (["chain", [
        ["stem", ["seq", [_cbr(3, 4, 2), _cbr(4, 4, 2)]]],
        ["stages", ["seq", [_cbr(4, 8), _cbr(8, 16, 2)]]],
    ] + _head(16)], [("stages[0]", 8, 4), ("stages[1]", 16, 8)]),
    # a deep stem of plain layers /1 -> /2 -> /4 before the body (efficientformer, repvit,
    # mambaout): not opened, its /2 layer is inside the stem
    "deep_stem": (["chain", [
        ["stem", ["chain", [["conv1", conv(3, 4, stride=2)], ["act1", ["relu"]], ["conv2", conv(4, 8, stride=2)]]]],
        ["stages", ["seq", [_cbr(8, 8), _cbr(8, 16, 2)]]],
    ] + _head(16)], [("stages[0]", 8, 4), ("stages[1]", 16, 8)]),
    # a top-level stem layer at /2 (ResNet's act1) stays a stage
    "top_level_stem": (["chain", [
        ["conv1", conv(3, 4, stride=2)], ["act1", ["relu"]],
        ["stages", ["seq", [_cbr(4, 8, 2), _cbr(8, 16, 2)]]],
    ] + _head(16)], [("act1", 4, 2), ("stages[0]", 8, 4), ("stages[1]", 16, 8)]),
    # the whole trunk as one Sequential of plain layers (DenseNet's / VGG's ``features``)
    "trunk": (["chain", [
        ["features", ["seq", [conv(3, 4, stride=2), ["relu"], conv(4, 8, stride=2), ["relu"],
                              conv(8, 16, stride=2), ["relu"]]]],
    ] + _head(16)], [("features[1]", 4, 2), ("features[3]", 8, 4), ("features", 16, 8)]),
    # a trunk whose layer holds a list of blocks (MindCV DenseNet's ``features`` with dense
    # blocks of ``cell_list``s) is a trunk, not a wrapper of the body: its children are blocks
    "trunk_holding_a_list": (["chain", [
        ["features", ["seq", [conv(3, 4, stride=2), ["relu"],
                              ["chain", [["units", ["list", [_block(4), _block(4)]]]]],
                              conv(4, 8, stride=2)]]],
    ] + _head(8)], [("features[2]", 4, 2), ("features", 8, 4)]),
    # the body inside a plain wrapper (timm qwen3/gemma4/deepseek ViTs: ``encoder.blocks``):
    # isotropic, every block is a stage
    "wrapped_body": (["chain", [
        ["patch", ["conv", 3, 8, 4, 4, 0, 1, True]],
        ["encoder", ["chain", [["blocks", ["list", [_block(8), _block(8), _block(8)]]]]]],
    ] + _head(8)], [("encoder.blocks[0]", 8, 4), ("encoder.blocks[1]", 8, 4), ("encoder.blocks[2]", 8, 4)]),
    # stages go coarser and coarser: a layer after the last stage that is back at a finer
    # resolution (here a 1x1 conv padded 8x8 -> 16x16; HRNet's branches, CoaT's per-scale
    # norms) is not a stage
    "back_to_finer": (["chain", [
        ["stages", ["seq", [_cbr(3, 8, 2), _cbr(8, 16, 2)]]],
        ["side", ["conv", 16, 16, 1, 1, 4, 1, True]],
    ] + _head(16)], [("stages[0]", 8, 2), ("stages[1]", 16, 4)]),
    # a 1x1 expansion of another class appended to a flat list of blocks, widening 4x at the
    # same resolution (ReXNet's features[16], torchvision MobileNetV2's features[18]): the head
    "expansion_tail": (["chain", [
        ["stages", ["seq", [_cbr(3, 8, 2), _cbr(8, 16, 2), ["chain", [["conv", conv(16, 64, k=1)], ["act", ["relu"]]]]]]],
    ] + _head(64)], [("stages[0]", 8, 2), ("stages[1]", 16, 4)]),
    # the same expansion as a stage of its own (the only block of its container: timm
    # MobileNetV3's blocks[6]) is a stage, as timm lists it
    "expansion_stage": (["chain", [
        ["blocks", ["seq", [["seq", [_cbr(3, 8, 2)]], ["seq", [_cbr(8, 16, 2)]],
                            ["seq", [["chain", [["conv", conv(16, 64, k=1)], ["act", ["relu"]]]]]]]]],
    ] + _head(64)], [("blocks[0]", 8, 2), ("blocks[2]", 64, 4)]),
    # convolutions without padding: 32 -> 15 -> 13 -> 6 -> 3 (inception's 224 -> 111 -> 109
    # -> 54 ...): nominal strides 2, 2, 4, 8 (chained step by step), last of each resolution
    "unpadded": (["chain", [
        ["a", ["conv", 3, 4, 3, 2, 0, 1, True]], ["b", ["conv", 4, 4, 3, 1, 0, 1, True]],
        ["c", ["conv", 4, 8, 3, 2, 0, 1, True]], ["d", ["conv", 8, 16, 2, 2, 0, 1, True]],
    ] + _head(16)], [("b", 4, 2), ("c", 8, 4), ("d", 16, 8)]),
}
