"""``features`` and ``truncate``: stage detection, multi-scale feature maps and early exit,
all on the ``extract`` collector (hooks that stop the forward after the last requested layer).

The stage rule (written once, for every backend), from one probe forward on zeros:

1. **Body blocks.** The root's children are walked in order; a sequence container
   (Sequential, ModuleList, LayerList, CellList...) is opened when it did not run as a unit
   (a list) or when all its children have children of their own (a container of blocks).
   A Sequential of plain layers (``conv, norm, act`` or ``norm, conv``) is ONE block, so a
   layer inside the next block (the LayerNorm that opens a ConvNeXt downsampling block) is
   never a stage. Blocks reached by opening a container are the *body*. When the root has
   no container of blocks, a plain layer wrapping one (a ViT's ``encoder`` holding
   ``blocks``) is opened down to it.
   a. *Inside a stem.* A body block nested in a container whose own output is at a coarser
      resolution, when the body goes on at that resolution after the container (a stem of
      blocks /2 -> /4 before the /4 stage), is internal to that container, not a stage.
   b. *A stem layer.* A block outside the body is never opened when the body goes on at its
      output resolution (a deep stem /1 -> /2 -> /4: its /2 layer is inside it); a
      top-level layer at /2 (ResNet's ``act1``) is a block like any other. Stages follow
      the module tree here, not every resolution computed: timm's /2 tap is a per-family
      choice (inside ResNet-D/NFNet/CSP/VoVNet stems, none in ConvNeXt-ols/EfficientFormer/
      LeViT/FastViT/HGNet stems); opening stems was measured at 74 models gained, 111 lost
      (docs/stage-agreement.md).
   c. *A trunk.* A block outside the body that reduces by more than one step and after which
      no body block runs at its resolution (DenseNet's or VGG's whole ``features``) is
      opened: its last layer at each finer resolution is a block too.
2. **Maps.** A block's output is a feature map when it is ``(B, C, H, W)``, ``(B, H, W, C)``
   (channels-last, told apart by the probe's spatial size) or a ``(B, N, C)`` token
   sequence whose ``N`` is a grid of the input plus up to 16 prefix (class/register) tokens.
   Globally pooled (1x1) outputs are not maps. A grid need not divide the input (convs
   without padding: 224 -> 111 -> 54 -> 25): its reduction is the nominal stride, chained
   step by step from the map before it (111 -> 54 is x2, a ceil-mode 7 -> 4 is x2).
   A block returning a tuple or list (PiT's ``(x, cls_tokens)``, MViT-v2's
   ``(x, feat_size)``, TNT's ``(pixel tokens, patch tokens)``) is read as its first element
   that is a map of the probe's batch (TNT's pixel tokens have ``B * N`` rows: not a map);
   ``feature_info`` names that element (``element``).
3. **Stages.** The output of the last block of each resolution (reduction). Blocks that
   follow the last body block at its resolution (a head/expansion conv, a final norm) are
   the head, not a stage. Stages go coarser and coarser: a map back at a finer resolution
   than a stage before it (HRNet's branches, CoaT's per-scale norms) is not a stage. The
   last body block is the head too when it is a layer of another class than the block
   before it, appended to a list of blocks or stages, widening the channels 4x or more at
   the same resolution (ReXNet's ``features[16]``, torchvision MobileNetV2/V3's and
   EfficientNet's last ``features`` conv, MindCV GhostNet's ``blocks[9]``: a 1x1 expansion
   to the classifier's width); an expansion that forms a stage of its own (the only block
   of its container: timm MobileNetV3's 960-channel ``blocks[6]``) is a stage, as timm
   lists it. A model without a body (stages as attributes ``s1..s4``)
   gets the same test on its top-level layers. When every body block has the same resolution
   (isotropic models: ViT, MLP-Mixer), every block of the body container (the one holding
   the first body block) is a stage, with or without a class token (timm's convention:
   ConViT's last blocks add one); a second container of blocks after it (XCiT's
   class-attention blocks) is the head.
4. **Names.** A stage that is the last child of a Sequential that ran is named by that
   container (``layer1`` rather than ``layer1[2]``: same tensor).

Channels-last and token maps are returned as ``(B, C, H, W)``; ``feature_info`` says so
(``layout``, ``prefix_tokens``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._backend import Backend, ContainerKind, backend_of
from ._errors import InvalidArgumentError, LayerNotFoundError
from ._extract import _Collector
from ._ops import _as_list, _resolve_nodes
from ._validate import check_input_shape, check_out_indices, pick_out_indices
from ._walk import Node, children_of, lookup, probe_forward, root_node, walk

__all__ = ["features", "truncate", "FeatureInfo"]

_MAX_PREFIX = 16


class FeatureInfo(list):
    """Per selected stage: ``{"name", "channels", "reduction", "index"}`` (timm-style),
    plus ``"layout"`` (``"NHWC"`` or ``"tokens"``) and ``"prefix_tokens"`` when the layer's
    output was converted to ``(B, C, H, W)``, and ``"element"`` (an index) when the layer
    returns a tuple/list and that element is the map."""

    def channels(self) -> list[int]:
        return [f["channels"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def names(self) -> list[str]:
        return [f["name"] for f in self]


@dataclass
class _Map:
    """How a layer's output reads as a feature map."""

    layout: str            # "NCHW", "NHWC" or "tokens"
    channels: int
    grid: tuple            # (h, w)
    prefix: int = 0        # tokens before the grid (class/register tokens)
    stride: int = 0        # nominal stride of a grid that does not divide the input (0: exact)
    part: Optional[int] = None  # the element of a tuple/list output that is the map

    def reduction(self, input_hw: tuple) -> int:
        """The input's size over the grid's. A grid that does not divide the input (convs
        without padding: 224 -> 111 -> 54 -> 25 ...) has a nominal stride: the one chained
        from the maps before it (``_read_maps``), else the nearest power of two."""
        if self.stride:
            return self.stride
        if input_hw[0] % self.grid[0] == 0:
            return input_hw[0] // self.grid[0]
        return _nominal(input_hw[0], self.grid[0])


