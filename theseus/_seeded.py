"""One framework-free seeded initialisation: equal seeds give equal weights on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["seeded_init"]


def seeded_init(model: Any, seed: int = 0) -> list[str]:
    """Initialise ``model`` deterministically, the same way on every framework.

    Draws from one ``numpy.random.RandomState(seed)`` stream, in the neutral state order
    (``theseus.state``): He-normal convolution kernels (``std = sqrt(2 / fan_in)``),
    LeCun-normal linear weights (``sqrt(1 / fan_in)``) and zero linear biases, where
    ``fan_in`` is the product of the neutral shape after the first axis. Other tensors
    (normalisation scales, statistics, conv biases) keep their values. So two models with the
    same structure and seed hold the same weights, whatever their backends.

    Args:
        model: a model of an installed backend with the ``state`` capability.
        seed: the seed of the numpy stream.

    Returns:
        The state keys that were written, in order.

    Example:
        >>> from theseus_torch import MobileNetV1            # doctest: +SKIP
        >>> seeded_init(MobileNetV1(), seed=1)[:2]           # doctest: +SKIP
        ['conv.conv.weight', 'blocks[0].depthwise_conv.conv.weight']
    """
    from ._state import load_state, state

    current = state(model)
    rng = np.random.RandomState(seed)
    new: dict[str, np.ndarray] = {}
    for key, arr in current.items():
        owner, _, kind = key.rpartition(".")
        if kind != "weight" or arr.ndim not in (2, 4):
            continue
        fan_in = int(np.prod(arr.shape[1:]))
        gain = 2.0 if arr.ndim == 4 else 1.0
        new[key] = (rng.standard_normal(arr.shape) * (gain / fan_in) ** 0.5).astype(arr.dtype)
        bias = f"{owner}.bias" if owner else "bias"
        if arr.ndim == 2 and bias in current:
            new[bias] = np.zeros_like(current[bias])
    load_state(model, new, strict=False)
    return list(new)
