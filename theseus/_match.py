"""Pair the layers of two implementations of one network: ``theseus.match``.

What survives differences of framework, names, nesting, container types and definition
order is used: the execution order of a probe forward on each side and a signature per
layer (family, parameter shapes by neutral role, kernel/stride/groups/dilation, output
shape), read through ``Backend.layer_info``. Ties are broken by descriptor similarity.
Nothing is guessed silently: an unmatched or ambiguous layer is a ``MatchError`` that
lists it with its candidates.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ._backend import backend_of
from ._errors import TheseusError
from ._walk import children_of, eval_mode, walk

if TYPE_CHECKING:  # the annotation only: _portmap is imported where match builds one
    from ._portmap import PortMap

__all__ = ["MatchError", "match", "Unit", "probe_units"]

#: Tensors a framework may keep or not (torch BatchNorm): never part of a signature.
_OPTIONAL = frozenset({"num_batches_tracked"})


class MatchError(TheseusError):
    """Layers of two models that could not be paired (``unmatched``: ``{side: [(descriptor,
    [candidates])]}``)."""

    def __init__(self, message: str, unmatched: Optional[dict] = None):
        super().__init__(message)
        self.unmatched = unmatched or {}


@dataclass
class Unit:
    """One layer as the matcher sees it: a layer holding tensors, or a called leaf layer."""

    desc: str
    type_name: str
    info: dict
    params: tuple                      # ((neutral role, shape), ...) sorted
    out_shape: Optional[tuple] = None
    in_shape: Optional[tuple] = None
    order: Optional[int] = None        # first call in the probe forward
    tensors: list = field(default_factory=list)   # [(neutral role, native names, transform)]

    @property
    def family(self) -> str:
        return self.info.get("family", "other")

    def signature(self) -> tuple:
        i = self.info
        return (self.family, self.params, i.get("kernel"), i.get("stride"), i.get("groups"),
                i.get("dilation"), self.out_shape)

    def describe(self) -> str:
        parts = [self.family]
        for k in ("kernel", "stride", "groups"):
            if self.info.get(k) is not None:
                parts.append(f"{k}={self.info[k]}")
        if self.params:
            parts.append(", ".join(f"{r}{list(s)}" for r, s in self.params))
        if self.out_shape is not None:
            parts.append(f"-> {list(self.out_shape)}")
        return " ".join(parts)


def _layout(model: Any) -> list:
    """``[(key, native names, transform)]`` for every neutral tensor of ``model``."""
    from . import _state

    if hasattr(_state, "state_layout"):
        return [(e.key, tuple(e.native), e.transform) for e in _state.state_layout(model)]
    return [(k, (), "identity") for k in _state.state(model)]


def _shape_of(backend: Any, out: Any) -> Optional[tuple]:
    while isinstance(out, (list, tuple)) and out:
        out = out[0]
    if isinstance(out, dict) and out:
        out = next(iter(out.values()))
    try:
        return backend.shape(out)
    except Exception:  # noqa: BLE001 - not a tensor
        return None


def probe_units(model: Any, example_input: Any) -> tuple[list, list]:
    """The model's units in execution order (uncalled ones last) and every descriptor in
    definition order. One forward in eval mode; training flags restored."""
    backend = backend_of(model)
    from . import _state

    weights = _state.state(model)
    owned: dict = {}
    for key, native, transform in _layout(model):
        desc, _, role = key.rpartition(".")
        owned.setdefault(desc, []).append((role, native, transform, tuple(weights[key].shape)))
    nodes = list(walk(backend, model))
    order: dict = {}
    shapes: dict = {}
    handles = []
    counter = [0]
    for node in nodes:
        def pre(layer, inputs, key=node.text):
            if key not in order:
                order[key] = counter[0]
                counter[0] += 1
                shapes.setdefault(key, [None, _shape_of(backend, inputs)])

        def post(layer, inputs, output, key=node.text):
            if shapes.get(key, [None])[0] is None:
                shapes.setdefault(key, [None, None])[0] = _shape_of(backend, output)

        handles.append(backend.add_forward_pre_hook(node.layer, pre))
        handles.append(backend.add_forward_hook(node.layer, post))
    x = example_input if not isinstance(example_input, np.ndarray) else backend.from_numpy(example_input)
    try:
        with eval_mode(backend, model):
            backend.infer(model, x)
    finally:
        for h in handles:
            h.remove()
    units = []
    for node in [None, *nodes]:
        desc = "" if node is None else node.text
        layer = model if node is None else node.layer
        mine = owned.get(desc)
        leaf = node is not None and not children_of(backend, node)
        if not mine and not (leaf and desc in order):
            continue
        params = tuple(sorted((r, s) for r, _, _, s in (mine or []) if r not in _OPTIONAL))
        out_shape, in_shape = shapes.get(desc, [None, None])
        units.append(Unit(desc, backend.type_name(layer), dict(backend.layer_info(layer)), params,
                          out_shape, in_shape, order.get(desc),
                          [(r, n, t) for r, n, t, _ in (mine or [])]))
    units.sort(key=lambda u: (u.order is None, u.order if u.order is not None else 0))
    return units, [n.text for n in nodes]


_TOKEN = re.compile(r"[A-Za-z]+|\d+")


def similarity(a: str, b: str) -> float:
    """How alike two descriptors read (0..1), on their name and number tokens."""
    return difflib.SequenceMatcher(None, _TOKEN.findall(a.lower()), _TOKEN.findall(b.lower())).ratio()


def _align(src: list, dst: list) -> list:
    """Order-preserving pairing of equal signatures maximising (pairs, similarity)."""
    n, m = len(src), len(dst)
    ss = [u.signature() for u in src]
    ds = [u.signature() for u in dst]
    score = [[(0, 0.0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, nxt = score[i], score[i + 1]
        for j in range(m - 1, -1, -1):
            best = max(nxt[j], row[j + 1])
            if ss[i] == ds[j]:
                c, s = nxt[j + 1]
                cand = (c + 1, s + similarity(src[i].desc, dst[j].desc))
                if cand > best:
                    best = cand
            row[j] = best
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if ss[i] == ds[j]:
            c, s = score[i + 1][j + 1]
            if (c + 1, s + similarity(src[i].desc, dst[j].desc)) == score[i][j]:
                pairs.append((i, j))
                i, j = i + 1, j + 1
                continue
        if score[i + 1][j] == score[i][j]:
            i += 1
        else:
            j += 1
    return pairs


def _pair_leftovers(src: list, dst: list, pairs: list) -> tuple[list, list, list]:
    """Pair units the alignment left out (execution order differing between the two
    implementations) by signature; ties by similarity; returns (pairs, unmatched, ambiguous)."""
    used_s = {i for i, _ in pairs}
    used_d = {j for _, j in pairs}
    left_s = [i for i in range(len(src)) if i not in used_s]
    left_d = [j for j in range(len(dst)) if j not in used_d]
    ambiguous = []
    for i in left_s:
        cands = [j for j in left_d if src[i].signature() == dst[j].signature()]
        if not cands:
            continue
        sims = sorted(((similarity(src[i].desc, dst[j].desc), j) for j in cands), reverse=True)
        if len(sims) > 1 and sims[0][0] == sims[1][0]:
            ambiguous.append((src[i].desc, [dst[j].desc for _, j in sims]))
            continue
        j = sims[0][1]
        pairs.append((i, j))
        left_d.remove(j)
    used_s = {i for i, _ in pairs}
    unmatched_s = [i for i in range(len(src)) if i not in used_s]
    return pairs, unmatched_s, left_d, ambiguous


def _candidates(unit: Unit, others: list) -> list:
    same = [o for o in others if o.family == unit.family]
    same.sort(key=lambda o: (-sum(a == b for a, b in zip(o.signature(), unit.signature())),
                             -similarity(unit.desc, o.desc)))
    return [f"{o.desc or '(root)'} ({o.describe()})" for o in same[:3]]


def _pair_parameter_free(src: list, dst: list, anchors: list) -> list:
    """Called parameter-free leaves, paired where one of a kind (family, kernel, stride,
    output shape) sits between the same two paired layers on each side."""
    def gaps(units, anchors):
        out: dict = {}
        pos = 0
        for u in units:
            if u.desc in anchors:
                pos = anchors[u.desc]
            elif not u.params and u.order is not None:
                key = (pos, u.family, u.info.get("kernel"), u.info.get("stride"), u.out_shape)
                out.setdefault(key, []).append(u)
        return out

    ranked = sorted(anchors, key=lambda p: p[0].order if p[0].order is not None else 1 << 30)
    a_src = {s.desc: k + 1 for k, (s, _) in enumerate(ranked)}
    a_dst = {d.desc: k + 1 for k, (_, d) in enumerate(ranked)}
    g_src, g_dst = gaps(src, a_src), gaps(dst, a_dst)
    out = []
    for key, us in g_src.items():
        ud = g_dst.get(key, [])
        if len(us) == 1 and len(ud) == 1 and key[1] != "other":
            out.append((us[0], ud[0]))
    return out


def match(src: Any, dst: Any, example_input: Any) -> "PortMap":
    """Pair every layer holding weights (and, where unambiguous, every parameter-free layer)
    of two models that may differ in framework, names, nesting, containers and definition
    order; one row per tensor in the returned ``PortMap``.

    Args:
        src, dst: models of any installed backend(s).
        example_input: a numpy array (or ``{"src": array, "dst": array}`` when the two take
            different layouts) for one probe forward of each model, in eval mode.

    Raises:
        MatchError: layers holding weights that could not be paired, or could be paired in
            several ways, each listed with its candidates. Nothing is paired silently.

    Example:
        >>> pm = theseus.match(paddle_resnet, timm_resnet, np.zeros((1, 3, 64, 64), "float32"))  # doctest: +SKIP
        >>> pm.translate("blocks[2]")                                                         # doctest: +SKIP
        'layer1[2]'
    """
    from ._portmap import PortMap, Row, Side

    xs = example_input if isinstance(example_input, dict) else {"src": example_input, "dst": example_input}
    su, s_nodes = probe_units(src, xs["src"])
    du, d_nodes = probe_units(dst, xs["dst"])
    sp = [u for u in su if u.params]
    dp = [u for u in du if u.params]
    pairs = _align([u for u in sp if u.order is not None], [u for u in dp if u.order is not None])
    # indices above are into the called-only lists; map them back to sp/dp
    called_s = [k for k, u in enumerate(sp) if u.order is not None]
    called_d = [k for k, u in enumerate(dp) if u.order is not None]
    pairs = [(called_s[i], called_d[j]) for i, j in pairs]
    pairs, left_s, left_d, ambiguous = _pair_leftovers(sp, dp, pairs)
    problems: dict = {}
    if left_s or left_d or ambiguous:
        lines = []
        if left_s:
            problems["src"] = [(sp[i].desc, _candidates(sp[i], [dp[j] for j in left_d] or dp)) for i in left_s]
        if left_d:
            problems["dst"] = [(dp[j].desc, _candidates(dp[j], [sp[i] for i in left_s] or sp)) for j in left_d]
        if ambiguous:
            problems["ambiguous"] = ambiguous
        for side, what in (("src", "source"), ("dst", "destination")):
            for desc, cands in problems.get(side, []):
                unit = next(u for u in (sp if side == "src" else dp) if u.desc == desc)
                called = "" if unit.order is not None else " (not called by the probe forward)"
                lines.append(f"  {what} {desc or '(root)'}: {unit.describe()}{called}; candidates: "
                             f"{'; '.join(cands) or 'none of the same family'}")
        for desc, cands in ambiguous:
            lines.append(f"  source {desc} is ambiguous between {', '.join(cands)}")
        raise MatchError(f"match could not pair {len(left_s) + len(ambiguous)} source and {len(left_d)} destination "
                         "layers holding weights (nothing was paired):\n" + "\n".join(lines), problems)
    pf = _pair_parameter_free(su, du, [(sp[i], dp[j]) for i, j in pairs])
    rows = []
    for i, j in pairs:
        s, d = sp[i], dp[j]
        dmap = {r: (n, t) for r, n, t in d.tensors}
        for role, native, transform in s.tensors:
            if role not in dmap:
                continue  # an optional role kept on one side only (num_batches_tracked)
            shape = dict(s.params).get(role) or ()
            rows.append(Row(s.desc, role, tuple(native), transform, d.desc, role, tuple(dmap[role][0]),
                            dmap[role][1], tuple(shape)))
    layers = sorted([(sp[i], dp[j]) for i, j in pairs] + pf,
                    key=lambda p: p[0].order if p[0].order is not None else 1 << 30)
    return PortMap(rows, [(a.desc, b.desc) for a, b in layers],
                   Side.of(src, su, s_nodes), Side.of(dst, du, d_nodes))