def _nominal(size: int, grid: int) -> int:
    """The nominal stride of a first grid that does not divide the input. Unpadded convs and
    pools leave a grid a little smaller than ``size / stride`` (224 -> 25 at /8, PiT's 64 -> 7
    at /8), padding a little larger: the largest power of two up to the ratio (+5 %) when
    within 15 % of it, else the ratio rounded down (patch 14: 384 -> 27 is /14, PiT-B's
    224 -> 31 is /7)."""
    ratio = size / grid
    p = 1 << max(0, int(np.floor(np.log2(ratio * 1.05))))
    return p if p >= 0.85 * ratio else max(1, int(ratio * 1.05))


class _Parts(tuple):
    """The shapes of a tuple/list output's elements (None: not a tensor, or a tensor whose
    leading axis is not the probe's batch, e.g. TNT's per-patch pixel tokens)."""


def _shape_of(backend: Backend, output: Any, batch: int) -> Any:
    """A layer's output shape as the stage rule reads it: a tensor's shape, ``_Parts`` for a
    tuple/list of tensors (PiT's ``(x, cls_tokens)``, MViT-v2's ``(x, feat_size)``), None."""
    if isinstance(output, (tuple, list)) and output:
        parts = [backend.shape(o) if not isinstance(o, (tuple, list, dict)) else None for o in output]
        return _Parts(s if s is not None and len(s) >= 3 and s[0] == batch else None for s in parts)
    return backend.shape(output)


def _part(shape: Any, input_hw: tuple) -> tuple:
    """``(index, shape)`` of the element of a tuple output read as the map: the first one that
    is a feature map; ``(None, shape)`` for a plain shape."""
    if not isinstance(shape, _Parts):
        return None, shape
    for i, s in enumerate(shape):
        if s is not None and _as_map(s, input_hw) is not None:
            return i, s
    return None, None


