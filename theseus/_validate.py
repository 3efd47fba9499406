"""Argument validators shared by the operations: each turns one kind of user input into a
clean value or raises a ``TheseusError`` that names the argument and says what is right.

They run before anything is changed or allocated (no framework, no probe forward, no
``np.zeros`` sees an unchecked value).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._errors import InvalidArgumentError, clip_repr

__all__ = [
    "MAX_PROBE_ELEMENTS",
    "WEIGHT_KINDS",
    "check_array",
    "check_input_shape",
    "check_out_indices",
    "pick_out_indices",
    "as_index",
]

#: Largest probe input ``features``/``tree`` allocate (elements of float32: 1 GiB).
MAX_PROBE_ELEMENTS = 2**28

#: numpy dtype kinds a weight may have: bool, signed and unsigned integers, reals.
WEIGHT_KINDS = frozenset("biuf")


def as_index(value: Any) -> Optional[int]:
    """``value`` as a Python int when it is an integer (``int``, ``np.int64``, 0-d integer
    arrays), never for ``bool``; otherwise None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "iu":
            return None
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return None


def check_array(key: str, value: Any) -> np.ndarray:
    """``value`` as a numpy array of a real, integer or bool dtype, or an error naming ``key``.

    Refused: ragged nested lists, strings (numeric strings too), bytes, objects, complex,
    datetime/timedelta and structured values. Nothing is pickled or evaluated.

    Example:
        >>> check_array("fc.weight", [[1.0, 2.0]]).shape
        (1, 2)
    """
    if isinstance(value, (str, bytes)):
        raise InvalidArgumentError(f"weight {clip_repr(key)}: got a {type(value).__name__} {clip_repr(value)}; "
                                   "weights are arrays of numbers (bool, integer or real)")
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise InvalidArgumentError(f"weight {clip_repr(key)}: {type(value).__name__} is not a rectangular array of "
                                   f"numbers ({clip_repr(str(err))})") from None
    if arr.dtype.kind not in WEIGHT_KINDS or arr.dtype.fields is not None:
        what = {"O": "Python objects", "U": "strings", "S": "bytes", "c": "complex numbers", "M": "datetimes",
                "m": "timedeltas", "V": "structured records"}.get(arr.dtype.kind, "values")
        raise InvalidArgumentError(f"weight {clip_repr(key)}: dtype {arr.dtype} holds {what}; weights must be bool, "
                                   "integer or real arrays (convert it, e.g. np.asarray(v, dtype=np.float32))")
    return arr


def check_input_shape(shape: Any, what: str = "input_shape", min_dims: int = 1) -> tuple[int, ...]:
    """A probe input shape as a tuple of positive ints, bounded by ``MAX_PROBE_ELEMENTS``.

    Example:
        >>> check_input_shape([1, 3, 64, 64])
        (1, 3, 64, 64)
    """
    hint = "e.g. (1, 3, 224, 224)"
    if isinstance(shape, (str, bytes, Mapping)) or not isinstance(shape, (Iterable, np.ndarray)):
        raise InvalidArgumentError(f"{what} must be a sequence of positive integers ({hint}), got "
                                   f"{type(shape).__name__} {clip_repr(shape)}")
    if isinstance(shape, np.ndarray) and shape.ndim != 1:
        raise InvalidArgumentError(f"{what} must be a flat sequence of positive integers ({hint}), "
                                   f"got an array of shape {shape.shape}")
    items = list(shape) if not isinstance(shape, np.ndarray) else list(shape.tolist())
    dims = []
    for d in items[:65]:
        i = as_index(d)
        if i is None or i < 1:
            raise InvalidArgumentError(f"{what} must be positive integers ({hint}); got {clip_repr(d)} in "
                                       f"{clip_repr(shape)}")
        dims.append(i)
    if not min_dims <= len(items) <= 32:
        raise InvalidArgumentError(f"{what} must have {min_dims} to 32 dimensions ({hint}), got {len(items)}")
    total = 1
    for d in dims:
        total *= d
    if total > MAX_PROBE_ELEMENTS:
        raise InvalidArgumentError(f"{what} {clip_repr(tuple(dims))} has {total} elements; a probe input is limited "
                                   f"to {MAX_PROBE_ELEMENTS} (use a small batch and resolution, {hint})")
    return tuple(dims)


def check_out_indices(out_indices: Any) -> Union[None, int, tuple[int, ...]]:
    """``features(out_indices=...)`` checked for type before any probe: None, an int ``n``
    (the last ``n`` stages) or a sequence of ints (numpy integers accepted, bools and
    floats refused)."""
    if out_indices is None:
        return None
    i = as_index(out_indices)
    if i is not None:
        return i
    if isinstance(out_indices, (str, bytes, Mapping)) or not isinstance(out_indices, (Iterable, np.ndarray)):
        raise InvalidArgumentError(f"features: out_indices must be None, an int n (the last n stages) or a list of "
                                   f"stage indices such as [1, 2, 3]; got {type(out_indices).__name__} "
                                   f"{clip_repr(out_indices)}")
    out = []
    for v in out_indices:
        i = as_index(v)
        if i is None:
            raise InvalidArgumentError(f"features: out_indices must hold integers, got {type(v).__name__} "
                                       f"{clip_repr(v)} in {clip_repr(out_indices)}")
        out.append(i)
    return tuple(out)


def pick_out_indices(out_indices: Union[None, int, tuple[int, ...]], names: Sequence[str]) -> list[int]:
    """Sorted, de-duplicated stage positions that checked ``out_indices`` select among the
    stages ``names``; out of range is an error that lists the stages."""
    count = len(names)
    if out_indices is None:
        return list(range(count))
    if isinstance(out_indices, int):
        if not 1 <= out_indices <= count:
            raise InvalidArgumentError(f"features: out_indices={out_indices} asks for the last {out_indices} of "
                                       f"{count} stages; use 1..{count}")
        return list(range(count - out_indices, count))
    picked = set()
    for i in out_indices:
        if not -count <= i < count:
            raise InvalidArgumentError(
                f"features: out_index {i} is out of range for {count} stages "
                f"({', '.join(names)}); valid: {-count}..{count - 1}")
        picked.add(i % count)
    return sorted(picked)
