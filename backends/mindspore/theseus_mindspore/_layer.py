"""``TheseusLayer`` for MindSpore: an ``nn.Cell`` with the seed's method API."""

from __future__ import annotations

from collections import OrderedDict

from theseus import TheseusLayerMixin

from ._runtime import mindspore

nn = mindspore.nn

__all__ = ["TheseusLayer", "LAYERS"]

#: Layer constructors under the conformance spec's node names (also the spec builder's table).
#: Convs use ``pad_mode='pad'`` (MindSpore's default ``'same'`` differs); ``Dropout(p=)`` by
#: keyword (its first positional argument is ``keep_prob``).
LAYERS = {
    "conv": lambda cin, cout, k, stride, padding, groups, bias: nn.Conv2d(
        cin, cout, k, stride=stride, pad_mode="pad", padding=padding, group=groups, has_bias=bias),
    "bn": lambda c: nn.BatchNorm2d(c, momentum=0.9), "relu": nn.ReLU, "identity": nn.Identity,
    "flatten": nn.Flatten, "pool": lambda: nn.AdaptiveAvgPool2d(1), "linear": nn.Dense,
    "dropout": lambda p: nn.Dropout(p=p),
    "seq": nn.SequentialCell, "named_seq": lambda kids: nn.SequentialCell(OrderedDict(kids)),
    "list": nn.CellList, "dict": lambda kids: nn.CellDict(OrderedDict(kids)),
}


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
