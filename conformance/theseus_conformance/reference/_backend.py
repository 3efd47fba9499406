"""``ReferenceBackend``: the theseus ``Backend`` for the numpy reference layers.

Its own layout is the neutral one (``weight``/``bias``/``running_mean``/``running_var``; conv
``[out, in/groups, kh, kw]``, linear ``[out, in]``), and its tensors are numpy arrays.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle, TensorEntry
from theseus._backend import IndexingLayouts
from theseus._wrapper import make_wrapper

from ._layers import BatchNorm2d, Identity, Layer, LayerDict, LayerList, Parameter, Sequential

__all__ = ["ReferenceBackend"]

def _array(t: Any) -> Any:
    return t.data if isinstance(t, Parameter) else t


class ReferenceBackend(IndexingLayouts, Backend):
    """The framework-free backend: models are ``theseus_conformance.reference.Layer`` trees.

    Example:
        >>> import theseus
        >>> theseus.register_backend(ReferenceBackend(), replace=True)
        >>> from theseus_conformance.reference import MobileNetV1
        >>> theseus.list_descriptors(MobileNetV1(scale=0.25))[:3]
        ['conv', 'conv.conv', 'conv.bn']
    """

    name = "reference"
    framework = None
    install_hint = "pip install theseus-surgery-conformance"
    capabilities = frozenset({"hooks", "threads", "state", "wrap", "freeze", "train_eval", "layouts"})

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, Layer)

    def children(self, layer: Any) -> list:
        return list(layer.named_children())

    def container_kind(self, layer: Any) -> ContainerKind:
        if isinstance(layer, (Sequential, LayerList)):
            return ContainerKind.SEQUENCE
        if isinstance(layer, LayerDict):
            return ContainerKind.DICT
        return ContainerKind.PLAIN

    def replace_child(self, parent: Any, name: str, new: Any) -> None:
        parent._children[name] = new  # an existing key keeps its position

    def identity(self) -> Any:
        return Identity()

    def add_forward_hook(self, layer: Any, fn: Callable) -> HookHandle:
        return HookHandle(layer.register_forward_hook(fn).remove)

    def add_forward_pre_hook(self, layer: Any, fn: Callable) -> HookHandle:
        def pre(module: Any, args: tuple) -> None:
            fn(module, args)

        return HookHandle(layer.register_forward_pre_hook(pre).remove)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(_array(tensor), copy=True)

    def from_numpy(self, array: np.ndarray) -> Any:
        return np.array(array, copy=True)

    def permute(self, tensor: Any, dims: tuple) -> Any:
        return np.transpose(tensor, dims)

    def is_training(self, layer: Any) -> bool:
        return bool(layer.training)

    def set_training(self, layer: Any, mode: bool, recurse: bool = True) -> None:
        if recurse:
            layer.train(mode)
        else:
            layer.training = bool(mode)

    def is_norm(self, layer: Any) -> bool:
        return isinstance(layer, BatchNorm2d)

    def parameters(self, layer: Any, recurse: bool = True) -> list:
        return list(layer.named_parameters(recurse=recurse))

    def is_trainable(self, param: Any) -> bool:
        return bool(param.requires_grad)

    def set_trainable(self, param: Any, flag: bool) -> None:
        param.requires_grad = bool(flag)

    def tensors(self, layer: Any) -> list:
        out = [TensorEntry(n, n) for n, p in layer._params.items() if p is not None]
        return out + [TensorEntry(n, n) for n, b in layer._buffers.items() if b is not None]

    def read_tensor(self, layer: Any, native: str) -> np.ndarray:
        p = layer._params.get(native)
        return np.array(p.data if p is not None else layer._buffers[native], copy=True)

    def write_tensor(self, layer: Any, native: str, array: np.ndarray) -> None:
        p = layer._params.get(native)
        if p is not None:
            p.data = np.array(array, copy=True)
        else:
            layer._buffers[native] = np.array(array, copy=True)

    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        return make_wrapper(Layer, model, forward, type_name)
