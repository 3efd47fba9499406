"""The PaddlePaddle adapter: enumeration, replacement, hooks, flags, tensors in/out.

Imports paddle lazily (inside methods), so that loading the entry point never imports it.

Paddle traps handled here (see FRAMEWORK_FACTS.md):

* ``seq[1] = new`` on a *named* ``Sequential`` appends a new child ``"1"``;
  ``replace_child`` writes ``_sub_layers[name]`` (which ``Sequential.forward`` iterates).
* BatchNorm running statistics ``_mean``/``_variance`` are Parameters (stop_gradient);
  ``parameters`` leaves them out, ``tensors`` names them ``running_mean``/``running_var``.
* ``Linear.weight`` is stored ``[in, out]``; the neutral layout is ``[out, in]``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle, TensorEntry, UnsupportedOperation
from theseus._backend import INSTALL_HINTS, IndexingLayouts
from theseus._wrapper import make_wrapper

__all__ = ["PaddleBackend"]

_STATS = ("_mean", "_variance")
_NORM_RENAMES = {"_mean": "running_mean", "_variance": "running_var"}


def _nn():
    import paddle.nn as nn

    return nn


def _norm_types() -> tuple:
    nn = _nn()
    from paddle.nn.layer.norm import _BatchNormBase

    return (nn.BatchNorm, _BatchNormBase)


def _renames(layer: Any) -> dict:
    """Paddle attribute -> neutral role, by the layer's class."""
    nn = _nn()
    from paddle.nn.layer.norm import _InstanceNormBase

    if isinstance(layer, _norm_types()):
        return _NORM_RENAMES
    if isinstance(layer, _InstanceNormBase):
        return {"scale": "weight"}
    if isinstance(layer, nn.PReLU):
        return {"_weight": "weight"}
    return {}


class PaddleBackend(IndexingLayouts, Backend):
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

    def version(self, tensor: Any) -> Any:
        return getattr(tensor, "inplace_version", None)

    def copy(self, tensor: Any) -> Any:
        return tensor.clone() if hasattr(tensor, "clone") else tensor

    def infer(self, model: Any, *inputs: Any) -> Any:
        import paddle

        with paddle.no_grad():
            return model(*inputs)

    # -- modes and training ------------------------------------------------------------
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

    def gradients(self, model: Any, *inputs: Any) -> dict:
        params = self.parameters(model)
        model.clear_gradients()
        out = model(*inputs)
        out = out["output"] if isinstance(out, dict) else out
        out.sum().backward()
        return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in params}

    # -- neutral weights -----------------------------------------------------------------
    def tensors(self, layer: Any) -> list:
        """Parameters, then persistable buffers, as ``state_dict`` lists them; roles converted
        by class: norm statistics ``_mean``/``_variance``, InstanceNorm ``scale``, PReLU
        ``_weight``, Linear ``[in, out]`` (transposed), MultiHeadAttention's q/k/v projections
        (fused as torch's ``in_proj_weight``/``in_proj_bias`` when the dimensions agree)."""
        nn = _nn()
        if isinstance(layer, nn.MultiHeadAttention) and layer.kdim == layer.vdim == layer.embed_dim:
            qkv = ("q_proj", "k_proj", "v_proj")
            out = [TensorEntry(tuple(f"{p}.weight" for p in qkv), "in_proj_weight", "concat_transposed")]
            if all(getattr(layer, p).bias is not None for p in qkv):
                out.append(TensorEntry(tuple(f"{p}.bias" for p in qkv), "in_proj_bias", "concat"))
            return out
        rename = _renames(layer)
        out = []
        for n, p in layer._parameters.items():
            if p is not None:
                role = rename.get(n, n)
                out.append(TensorEntry(n, role, "transpose" if role == "weight" and isinstance(layer, nn.Linear)
                                       else "identity"))
        skip = layer._non_persistable_buffer_names_set
        return out + [TensorEntry(n, rename.get(n, n)) for n, b in layer._buffers.items()
                      if b is not None and n not in skip]

    def _own(self, layer: Any, attr: str) -> Any:
        t = layer._parameters.get(attr)
        return layer._buffers[attr] if t is None else t

    def tensor_shape(self, layer: Any, native: str) -> tuple:
        return tuple(self._own(layer, native).shape)

    def read_tensor(self, layer: Any, native: str) -> np.ndarray:
        return np.array(self._own(layer, native).numpy(), copy=True)

    def write_tensor(self, layer: Any, native: str, array: np.ndarray) -> None:
        import paddle

        t = self._own(layer, native)
        t.set_value(paddle.to_tensor(np.array(array, order="C"), dtype=t.dtype))

    # -- building new modules ----------------------------------------------------------
    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        return make_wrapper(_nn().Layer, model, forward, type_name)

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
