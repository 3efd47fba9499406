"""The numeric oracle: seeded neutral MobileNetV1 weights and the framework-free reference
network that computes what every backend must reproduce.

Example:
    >>> from theseus_conformance.oracle import neutral_weights, oracle_net
    >>> w = neutral_weights(seed=0)
    >>> w["blocks[0].depthwise_conv.conv.weight"].shape
    (32, 1, 3, 3)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import theseus

__all__ = ["neutral_weights", "oracle_net", "reference_backend"]


def reference_backend() -> Any:
    """The reference backend, registered through the public path if it is not yet."""
    from .reference import ReferenceBackend

    if "reference" not in theseus.backends():
        theseus.register_backend(ReferenceBackend())
    return theseus.get_backend("reference")


@functools.lru_cache(maxsize=4)
def _weights(seed: int, scale: float, class_num: int) -> tuple:
    from .reference import MobileNetV1

    reference_backend()
    names = theseus.state(MobileNetV1(scale=scale, class_num=class_num))
    rs = np.random.RandomState(seed)
    out = {}
    for key, arr in names.items():
        kind = key.rpartition(".")[2]
        if kind == "weight" and arr.ndim == 4:
            w = rs.standard_normal(arr.shape) * np.sqrt(2.0 / np.prod(arr.shape[1:]))
        elif kind == "weight" and arr.ndim == 2:
            w = rs.standard_normal(arr.shape) * np.sqrt(1.0 / arr.shape[1])
        elif kind == "weight":                          # BN scale
            w = rs.uniform(0.5, 1.5, arr.shape)
        elif kind == "bias":
            w = rs.standard_normal(arr.shape) * 0.1
        elif kind == "running_mean":
            w = rs.standard_normal(arr.shape) * 0.1
        else:                                           # running_var
            w = rs.uniform(0.5, 1.5, arr.shape)
        out[key] = w.astype(np.float32)
    return tuple(out.items())


def neutral_weights(seed: int = 0, scale: float = 1.0, class_num: int = 1000) -> dict[str, np.ndarray]:
    """Seeded MobileNetV1 weights in the neutral layout, with non-trivial BN statistics
    (means ~N(0, 0.1), variances and scales ~U(0.5, 1.5)). Fresh copies on every call."""
    return {k: v.copy() for k, v in _weights(seed, scale, class_num)}


def oracle_net(weights: dict[str, np.ndarray], scale: float = 1.0, class_num: int = 1000) -> Any:
    """The reference MobileNetV1 in eval mode holding ``weights``."""
    from .reference import MobileNetV1

    reference_backend()
    net = MobileNetV1(scale=scale, class_num=class_num)
    net.eval()
    theseus.load_state(net, weights)
    return net
