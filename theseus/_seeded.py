"""One framework-free seeded initialisation: equal seeds give equal weights on every backend."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["seeded_init", "seeded_weights"]


def seeded_weights(shapes: Mapping[str, tuple], seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays ``seeded_init`` writes, for tensors named and shaped as in ``shapes``
    (neutral state keys, or any dotted names in the same order with the same endings).

    Draws from one ``numpy.random.RandomState(seed)`` stream, in the order of ``shapes``:
    He-normal convolution kernels (4-D ``*.weight``, ``std = sqrt(2 / fan_in)``),
    LeCun-normal linear weights (2-D ``*.weight``, ``sqrt(1 / fan_in)``) and zeros for those
    linear layers' ``bias``; ``fan_in`` is the product of the shape after the first axis.

    Example:
        >>> w = seeded_weights({"fc.weight": (2, 4), "fc.bias": (2,)}, seed=0)
        >>> list(w), w["fc.bias"].tolist()
        (['fc.weight', 'fc.bias'], [0.0, 0.0])
    """
    rng = np.random.RandomState(seed)
    new: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        owner, _, kind = key.rpartition(".")
        shape = tuple(shape)
        if kind != "weight" or len(shape) not in (2, 4):
            continue
        fan_in = int(np.prod(shape[1:]))
        gain = 2.0 if len(shape) == 4 else 1.0
        new[key] = (rng.standard_normal(shape) * (gain / fan_in) ** 0.5).astype(np.float32)
        bias = f"{owner}.bias" if owner else "bias"
        if len(shape) == 2 and bias in shapes:
            new[bias] = np.zeros(tuple(shapes[bias]), np.float32)
    return new


def seeded_init(model: Any, seed: int = 0) -> list[str]:
    """Initialise ``model`` deterministically, the same way on every framework: the
    ``seeded_weights`` of its neutral state (``theseus.state``) loaded with
    ``theseus.load_state``. Other tensors (normalisation scales, statistics, conv biases)
    keep their values, so two models with the same structure and seed hold the same
    weights, whatever their backends.

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

    new = seeded_weights({k: v.shape for k, v in state(model).items()}, seed)
    load_state(model, new, strict=False)
    return list(new)