def _as_map(shape: Optional[tuple], input_hw: tuple, prefer: str = "NCHW") -> Optional[_Map]:
    """Read an output shape as a feature map of an input of spatial size ``input_hw``; a
    4-D shape that fits both layouts is read as ``prefer``; a tuple output (``_Parts``) as
    its first element that is a map (``part`` says which)."""
    if isinstance(shape, _Parts):
        i, sub = _part(shape, input_hw)
        m = None if sub is None else _as_map(sub, input_hw, prefer)
        if m is not None:
            m.part = i
        return m
    if shape is None:
        return None
    H, W = input_hw
    if len(shape) == 4:
        _, a, b, c = shape
        nchw = b >= 1 and c >= 1 and H % b == 0 and W % c == 0 and H // b == W // c and (b, c) != (1, 1)
        nhwc = a >= 1 and b >= 1 and H % a == 0 and W % b == 0 and H // a == W // b and (a, b) != (1, 1)
        if not (nchw or nhwc):  # no exact grid: a grid of unpadded convs (inception's 111, 54, 25...)
            nchw, nhwc = _near_grid(b, c, H, W), _near_grid(a, b, H, W)
        if nchw and not (nhwc and prefer == "NHWC"):
            return _Map("NCHW", int(a), (int(b), int(c)))
        if nhwc:
            return _Map("NHWC", int(c), (int(a), int(b)))
        return None
    if len(shape) == 3:
        _, n, c = shape
        for k in range(0, _MAX_PREFIX + 1):
            g = n - k
            if g <= 1:
                break
            for r in (4, 8, 14, 16, 32, 2, 1, 7, 28, 64):
                if H % r == 0 and W % r == 0 and (H // r) * (W // r) == g:
                    return _Map("tokens", int(c), (H // r, W // r), k)
        for k in (0, 1):  # a grid that does not divide the input (LeViT's ceil-mode 4x4 at 224)
            h = int(round(np.sqrt((n - k) * H / W)))
            if 1 < h < H and (n - k) % h == 0 and _near_grid(h, (n - k) // h, H, W):
                return _Map("tokens", int(c), (h, (n - k) // h), k)
        return None
    return None


def _near_grid(h: int, w: int, H: int, W: int) -> bool:
    """A ``(h, w)`` grid smaller than the input that is not an exact fraction of it, but whose
    two strides agree within 10 % (the sizes left by convs and pools without padding)."""
    if not (1 <= h < H and 1 <= w < W) or (h, w) == (1, 1):
        return False
    rh, rw = H / h, W / w
    return abs(rh - rw) <= 0.1 * max(rh, rw) and rh >= 1.5
def _ambiguous(shape: Optional[tuple], input_hw: tuple) -> bool:
    shape = _part(shape, input_hw)[1]
    return (shape is not None and len(shape) == 4 and _as_map(shape, input_hw, "NCHW") is not None
            and _as_map(shape, input_hw, "NHWC") is not None
            and _as_map(shape, input_hw, "NCHW").layout != _as_map(shape, input_hw, "NHWC").layout)


def _read_maps(shapes: list, input_hw: tuple) -> list:
    """``_as_map`` of each shape (in execution order); a shape that fits both layouts takes
    the layout of the nearest unambiguous 4-D output (the next one, else the previous)."""
    plain = [None if _ambiguous(s, input_hw) else _as_map(s, input_hw) for s in shapes]
    out = []
    for i, s in enumerate(shapes):
        if not _ambiguous(s, input_hw):
            out.append(plain[i])
            continue
        near = [m for m in plain[i + 1:] + plain[:i][::-1] if m is not None and m.layout != "tokens"]
        out.append(_as_map(s, input_hw, near[0].layout if near else "NCHW"))
    H = input_hw[0]
    for i, m in enumerate(out):  # nominal strides, step by step: 224 -> 111 is /2, 7 -> 4 (ceil) is x2
        if m is None:
            continue
        finer = [p for p in out[:i] if p is not None and p.grid[0] >= m.grid[0]]
        near = min(finer, key=lambda p: p.grid[0]) if finer else None
        if near is None:  # the first map: exact, else its nominal stride
            if H % m.grid[0]:
                m.stride = _nominal(H, m.grid[0])
            continue
        g, r = near.grid[0], near.reduction(input_hw)
        if H % m.grid[0] or g % m.grid[0] or near.stride:
            m.stride = r * max(1, int(round(g / m.grid[0])))
    return out


@dataclass
class _Probed:
    node: Node
    shape: Optional[tuple]
    order: int              # completion order in the probe forward
    body: bool = False      # reached by opening a container of blocks
    lift: Optional[Node] = None


def _is_composite(backend: Backend, node: Node) -> bool:
    return bool(children_of(backend, node))


def _probe_all(backend: Backend, model: Any, input_shape: Sequence[int]) -> dict:
    """``{id(layer): (order, shape)}`` for every layer that completed in one forward on zeros."""
    seen: dict = {}
    me = threading.get_ident()
    counter = [0]
    batch = int(input_shape[0])
    handles = []
    layers = {}

    def visit(node: Node) -> None:
        for k in children_of(backend, node):
            if id(k.layer) not in layers:
                layers[id(k.layer)] = k.layer
                visit(k)

    visit(root_node(model))

    def hook(layer, inputs, output):
        if threading.get_ident() == me and id(layer) not in seen:
            seen[id(layer)] = (counter[0], _shape_of(backend, output, batch))
            counter[0] += 1

    try:
        for layer in layers.values():
            handles.append(backend.add_forward_hook(layer, hook))
        probe_forward(backend, model, tuple(input_shape), "features")
    finally:
        for h in handles:
            h.remove()
    return seen


def _blocks(backend: Backend, model: Any, ran: dict) -> list[_Probed]:
    """Rule 1: the blocks, in completion order."""
    def visit(node: Node, body: bool, deep: bool, out: list) -> None:
        for k in children_of(backend, node):
            kids = children_of(backend, k)
            if kids and backend.container_kind(k.layer) is ContainerKind.SEQUENCE and (
                    id(k.layer) not in ran or (all(_is_composite(backend, c) for c in kids)
                                               and _passes_through(k, kids, ran))):
                visit(k, True, False, out)
            elif (deep and kids and backend.container_kind(k.layer) is ContainerKind.PLAIN
                  and _holds_body(backend, k, ran)):
                visit(k, body, True, out)
            elif id(k.layer) in ran:
                order, shape = ran[id(k.layer)]
                out.append(_Probed(k, shape, order, body))

    out: list[_Probed] = []
    visit(root_node(model), False, False, out)
    if not any(p.body for p in out):  # no container of blocks at the top: open the wrapper holding one
        out = []
        visit(root_node(model), False, True, out)
    out.sort(key=lambda p: p.order)
    return out


def _passes_through(node: Node, kids: list, ran: dict) -> bool:
    """Whether a container that ran as a unit returns its last child's output (a Sequential);
    one with its own forward (a dense stage concatenating its children) is one block."""
    done = [ran[id(k.layer)] for k in kids if id(k.layer) in ran]
    return bool(done) and max(done, key=lambda d: d[0])[1] == ran[id(node.layer)][1]


def _holds_body(backend: Backend, node: Node, ran: dict) -> bool:
    """Whether a plain layer wraps the body: exactly one of its descendants (through plain
    layers) is a sequence container of composite blocks that ran (a ViT ``encoder`` holding
    ``blocks``). Several (GoogLeNet's inception blocks: parallel branches, each a Sequential
    of conv blocks) make a block with branches, not a wrapper. Only plain layers are looked
    into: a Sequential trunk of mixed layers (DenseNet's ``features``) is a trunk (rule 1c)."""
    return len(_bodies_in(backend, node, ran)) == 1


def _bodies_in(backend: Backend, node: Node, ran: dict) -> list:
    out: list = []
    for k in children_of(backend, node):
        kids = children_of(backend, k)
        kind = backend.container_kind(k.layer)
        if kids and kind is ContainerKind.SEQUENCE:
            if all(_is_composite(backend, c) for c in kids) and any(id(c.layer) in ran for c in kids):
                out.append(k)
        elif kids and kind is ContainerKind.PLAIN:
            out += _bodies_in(backend, k, ran)
    return out


def _lifted(backend: Backend, node: Node, ran: dict) -> Node:
    """Rule 4: name a stage by the Sequential it ends, when that container ran and all its
    children have the stage's output shape (a stage container, not the whole body)."""
    while (node.parent is not None and node.parent.parent is not None
           and node.parent_kind is ContainerKind.SEQUENCE and node.position == node.siblings - 1
           and id(node.parent.layer) in ran and ran[id(node.parent.layer)][1] == ran[id(node.layer)][1]
           and all(ran.get(id(k.layer), (0, None))[1] == ran[id(node.layer)][1]
                   for k in children_of(backend, node.parent))):
        node = node.parent
    return node


@dataclass
class _Stage:
    node: Node
    map: _Map
    order: int
    body: bool


def _internal(maps: list, ran: dict, hw: tuple) -> set:
    """Rule 1b: ids of body blocks nested in a container (a stem) whose own output is at a
    coarser resolution while the body goes on at that resolution after it: fastvit's
    ``stem[0]`` at /2 inside a stem going /2 -> /4 before the /4 stage. Those are internal to
    the container, not stages. The body container itself (MobileNet's ``blocks``, after which
    only the head follows) keeps its blocks."""
    body = [(b, m) for b, m in maps if b.body]
    out: set = set()
    for b, m in body:
        node = b.node.parent
        while node is not None and node.parent is not None:
            shape = ran.get(id(node.layer), (None, None))[1]
            outer = _as_map(shape, hw)
            if outer is not None and outer.layout == m.layout and outer.reduction(hw) > m.reduction(hw):
                end = ran[id(node.layer)][0]
                if any(o.order > end and om.reduction(hw) == outer.reduction(hw) for o, om in body):
                    out.add(id(b.node.layer))
                    break
            node = node.parent
    return out


def _open_trunks(backend: Backend, maps: list, ran: dict, hw: tuple) -> list:
    """Rule 1c: a block outside the body that reduces the resolution by more than one step and
    after which no body block runs at its output resolution (the whole trunk as one module:
    DenseNet's or VGG's ``features``) is opened: the last of its layers at each finer
    resolution is a block too. A stem that the body continues at its output resolution
    (ResNet-D's deep stem, a /2 -> /4 stem before the /4 stage) is not opened (rule 1b)."""
    out: list = []
    prev = 1
    for b, m in maps:
        red = m.reduction(hw)
        if (not b.body and red > 2 * prev and m.layout != "tokens"
                and not any(o.order > b.order and om.reduction(hw) == red for o, om in maps if o.body)):
            out += _trunk_blocks(backend, b.node, ran, hw, prev, red)
        out.append((b, m))
        prev = max(prev, red)
    return out


def _trunk_blocks(backend: Backend, node: Node, ran: dict, hw: tuple, lo: int, hi: int) -> list:
    """The children of an opened trunk at reductions in ``(lo, hi)``, in order; a child that
    itself spans several resolutions is opened the same way. Children, not deeper layers: the
    /4 block of DenseNet's ``features`` is ``denseblock1``, not the conv inside
    ``transition1`` that runs before its pool."""
    kids = [k for k in children_of(backend, node) if id(k.layer) in ran]
    kids.sort(key=lambda k: ran[id(k.layer)][0])
    out: list = []
    prev = lo
    for k, m in zip(kids, _read_maps([ran[id(k.layer)][1] for k in kids], hw)):
        if m is None:
            continue
        red = m.reduction(hw)
        if red > 2 * prev and children_of(backend, k):
            out += _trunk_blocks(backend, k, ran, hw, prev, min(red, hi))
        if lo < red < hi:
            out.append((_Probed(k, ran[id(k.layer)][1], ran[id(k.layer)][0], False), m))
        prev = max(prev, red)
    return out


def _expansion_tail(body: list, hw: tuple) -> bool:
    """Rule 3: whether the last body block is a head/expansion conv appended to the list of
    blocks or stages (ReXNet's ``features[16]``, torchvision MobileNetV2/V3's and
    EfficientNet's last ``features`` conv): a layer of another class than the block before
    it, at the same resolution, widening its channels 4x or more (a block like the others
    that widens, MobileOne-S0's last, stays a block). An expansion that is a stage of its
    own (the only block of its container: MobileNetV3's ``blocks[6]`` in timm) is kept, as
    timm lists it."""
    (b, m), (a, p) = body[-1], body[-2]
    return (b.node.parent is not None and b.node.siblings > 1 and type(b.node.layer) is not type(a.node.layer)
            and m.reduction(hw) == p.reduction(hw) and m.layout == p.layout and m.channels >= 4 * p.channels)


def _detect(backend: Backend, model: Any, input_shape: Sequence[int]) -> tuple[list[_Stage], list[_Probed]]:
    ran = _probe_all(backend, model, input_shape)
    return _detect_from(backend, model, ran, (int(input_shape[-2]), int(input_shape[-1])))


def _detect_from(backend: Backend, model: Any, ran: dict, hw: tuple) -> tuple[list[_Stage], list[_Probed]]:
    """The stage rule on a probe's record ``ran`` (``{id(layer): (order, shape)}``); it reads
    the model only through ``backend.children`` and ``backend.container_kind``."""
    blocks = _blocks(backend, model, ran)
    maps = list(zip(blocks, _read_maps([b.shape for b in blocks], hw)))
    maps = [(b, m) for b, m in maps if m is not None]
    inner = _internal(maps, ran, hw)
    maps = _open_trunks(backend, [(b, m) for b, m in maps if id(b.node.layer) not in inner], ran, hw)
    body = [(b, m) for b, m in maps if b.body]
    if len(body) > 2 and _expansion_tail(body, hw):  # rule 3: a head conv ending a flat list of blocks
        maps = [(b, m) for b, m in maps if b is not body[-1][0]]
        body = body[:-1]
    elif not body and len(maps) > 2 and _expansion_tail(maps, hw):  # no body: the same at the top level
        maps = maps[:-1]
    if body:  # rule 3: the head is what follows the last body block at its resolution
        last_b, last_m = body[-1]
        maps = [(b, m) for b, m in maps if b.order <= last_b.order or m.reduction(hw) != last_m.reduction(hw)]
    stages: list[_Stage] = []
    if body and len({m.reduction(hw) for _, m in body}) == 1 and len(body) > 1:
        homes = [b.node.parent.layer for b, _ in body]  # the body container: the one holding the most
        home = max(homes, key=lambda h: sum(x is h for x in homes))  # blocks (XCiT's class-attention
        first = next(m for b, m in body if b.node.parent.layer is home)  # blocks, CrossViT's patch
        stages = [_Stage(b.node, m, b.order, True) for b, m in body       # embeddings are not)
                  if m.layout == first.layout and b.node.parent.layer is home]
    else:
        for i, (b, m) in enumerate(maps):
            nxt = maps[i + 1][1] if i + 1 < len(maps) else None
            if nxt is None or nxt.reduction(hw) != m.reduction(hw):
                stages.append(_Stage(b.node, m, b.order, b.body))
        deepest = 0  # coarser and coarser: a map back at a finer resolution (HRNet's branches, CoaT's
        kept = []    # per-scale norms after the last stage) is not a stage
        for st in stages:
            if st.map.reduction(hw) > deepest:
                kept.append(st)
                deepest = st.map.reduction(hw)
        stages = kept
        for s in stages:  # rule 4 (not in isotropic bodies: blocks[0..10] and then "blocks" would mislead)
            s.node = _lifted(backend, s.node, ran)
    return stages, blocks


def _to_nchw(backend: Backend, m: _Map):
    """The runtime conversion of one stage's output to (B, C, H, W), or None."""
    layout = _layout_to_nchw(backend, m)
    if m.part is None:
        return layout
    i = m.part
    if layout is None:
        return lambda out: out[i]
    return lambda out: layout(out[i])


def _layout_to_nchw(backend: Backend, m: _Map):
    if m.layout == "NCHW":
        return None
    if m.layout == "NHWC":
        return lambda t: backend.permute(t, (0, 3, 1, 2))
    h, w, c, k = m.grid[0], m.grid[1], m.channels, m.prefix

    def tokens(t):
        if k:
            t = backend.slice_from(t, 1, k)
        return backend.permute(backend.reshape(t, (-1, h, w, c)), (0, 3, 1, 2))

    return tokens


def features(model: Any, out_indices: Optional[Union[int, Sequence[int]]] = None,
             stages: Optional[Sequence[str]] = None, input_shape: Sequence[int] = (1, 3, 224, 224)) -> Any:
    """features_only for any model: a new module returning multi-scale feature maps.

    Stages are detected by one probe forward on ``input_shape`` zeros with the rule in
    this module's docstring (README "Stage conventions"): the output of the last block of
    each resolution of the body, never a head/expansion conv nor a layer inside the next
    block; every block of an isotropic (ViT-like) body. Token ``(B, N, C)`` and
    channels-last ``(B, H, W, C)`` outputs are returned as ``(B, C, H, W)`` maps.
    Pass ``stages`` (descriptors) to choose them yourself; layouts, channels and reductions
    are still measured.

    Args:
        out_indices: stage indices to return (negative allowed), or an int ``n`` meaning
            the last ``n`` stages; None means all. Out of range is an error.
        stages: descriptors to use as stages instead of detection.
        input_shape: the probe input's shape.

    Returns:
        A new native module whose forward returns a list of ``(B, C, H, W)`` feature maps,
        shallow to deep; its ``feature_info`` (a ``FeatureInfo``) describes them in the
        same order. No layer after the deepest selected stage runs.

    Example:
        >>> feat = theseus.features(net, out_indices=[1, 2, 3, 4])    # doctest: +SKIP
        >>> feat.feature_info.reduction()                               # doctest: +SKIP
        [4, 8, 16, 32]
    """
    backend = backend_of(model)
    input_shape = check_input_shape(input_shape, "features: input_shape", min_dims=3)
    wanted = check_out_indices(out_indices)
    backend.check_hooks_usable(model)
    hw = (int(input_shape[-2]), int(input_shape[-1]))
    found: list[tuple[Node, _Map]] = []
    if stages is not None:
        nodes = [n for _, n in _resolve_nodes(backend, model, _as_list(stages, "features(stages=...)"))]
        ran = _probe_all(backend, model, input_shape)
        shapes = [ran.get(id(n.layer), (None, None))[1] for n in nodes]
        if any(_ambiguous(shp, hw) for shp in shapes):  # ambiguous: read it as its neighbours are
            blocks = _blocks(backend, model, ran)
            reading = dict(zip((id(b.node.layer) for b in blocks), _read_maps([b.shape for b in blocks], hw)))
        for n, shp in zip(nodes, shapes):
            m = _as_map(shp, hw)
            if _ambiguous(shp, hw):
                m = reading.get(id(n.layer)) or _read_maps([shp] + [b.shape for b in blocks], hw)[0]
            if m is None:
                raise InvalidArgumentError(
                    f"features: stage {n.text!r} did not produce a feature map (got {shp}) on a probe of shape "
                    f"{tuple(input_shape)}; a stage outputs (B, C, H, W), (B, H, W, C) or (B, N, C) tokens of a "
                    "grid of the input")
            found.append((n, m))
    else:
        found = [(s.node, s.map) for s in _detect(backend, model, input_shape)[0]]
    if not found:
        raise LayerNotFoundError("", "features: no stage found (no layer produced a (B, C, H, W), (B, H, W, C) or "
                                 "token map smaller than the input); pass stages=[...] explicitly")
    table = []
    for i, (n, m) in enumerate(found):
        entry = {"name": n.text, "channels": m.channels, "reduction": m.reduction(hw), "index": i}
        if m.part is not None:
            entry["element"] = m.part
        if m.layout != "NCHW":
            entry["layout"] = m.layout
            if m.layout == "tokens":
                entry["prefix_tokens"] = m.prefix
        table.append(entry)
    picked = pick_out_indices(wanted, [t["name"] for t in table])
    info = FeatureInfo(dict(table[i]) for i in picked)
    selected = OrderedDict((table[i]["name"], found[i][0].layer) for i in picked)
    convert = [_to_nchw(backend, found[i][1]) for i in picked]
    collector = _Collector(backend, model, selected, stop_early=True)
    names = list(selected)

    def forward(*inputs: Any) -> list:
        buf, _ = collector.run(*inputs)
        return [buf[n] if f is None else f(buf[n]) for n, f in zip(names, convert)]

    module = collector.attach(backend.wrap(model, forward, "FeatureListNet"))
    setattr(module, "feature_info", info)
    _mark_unused(backend, module, model, input_shape)
    return module


def _mark_unused(backend: Backend, module: Any, model: Any, input_shape: Sequence[int],
                 what: str = "features") -> list[str]:
    """Run the new module once on zeros (eval, modes restored); the parameters of layers that
    never STARTED are unused by it: tell the backend (data parallelism) and return them."""
    if type(backend).ignore_unused is Backend.ignore_unused:  # nothing to tell this framework
        return []
    started: set = set()
    me = threading.get_ident()
    layers = {id(n.layer): n.layer for n in walk(backend, model)}
    handles = [backend.add_forward_pre_hook(layer, lambda m, i: started.add(id(m)) if threading.get_ident() == me
                                            else None) for layer in layers.values()]
    try:
        probe_forward(backend, module, tuple(input_shape), what)
    finally:
        for h in handles:
            h.remove()
    used = {id(p) for lid in started for _, p in backend.parameters(layers[lid], recurse=False)}
    used |= {id(p) for _, p in backend.parameters(model, recurse=False)}
    unused = [name for name, p in backend.parameters(module) if id(p) not in used]
    if unused:
        backend.ignore_unused(module, unused)
    return unused


def stage_plan(model: Any, input_shape: Sequence[int] = (1, 3, 224, 224)) -> dict:
    """For ``freeze_stages``: the detected stages and the blocks, in completion order.

    Returns ``{"stages": [(descriptor, reduction, order)], "blocks": [(node, order, body)]}``.
    """
    backend = backend_of(model)
    input_shape = check_input_shape(input_shape, "freeze_stages: input_shape", min_dims=3)
    stages, blocks = _detect(backend, model, input_shape)
    hw = (int(input_shape[-2]), int(input_shape[-1]))
    return {"stages": [(s.node, s.map.reduction(hw), s.order) for s in stages],
            "blocks": [(b.node, b.order, b.body) for b in blocks]}


def truncate(model: Any, descriptor: str, input_shape: Optional[Sequence[int]] = None) -> Any:
    """A new module whose forward returns exactly the named layer's output and runs
    nothing after it (early exit), whatever functional code the model's ``forward`` has
    after that layer (``flatten``, token pooling, ``x.mean(...)``).

    The source model is not changed (its layers are shared); compare ``stop_after``, which
    changes the model in place and still runs the functional code in ``forward``. Works in
    the same execution modes as ``extract``.

    Args:
        model: a model of any backend.
        descriptor: one layer (not a pattern), e.g. ``"blocks[5]"``.
        input_shape: when given, the new module runs once on zeros of this shape (eval,
            modes restored) and the parameters of the layers that never start are put on the
            framework's data-parallel ignore list (torch DDP's
            ``_ddp_params_and_buffers_to_ignore``), so ``DistributedDataParallel`` trains it
            without unused-parameter errors, as for ``features``. Without it nothing runs.

    Returns:
        A new native module (child ``model``) returning that layer's output.

    Example:
        >>> head = theseus.truncate(vit, "blocks[5]")    # doctest: +SKIP
        >>> head(x).shape                                 # doctest: +SKIP
        torch.Size([2, 197, 768])
    """
    backend = backend_of(model)
    if not isinstance(descriptor, str):
        _as_list(descriptor, "truncate")  # raises the standard message for non-descriptors
    from ._grammar import parse

    if parse(descriptor).is_pattern:
        raise LayerNotFoundError(str(descriptor), f"truncate needs one layer, but {str(descriptor)!r} is a pattern; "
                                 "name a single layer such as 'blocks[5]'")
    node = lookup(backend, model, descriptor)
    if input_shape is not None:
        input_shape = check_input_shape(input_shape, "truncate: input_shape")
    backend.check_hooks_usable(model)
    key = node.text
    collector = _Collector(backend, model, OrderedDict([(key, node.layer)]), stop_early=True)

    def forward(*inputs: Any) -> Any:
        buf, _ = collector.run(*inputs)
        return buf[key]

    module = collector.attach(backend.wrap(model, forward, "Truncated"))
    if input_shape is not None:
        try:
            _mark_unused(backend, module, model, input_shape, "truncate")
        except BaseException:
            for h in collector.handles:   # the model keeps no hook of a module never returned
                h.remove()
            raise
    return module
