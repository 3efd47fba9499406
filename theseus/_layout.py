"""The neutral weight layout: how a backend's native tensors map to neutral names.

A backend lists, per layer, ``TensorEntry(native, neutral, transform)``: which native
tensor(s) (attribute paths relative to the layer) make one neutral tensor, under which
neutral name, through which named transform. The transforms are written here, once, in
numpy; backends only name them. Framework-free. See docs/neutral-layout.md.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence, Union

import numpy as np

__all__ = ["TensorEntry", "TRANSFORMS", "OPTIONAL_ROLES", "to_neutral", "from_neutral"]

#: Neutral roles a framework may keep or not (torch's BatchNorm ``num_batches_tracked``):
#: absent on one side, they are reported (``LoadReport.defaulted``/``ignored``), not errors.
OPTIONAL_ROLES = frozenset({"num_batches_tracked"})


class TensorEntry(NamedTuple):
    """One neutral tensor of a layer.

    Attributes:
        native: the native attribute name (``"weight"``, ``"_mean"``, ``"gamma"``), or a
            tuple of attribute paths relative to the layer when several native tensors make
            one neutral tensor (Paddle ``("q_proj.weight", "k_proj.weight", "v_proj.weight")``).
        neutral: the neutral name under the layer's descriptor (``"weight"``, ``"running_var"``,
            or the native name unchanged for tensors without a known role: ``"cls_token"``).
        transform: a key of ``TRANSFORMS``: ``"identity"``, ``"transpose"`` (2-D, Paddle
            Linear ``[in, out]``), ``"concat"`` (along axis 0), ``"concat_transposed"``.
    """

    native: Union[str, tuple]
    neutral: str
    transform: str = "identity"

    @property
    def natives(self) -> tuple:
        return (self.native,) if isinstance(self.native, str) else tuple(self.native)


def _one(fn: Callable[[np.ndarray], np.ndarray]):
    def fwd(arrays: Sequence[np.ndarray]) -> np.ndarray:
        (a,) = arrays
        return fn(a)

    def inv(array: np.ndarray, shapes: Sequence[tuple]) -> list:
        return [fn(array)]

    return fwd, inv


def _concat(transposed: bool):
    def fwd(arrays: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([a.T if transposed else a for a in arrays], axis=0)

    def inv(array: np.ndarray, shapes: Sequence[tuple]) -> list:
        sizes = [s[-1] if transposed else s[0] for s in shapes]
        parts = np.split(array, np.cumsum(sizes)[:-1], axis=0)
        return [np.ascontiguousarray(p.T) if transposed else p for p in parts]

    return fwd, inv


#: name -> (to_neutral(list of native arrays) -> array, from_neutral(array, native shapes) -> list)
TRANSFORMS = {
    "identity": _one(lambda a: a),
    "transpose": _one(lambda a: np.ascontiguousarray(a.T)),
    "concat": _concat(False),
    "concat_transposed": _concat(True),
}


def to_neutral(entry: TensorEntry, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The neutral array of ``entry`` from its native arrays (in ``entry.natives`` order)."""
    return TRANSFORMS[entry.transform][0](arrays)


def from_neutral(entry: TensorEntry, array: np.ndarray, shapes: Sequence[tuple]) -> list:
    """The native arrays of ``entry`` (shapes of the current native tensors given)."""
    return TRANSFORMS[entry.transform][1](array, shapes)
