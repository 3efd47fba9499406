"""``TheseusLayer`` for PaddlePaddle: an ``nn.Layer`` with the seed's method API."""

from __future__ import annotations

import paddle.nn as nn

from theseus import TheseusLayerMixin

__all__ = ["TheseusLayer"]


class TheseusLayer(TheseusLayerMixin, nn.Layer):
    """Base class with ``stop_after``/``update_res``/``upgrade_sublayer`` methods.

    Subclasses build their layers, then call ``self.init_res(return_patterns)``.

    Example:
        >>> class Net(TheseusLayer):
        ...     def __init__(self, return_patterns=None):
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, 2)
        ...         self.init_res(return_patterns)
        ...     def forward(self, x):
        ...         return self.fc(x)
        >>> sorted(Net(return_patterns=["fc"])(__import__("paddle").zeros([1, 4])))
        ['fc', 'output']
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
