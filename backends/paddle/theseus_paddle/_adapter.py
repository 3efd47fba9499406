"""The PaddlePaddle adapter: enumeration, replacement, hooks, flags, tensors in/out.

Imports paddle lazily (inside methods), so that loading the entry point never imports it.

Paddle traps handled here (see FRAMEWORK_FACTS.md):

* ``seq[1] = new`` on a *named* ``Sequential`` appends a new child ``"1"``;
  ``replace_child`` writes ``_sub_layers[name]`` (which ``Sequential.forward`` iterates).
* BatchNorm running statistics ``_mean``/``_variance`` are Parameters (stop_gradient);
  ``parameters`` leaves them out, ``export_local`` names them ``running_mean``/``running_var``.
* ``Linear.weight`` is stored ``[in, out]``; the neutral layout is ``[out, in]``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle, UnsupportedOperation
from theseus._backend import INSTALL_HINTS

__all__ = ["PaddleBackend"]

#: neutral name -> Paddle attribute, for a layer's own weights.
_LOCAL = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance"}
_STATS = ("_mean", "_variance")


def _nn():
    import paddle.nn as nn

    return nn


def _norm_types() -> tuple:
    nn = _nn()
    from paddle.nn.layer.norm import _BatchNormBase

    return (nn.BatchNorm, _BatchNormBase)


class PaddleBackend(Backend):
    """theseus backend for ``paddle.nn.Layer`` models (dygraph mode)."""

    name = "paddle"
    framework = "paddle"
    install_hint = INSTALL_HINTS["paddle"]
    conformance_module = "theseus_paddle.conformance"
    parts_module = "theseus_paddle._parts"
    capabilities = frozenset({"hooks", "threads", "state", "wrap", "freeze", "gradients", "train_eval", "layouts"})

    # -- recognition and structure ---------------------------------------------------
    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, _nn().Layer)

    def children(self, layer: Any) -> list:
        return [(n, m) for n, m in layer._sub_layers.items() if m is not None]

    def container_kind(self, layer: Any) -> ContainerKind:
        nn = _nn()
        if isinstance(layer, (nn.Sequential, nn.LayerList)):
            return ContainerKind.SEQUENCE
        if isinstance(layer, nn.LayerDict):
            return ContainerKind.DICT
        return ContainerKind.PLAIN

    def replace_child(self, parent: Any, name: str, new: Any) -> None:
        # Assigning an existing key keeps its position; Sequential/LayerList/LayerDict and
        # attribute access all read ``_sub_layers``. Never ``seq[i] = new`` (appends on a
        # named Sequential).
        parent._sub_layers[name] = new

    def after_surgery(self, root: Any) -> None:
        """Drop the programs ``paddle.jit.to_static(full_graph=True)`` cached for ``root``
        and its sublayers, so the next call re-traces the changed structure instead of
        silently running the old program (the default SOT mode re-checks on its own)."""
        for _, layer in root.named_sublayers(include_self=True):
            cache = getattr(layer.__dict__.get("forward"), "_program_cache", None)
            if cache is not None:
                cache.clear()

    def identity(self) -> Any:
        return _nn().Identity()

    # -- hooks -------------------------------------------------------------------------
    def add_forward_hook(self, layer: Any, fn: Callable) -> HookHandle:
        return HookHandle(layer.register_forward_post_hook(fn).remove)

    def add_forward_pre_hook(self, layer: Any, fn: Callable) -> HookHandle:
        def pre(module: Any, args: tuple) -> None:
            fn(module, args)
            return None  # a returned value would replace the inputs in Paddle

        return HookHandle(layer.register_forward_pre_hook(pre).remove)

    def check_hooks_usable(self, model: Any) -> None:
        """Raise when a sublayer runs a ``to_static(full_graph=True)`` program: its hooks
        fire only once, at trace time, with symbolic values."""
        try:
            from paddle.jit.dy2static.program_translator import ASTStaticFunction
        except ImportError:  # pragma: no cover - older/newer Paddle without the class
            return
        for name, layer in model.named_sublayers(include_self=True):
            if isinstance(layer.__dict__.get("forward"), ASTStaticFunction):
                raise UnsupportedOperation(
                    f"{name or 'the model'} was converted with paddle.jit.to_static(full_graph=True), whose "
                    "forward hooks run once, at trace time, on symbolic values, so theseus cannot capture "
                    "outputs from it; capture first (theseus.extract/features/update_res) and convert the "
                    "result, or convert with the default full_graph=False", "hooks")

    # -- tensors -----------------------------------------------------------------------
    def to_numpy(self, tensor: Any) -> np.ndarray:
        out = tensor.numpy()            # Paddle's numpy() already copies (FRAMEWORK_FACTS)
        return out if isinstance(out, np.ndarray) and out.flags.owndata else np.array(out, copy=True)

    def from_numpy(self, array: np.ndarray) -> Any:
        import paddle

        return paddle.to_tensor(np.array(array, copy=True))

    def float64_copy(self, model: Any) -> Any:
        import copy

        twin = copy.deepcopy(model)
        twin.to(dtype="float64")
        return twin

    def infer(self, model: Any, *inputs: Any) -> Any:
        import paddle

        with paddle.no_grad():
            return model(*inputs)

    # -- modes and training ------------------------------------------------------------
    @staticmethod
    def _index(axis: int, start: int) -> tuple:
        return (slice(None),) * axis + (slice(start, None),)

    def slice_from(self, tensor: Any, axis: int, start: int) -> Any:
        return tensor[self._index(axis, start)]

    def reshape(self, tensor: Any, shape: tuple) -> Any:
        return tensor.reshape(list(shape))

    def permute(self, tensor: Any, dims: tuple) -> Any:
        return tensor.transpose(list(dims))

    def is_training(self, layer: Any) -> bool:
        return bool(layer.training)

    def set_training(self, layer: Any, mode: bool, recurse: bool = True) -> None:
        if recurse:
            layer.train() if mode else layer.eval()
        else:
            layer.training = bool(mode)

    def is_norm(self, layer: Any) -> bool:
        return isinstance(layer, _norm_types())

    def parameters(self, layer: Any, recurse: bool = True) -> list:
        subs = layer.sublayers(include_self=True) if recurse else [layer]
        stats = {id(s._parameters.get(k)) for s in subs if self.is_norm(s) for k in _STATS}
        return [(n, p) for n, p in layer.named_parameters(include_sublayers=recurse) if id(p) not in stats]

    def is_trainable(self, param: Any) -> bool:
        return not param.stop_gradient

    def set_trainable(self, param: Any, flag: bool) -> None:
        param.stop_gradient = not flag

    # -- neutral weights -----------------------------------------------------------------
    def _own(self, layer: Any, attr: str) -> Any:
        t = layer._parameters.get(attr)
        return layer._buffers.get(attr) if t is None else t

    def _transposed(self, layer: Any, name: str) -> bool:
        return name == "weight" and isinstance(layer, _nn().Linear)

    def gradients(self, model: Any, *inputs: Any) -> dict:
        params = self.parameters(model)
        model.clear_gradients()
        out = model(*inputs)
        out = out["output"] if isinstance(out, dict) else out
        out.sum().backward()
        return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in params}

    def export_local(self, layer: Any) -> dict:
        out = {}
        for name, attr in _LOCAL.items():
            t = self._own(layer, attr)
            if t is not None:
                arr = t.numpy()
                out[name] = np.array(arr.T if self._transposed(layer, name) else arr, copy=True)
        return out

    def import_local(self, layer: Any, arrays: dict) -> None:
        import paddle

        for name, arr in arrays.items():
            t = self._own(layer, _LOCAL.get(name, name))
            arr = np.asarray(arr)
            if self._transposed(layer, name):
                arr = arr.T
            t.set_value(paddle.to_tensor(np.ascontiguousarray(arr), dtype=t.dtype))

    # -- building new modules ----------------------------------------------------------
    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        from ._wrapper import make_wrapper

        return make_wrapper(model, forward, type_name)

    # -- layer signatures for theseus.match ------------------------------------------------
    def layer_info(self, layer: Any) -> dict:
        nn = _nn()
        from paddle.nn.layer.conv import _ConvNd

        if isinstance(layer, _ConvNd):
            return {"family": "conv", "kernel": tuple(layer._kernel_size), "stride": tuple(layer._stride),
                    "groups": int(layer._groups), "dilation": tuple(layer._dilation),
                    "padding": _pads(layer._padding)}
        if isinstance(layer, nn.Linear):
            return {"family": "linear"}
        if isinstance(layer, (*_norm_types(), nn.LayerNorm, nn.GroupNorm)):
            return {"family": "norm"}
        if isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
            return {"family": "max_pool" if isinstance(layer, nn.MaxPool2D) else "avg_pool",
                    "kernel": _pair(layer.ksize), "stride": _pair(layer.stride or layer.ksize),
                    "padding": _pads(layer.padding)}
        return super().layer_info(layer)

    def make_pool(self, family: str, kernel: tuple, stride: tuple, padding: Any) -> Any:
        nn = _nn()
        if padding == "same":
            if family != "max_pool":
                raise UnsupportedOperation("theseus builds TF-'same' padding for max pools only", "wrap")
            return nn.MaxPool2D(tuple(kernel), tuple(stride), padding="SAME")
        top, bottom, left, right = padding
        cls = nn.MaxPool2D if family == "max_pool" else nn.AvgPool2D
        if top == bottom and left == right:
            return cls(tuple(kernel), tuple(stride), (top, left))
        return cls(tuple(kernel), tuple(stride), [top, bottom, left, right])


def _pair(v: Any) -> tuple:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pads(padding: Any) -> Any:
    if isinstance(padding, str):
        return "same" if padding.upper() == "SAME" else padding.lower()
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)
    h, w = _pair(padding)
    return (h, h, w, w)
