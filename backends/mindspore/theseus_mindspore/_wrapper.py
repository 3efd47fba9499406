"""A native nn.Cell around a Python forward (used by theseus.extract / theseus.features)."""

from __future__ import annotations

from typing import Any, Callable

from theseus._wrapper import make_wrapper as _make

from ._runtime import in_jit, mindspore

_GRAPH_MSG = ("theseus.extract/features modules collect layer outputs with Python hooks, which MindSpore "
              "GRAPH_MODE and mindspore.jit compile away; call them in PyNative mode "
              "(mindspore.set_context(mode=mindspore.PYNATIVE_MODE))")

nn = mindspore.nn

__all__ = ["TheseusWrapper", "make_wrapper"]


class TheseusWrapper(nn.Cell):
    """The base of MindSpore wrappers (``theseus._wrapper.make_wrapper``): refuses graph mode.

    Built with ``auto_prefix=False``: attaching ``model`` does not rename its parameters
    (MindSpore names are fixed at attach time, and the parameters are shared with the source
    model), so ``model``'s parameter names stay exactly what they were.
    """

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        if mindspore.get_context("mode") == mindspore.GRAPH_MODE:
            from theseus import UnsupportedOperation

            raise UnsupportedOperation(_GRAPH_MSG, "hooks")
        return super().__call__(*inputs, **kwargs)

    def construct(self, *inputs: Any) -> Any:
        if in_jit():  # constant-folded by the graph compiler: the Python forward is never compiled
            raise RuntimeError(_GRAPH_MSG)
        return self._theseus_forward(*inputs)


def make_wrapper(model: nn.Cell, forward: Callable[..., Any], type_name: str) -> nn.Cell:
    """A ``TheseusWrapper`` subclass instance named ``type_name`` (one class per name)."""
    return _make(TheseusWrapper, model, forward, type_name, forward_name=None, auto_prefix=False)
