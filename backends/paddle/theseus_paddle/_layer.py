"""``TheseusLayer`` for PaddlePaddle: an ``nn.Layer`` with the seed's method API."""

from __future__ import annotations

from collections import OrderedDict

import paddle.nn as nn

from theseus import TheseusLayerMixin

__all__ = ["TheseusLayer", "LAYERS"]

#: Layer constructors under the conformance spec's node names (also the spec builder's table).
LAYERS = {
    "conv": lambda cin, cout, k, stride, padding, groups, bias: nn.Conv2D(
        cin, cout, k, stride=stride, padding=padding, groups=groups, bias_attr=None if bias else False),
    "bn": nn.BatchNorm2D, "relu": nn.ReLU, "identity": nn.Identity, "flatten": nn.Flatten,
    "pool": lambda: nn.AdaptiveAvgPool2D(1), "linear": nn.Linear, "dropout": nn.Dropout,
    "seq": lambda kids: nn.Sequential(*kids), "named_seq": lambda kids: nn.Sequential(*kids),
    "list": nn.LayerList, "dict": lambda kids: nn.LayerDict(OrderedDict(kids)),
}


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
