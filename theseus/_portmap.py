"""``PortMap``: which tensor of one implementation is which tensor of another.

One row per tensor: source descriptor + neutral role (+ its native names and the transform
its layer's class needs) -> destination descriptor + role (+ native names, transform).
Printable as a table, saved as stable sorted JSON that loads back identically, invertible,
and usable without either model (``translate``, ``apply`` on a checkpoint's weights).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional, Union

import numpy as np

from ._errors import InvalidArgumentError, LayerNotFoundError, StateMismatchError
from ._grammar import parse

__all__ = ["PortMap", "Row", "Side"]

_FORMAT = "theseus.portmap/1"


class Row(NamedTuple):
    """One tensor: ``src``/``src_role`` (native ``src_native`` through ``src_transform``)
    -> ``dst``/``dst_role`` (native ``dst_native`` through ``dst_transform``); ``shape`` is
    the neutral shape."""

    src: str
    src_role: str
    src_native: tuple
    src_transform: str
    dst: str
    dst_role: str
    dst_native: tuple
    dst_transform: str
    shape: tuple

    @property
    def src_key(self) -> str:
        return f"{self.src}.{self.src_role}" if self.src else self.src_role

    @property
    def dst_key(self) -> str:
        return f"{self.dst}.{self.dst_role}" if self.dst else self.dst_role

    def inverse(self) -> "Row":
        return Row(self.dst, self.dst_role, self.dst_native, self.dst_transform,
                   self.src, self.src_role, self.src_native, self.src_transform, self.shape)


@dataclass
class Side:
    """What the map keeps of one model: its type, its descriptors (definition order) and
    each matched unit's family/kernel/stride/padding (``units``: ``{descriptor: info}``)."""

    model: str
    backend: str
    nodes: list = field(default_factory=list)
    units: dict = field(default_factory=dict)

    @classmethod
    def of(cls, model: Any, units: list, nodes: list) -> "Side":
        from ._backend import backend_of

        t = type(model)
        info = {}
        for u in units:
            d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in u.info.items()}
            if u.in_shape is not None:
                d["in_shape"] = list(u.in_shape)
            if u.out_shape is not None:
                d["out_shape"] = list(u.out_shape)
            info[u.desc] = d
        return cls(f"{t.__module__}.{t.__qualname__}", backend_of(model).name, list(nodes), info)

    def to_json(self) -> dict:
        return {"model": self.model, "backend": self.backend, "nodes": self.nodes,
                "units": {k: self.units[k] for k in sorted(self.units)}}

    @classmethod
    def from_json(cls, d: Mapping) -> "Side":
        return cls(d["model"], d["backend"], list(d["nodes"]), dict(d["units"]))


def _transforms() -> dict:
    try:
        from ._layout import TRANSFORMS
    except ImportError:  # before the per-tensor layout protocol: neutral keys only
        one = (lambda arrays: arrays[0], lambda array, shapes: [array])
        t = (lambda arrays: np.ascontiguousarray(arrays[0].T), lambda array, shapes: [np.ascontiguousarray(array.T)])
        return {"identity": one, "transpose": t}
    return TRANSFORMS


def _under(desc: str, node: str) -> bool:
    return node == "" or desc == node or desc.startswith(node + ".") or desc.startswith(node + "[")


