"""``TheseusLayer`` for MindSpore: an ``nn.Cell`` with the seed's method API."""

from __future__ import annotations

from theseus import TheseusLayerMixin

from ._runtime import mindspore

nn = mindspore.nn

__all__ = ["TheseusLayer"]


class TheseusLayer(TheseusLayerMixin, nn.Cell):
    """Base class with ``stop_after``/``update_res``/``upgrade_sublayer`` methods.

    Subclasses build their layers, then call ``self.init_res(return_patterns)``.

    Example:
        >>> import numpy as np, mindspore
        >>> class Net(TheseusLayer):
        ...     def __init__(self, return_patterns=None):
        ...         super().__init__()
        ...         self.fc = nn.Dense(4, 2)
        ...         self.init_res(return_patterns)
        ...     def construct(self, x):
        ...         return self.fc(x)
        >>> sorted(Net(return_patterns=["fc"])(mindspore.Tensor(np.zeros((1, 4), np.float32))))
        ['fc', 'output']
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
