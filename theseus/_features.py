"""``features``: stage detection and multi-scale feature maps, on the ``extract`` collector."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Optional, Sequence, Union

from ._backend import Backend, ContainerKind, backend_of
from ._errors import InvalidArgumentError, LayerNotFoundError
from ._extract import _Collector
from ._ops import _as_list, _resolve_nodes
from ._validate import check_input_shape, check_out_indices, pick_out_indices
from ._walk import Node, children_of, probe_forward, root_node

__all__ = ["features", "FeatureInfo"]


class FeatureInfo(list):
    """Per selected stage: ``{"name", "channels", "reduction", "index"}`` (timm-style)."""

    def channels(self) -> list[int]:
        return [f["channels"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def names(self) -> list[str]:
        return [f["name"] for f in self]


def _candidates(backend: Backend, model: Any) -> list[Node]:
    """Stage candidates: the root's children, with sequence containers flattened."""
    out: list[Node] = []

    def visit(node: Node) -> None:
        for k in children_of(backend, node):
            if backend.container_kind(k.layer) is ContainerKind.SEQUENCE and children_of(backend, k):
                visit(k)
            else:
                out.append(k)

    visit(root_node(model))
    return out


def _probe(backend: Backend, model: Any, nodes: list[Node], input_shape: Sequence[int]) -> list[tuple[Node, tuple]]:
    """(node, output shape) in completion order, from one forward on zeros."""
    order: list[tuple[Node, tuple]] = []
    me = threading.get_ident()
    handles = []
    for n in nodes:
        def hook(layer, inputs, output, n=n):
            if threading.get_ident() == me:
                order.append((n, backend.shape(output)))
        handles.append(backend.add_forward_hook(n.layer, hook))
    try:
        probe_forward(backend, model, tuple(input_shape), "features")
    finally:
        for h in handles:
            h.remove()
    return order


def features(model: Any, out_indices: Optional[Union[int, Sequence[int]]] = None,
             stages: Optional[Sequence[str]] = None, input_shape: Sequence[int] = (1, 3, 224, 224)) -> Any:
    """features_only for any model: a new module returning multi-scale feature maps.

    Stages are detected by one probe forward on ``input_shape`` zeros: among the root's
    children (sequence containers flattened), the last layer before each spatial
    reduction (global pooling to 1×1 is not a stage). Pass ``stages`` (descriptors) to
    choose them yourself; channels and reductions are still measured.

    Args:
        out_indices: stage indices to return (negative allowed), or an int ``n`` meaning
            the last ``n`` stages; None means all. Out of range is an error.
        stages: descriptors to use as stages instead of detection.
        input_shape: the probe input's shape.

    Returns:
        A new native module whose forward returns a list of feature maps, shallow to deep
        (stage order, whatever order ``out_indices`` was given in); its ``feature_info``
        (a ``FeatureInfo``) describes them in the same order. No layer after the deepest
        selected stage runs.

    Example:
        >>> feat = theseus.features(net, out_indices=[1, 2, 3, 4])    # doctest: +SKIP
        >>> feat.feature_info.reduction()                               # doctest: +SKIP
        [4, 8, 16, 32]
    """
    backend = backend_of(model)
    input_shape = check_input_shape(input_shape, "features: input_shape", min_dims=3)
    wanted = check_out_indices(out_indices)
    backend.check_hooks_usable(model)
    if stages is not None:
        nodes = [n for _, n in _resolve_nodes(backend, model, _as_list(stages, "features(stages=...)"))]
    else:
        nodes = _candidates(backend, model)
    probed = _probe(backend, model, nodes, input_shape)
    in_h = input_shape[-2]
    info_all = []
    if stages is not None:
        by_id = {id(n.layer): shp for n, shp in probed}
        for n in nodes:
            shp = by_id.get(id(n.layer))
            if shp is None or len(shp) != 4:
                raise InvalidArgumentError(f"features: stage {n.text!r} did not produce a 4-D feature map "
                                           f"(got {shp}) on a probe of shape {tuple(input_shape)}")
            info_all.append((n, shp))
    else:
        maps = [(n, s) for n, s in probed if s is not None and len(s) == 4 and not (s[-1] == 1 and s[-2] == 1)]
        for i, (n, s) in enumerate(maps):
            nxt = maps[i + 1][1] if i + 1 < len(maps) else None
            if nxt is None or nxt[-2] != s[-2]:
                info_all.append((n, s))
    if not info_all:
        raise LayerNotFoundError("", "features: no stage found (no layer produced a 4-D feature map smaller than "
                                 "the input); pass stages=[...] explicitly")
    table = [{"name": n.text, "channels": int(s[1]), "reduction": int(round(in_h / s[-2])), "index": i}
             for i, (n, s) in enumerate(info_all)]
    picked = pick_out_indices(wanted, [t["name"] for t in table])
    info = FeatureInfo(dict(table[i]) for i in picked)
    selected = OrderedDict((table[i]["name"], info_all[i][0].layer) for i in picked)
    collector = _Collector(backend, model, selected, stop_early=True)
    names = list(selected)

    def forward(*inputs: Any) -> list:
        buf, _ = collector.run(*inputs)
        return [buf[n] for n in names]

    module = collector.attach(backend.wrap(model, forward, "FeatureListNet"))
    setattr(module, "feature_info", info)
    return module