class PortMap:
    """A tensor-by-tensor map between two implementations (see ``theseus.match``).

    Example:
        >>> pm = theseus.match(src, dst, x)                    # doctest: +SKIP
        >>> print(pm)                                          # doctest: +SKIP
        >>> pm.save("map.json"); PortMap.load("map.json") == pm  # doctest: +SKIP
        True
        >>> pm.translate("blocks[10]")                         # doctest: +SKIP
        'features[13]'
    """

    def __init__(self, rows: list, layers: list, src: Side, dst: Side):
        self.rows = sorted((Row(*r) for r in rows), key=lambda r: (r.src, r.src_role))
        self.layers = [tuple(p) for p in layers]     # (src descriptor, dst descriptor), source execution order
        self.src = src
        self.dst = dst

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortMap) and self.to_json() == other.to_json()

    def transforms(self) -> dict:
        """``{(src transform, dst transform): number of tensors}``."""
        out: dict = {}
        for r in self.rows:
            out[(r.src_transform, r.dst_transform)] = out.get((r.src_transform, r.dst_transform), 0) + 1
        return out

    def __str__(self) -> str:
        head = ("source", "role", "destination", "role", "shape", "transform")
        body = [(r.src or "(root)", r.src_role, r.dst or "(root)", r.dst_role, "x".join(map(str, r.shape)) or "-",
                 f"{r.src_transform}->{r.dst_transform}") for r in self.rows]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [f"PortMap {self.src.model} ({self.src.backend}) -> {self.dst.model} ({self.dst.backend}): "
               f"{len(self.rows)} tensors, {len(self.layers)} layers", line(head), line("-" * w for w in widths)]
        return "\n".join(out + [line(b) for b in body])

    def __repr__(self) -> str:
        return f"<PortMap {self.src.model} -> {self.dst.model}: {len(self.rows)} tensors>"

    # -- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": _FORMAT,
            "src": self.src.to_json(),
            "dst": self.dst.to_json(),
            "layers": [list(p) for p in self.layers],
            "tensors": [{"src": r.src, "src_role": r.src_role, "src_native": list(r.src_native),
                         "src_transform": r.src_transform, "dst": r.dst, "dst_role": r.dst_role,
                         "dst_native": list(r.dst_native), "dst_transform": r.dst_transform,
                         "shape": list(r.shape)} for r in self.rows],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, d: Mapping) -> "PortMap":
        if not isinstance(d, Mapping) or d.get("format") != _FORMAT:
            raise InvalidArgumentError(f"not a theseus port map (expected \"format\": \"{_FORMAT}\")")
        try:
            rows = [Row(t["src"], t["src_role"], tuple(t["src_native"]), t["src_transform"], t["dst"],
                        t["dst_role"], tuple(t["dst_native"]), t["dst_transform"], tuple(t["shape"]))
                    for t in d["tensors"]]
            return cls(rows, [tuple(p) for p in d["layers"]], Side.from_json(d["src"]), Side.from_json(d["dst"]))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidArgumentError(f"malformed port map: {type(err).__name__}: {err}") from None

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the map as sorted, indented JSON (diff-friendly, editable by hand)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.dumps())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "PortMap":
        """Read a map written by ``save``."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise InvalidArgumentError(f"cannot read port map {os.fspath(path)!r}: {err}") from None
        return cls.from_json(data)

    # -- using it ------------------------------------------------------------------------
    def inverse(self) -> "PortMap":
        """The map from the destination back to the source."""
        return PortMap([r.inverse() for r in self.rows], [(b, a) for a, b in self.layers], self.dst, self.src)

    def translate(self, descriptor: str) -> str:
        """The destination descriptor of the smallest part covering exactly the same paired
        layers as ``descriptor`` does in the source (deepest such layer).

        Raises:
            LayerNotFoundError: the descriptor is not a layer of the source, or no single
                destination layer covers exactly its paired layers (the closest are named).
        """
        text = str(parse(descriptor))
        if text not in self.src.nodes and text != "":
            raise LayerNotFoundError(text, f"{text!r} is not a layer of the source model ({self.src.model})")
        fwd = dict(self.layers)
        mine = {s for s in fwd if _under(s, text)}
        if not mine:
            raise LayerNotFoundError(text, f"{text!r} holds no paired layer, so it has no counterpart")
        image = {fwd[s] for s in mine}
        back = {d for _, d in self.layers}
        best, near = None, []
        for node in self.dst.nodes:
            covered = {d for d in back if _under(d, node)}
            if covered == image:
                if best is None or node.count(".") + node.count("[") >= best.count(".") + best.count("["):
                    best = node
            elif image <= covered:
                near.append((len(covered - image), node))
        if best is None:
            near.sort()
            raise LayerNotFoundError(text, f"no single layer of the destination ({self.dst.model}) holds exactly "
                                     f"the layers paired with {text!r}; smallest containing: "
                                     f"{', '.join(n for _, n in near[:3]) or 'only the whole model'}")
        return best

    def apply(self, weights: Mapping[str, Any], prefix: Optional[str] = None, native: bool = False,
              keys: str = "auto") -> dict:
        """The destination's weights from the source's: keys looked up by the source's native
        names (checkpoint files) or neutral keys, after removing ``prefix`` (``"backbone."``,
        ``"module."``...). Returns neutral keys for ``load_state`` (or, with ``native=True``,
        the destination's native names and layouts, for its own checkpoint files).

        Raises:
            StateMismatchError: a tensor of the map is missing or has another shape (all
                listed); keys under ``prefix`` that the map does not use are listed too.
        """
        pairs = self._read(weights, prefix, keys)
        TRANSFORMS = _transforms()
        out = {}
        for r, arr in pairs:
            if native:
                out.update(zip(r.dst_native, TRANSFORMS[r.dst_transform][1](arr, [None] * len(r.dst_native))))
            else:
                out[r.dst_key] = arr
        return out

    def source_state(self, weights: Mapping[str, Any], prefix: Optional[str] = None, keys: str = "auto") -> dict:
        """The source model's neutral state from its checkpoint's weights (for ``load_state``
        into a source model, e.g. to verify a checkpoint port)."""
        return {r.src_key: arr for r, arr in self._read(weights, prefix, keys)}

    def _read(self, weights: Mapping[str, Any], prefix: Optional[str], keys: str = "auto") -> list:
        if keys not in ("auto", "native", "neutral"):
            raise InvalidArgumentError(f"keys must be 'auto', 'native' or 'neutral', got {keys!r}")
        TRANSFORMS = _transforms()
        if not isinstance(weights, Mapping):
            raise InvalidArgumentError(f"apply expects a mapping name -> array, got {type(weights).__name__}")
        if prefix:
            under = {k[len(prefix):]: v for k, v in weights.items() if isinstance(k, str) and k.startswith(prefix)}
            if not under:
                close = sorted({k.split(".")[0] + "." for k in weights if isinstance(k, str)})[:5]
                raise InvalidArgumentError(f"prefix {prefix!r} matches no key of the weights; key prefixes: "
                                           f"{', '.join(close) or 'none'}")
            weights = under
        out, missing, bad, used = [], [], [], set()
        if keys == "auto":   # a checkpoint holds native names; theseus.state() neutral keys
            n_native = sum(bool(r.src_native) and all(n in weights for n in r.src_native) for r in self.rows)
            n_neutral = sum(r.src_key in weights for r in self.rows)
            keys = "native" if n_native >= n_neutral and n_native else "neutral"
        for r in self.rows:
            if keys == "native" and r.src_native and all(n in weights for n in r.src_native):
                arrays = [np.asarray(weights[n]) for n in r.src_native]
                used.update(r.src_native)
                arr = TRANSFORMS[r.src_transform][0](arrays)
            elif keys == "neutral" and r.src_key in weights:
                arr = np.asarray(weights[r.src_key])
                used.add(r.src_key)
            else:
                missing.append(r.src_key)
                continue
            if tuple(arr.shape) != tuple(r.shape):
                bad.append(f"{r.src_key} {tuple(arr.shape)} (map: {tuple(r.shape)})")
                continue
            out.append((r, arr))
        unused = [k for k in weights if k not in used and not str(k).endswith("num_batches_tracked")]
        if missing or bad:
            raise StateMismatchError(
                f"the weights do not fit the port map ({self.src.model}): "
                + "; ".join(p for p in (f"missing {len(missing)}: {', '.join(missing[:5])}" if missing else "",
                                        f"shape-mismatched {len(bad)}: {'; '.join(bad[:5])}" if bad else "",
                                        f"not in the map {len(unused)}: {', '.join(map(str, unused[:5]))}"
                                        if unused else "") if p))
        self.unused = unused
        return out
