"""A native nn.Layer around a Python forward (used by theseus.extract / theseus.features)."""

from __future__ import annotations

from typing import Any, Callable

import paddle.nn as nn

__all__ = ["TheseusWrapper", "make_wrapper"]


class TheseusWrapper(nn.Layer):
    """Holds ``model`` as child ``model`` (its state keys get the prefix ``model.``) and
    runs ``forward(*inputs)``."""

    def __init__(self, model: nn.Layer, forward: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self._theseus_forward = forward

    def forward(self, x: Any, *inputs: Any) -> Any:
        # An explicit first argument: paddle.jit.to_static rejects a bare ``*inputs``.
        return self._theseus_forward(x, *inputs)


_classes: dict[str, type] = {}


def make_wrapper(model: nn.Layer, forward: Callable[..., Any], type_name: str) -> nn.Layer:
    """A ``TheseusWrapper`` subclass instance whose class is named ``type_name``."""
    cls = _classes.get(type_name)
    if cls is None:
        cls = _classes[type_name] = type(type_name, (TheseusWrapper,), {"__module__": __name__})
    return cls(model, forward)
