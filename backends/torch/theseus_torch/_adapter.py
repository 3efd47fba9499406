"""The PyTorch adapter: enumeration, replacement, hooks, flags, tensors in/out.

Imports torch lazily (inside methods), so that loading the entry point never imports it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle, TensorEntry, UnsupportedOperation
from theseus._backend import INSTALL_HINTS, IndexingLayouts
from theseus._wrapper import make_wrapper

__all__ = ["TorchBackend"]


def _nn():
    import torch.nn as nn

    return nn


class TorchBackend(IndexingLayouts, Backend):
    name = "torch"
    framework = "torch"
    install_hint = INSTALL_HINTS["torch"]
    conformance_module = "theseus_torch.conformance"
    parts_module = "theseus_torch._parts"
    capabilities = frozenset({"hooks", "threads", "state", "wrap", "freeze", "gradients", "train_eval", "layouts"})

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, _nn().Module)

    def children(self, layer: Any) -> list:
        return [(n, m) for n, m in layer._modules.items() if m is not None]

    def container_kind(self, layer: Any) -> ContainerKind:
        nn = _nn()
        if isinstance(layer, (nn.Sequential, nn.ModuleList)):
            return ContainerKind.SEQUENCE
        if isinstance(layer, nn.ModuleDict):
            return ContainerKind.DICT
        return ContainerKind.PLAIN

    def replace_child(self, parent: Any, name: str, new: Any) -> None:
        # setattr on a registered name keeps its position in _modules (torch keeps order).
        parent._modules[name] = new

    def identity(self) -> Any:
        return _nn().Identity()

    def add_forward_hook(self, layer: Any, fn: Callable) -> HookHandle:
        return HookHandle(layer.register_forward_hook(fn).remove)

    def add_forward_pre_hook(self, layer: Any, fn: Callable) -> HookHandle:
        def pre(module, args):
            fn(module, args)
            return None

        return HookHandle(layer.register_forward_pre_hook(pre).remove)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return tensor.detach().cpu().numpy().copy()

    def from_numpy(self, array: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(np.array(array, copy=True))

    def version(self, tensor: Any) -> Any:
        import torch

        if torch.jit.is_tracing():  # a trace must record the same ops on every run: always copy
            return None
        return getattr(tensor, "_version", None)

    def copy(self, tensor: Any) -> Any:
        return tensor.clone() if hasattr(tensor, "clone") else tensor

    def infer(self, model: Any, *inputs: Any) -> Any:
        import torch

        with torch.no_grad():
            return model(*inputs)

    def float64_copy(self, model: Any) -> Any:
        import copy

        return copy.deepcopy(model).double()

    def permute(self, tensor: Any, dims: tuple) -> Any:
        return tensor.permute(*dims)

    def is_training(self, layer: Any) -> bool:
        return bool(layer.training)

    def set_training(self, layer: Any, mode: bool, recurse: bool = True) -> None:
        if recurse:
            layer.train(mode)
        else:
            layer.training = mode

    def is_norm(self, layer: Any) -> bool:
        return isinstance(layer, _nn().modules.batchnorm._NormBase)

    def parameters(self, layer: Any, recurse: bool = True) -> list:
        return list(layer.named_parameters(recurse=recurse))

    def is_trainable(self, param: Any) -> bool:
        return bool(param.requires_grad)

    def set_trainable(self, param: Any, flag: bool) -> None:
        param.requires_grad_(flag)

    def gradients(self, model: Any, *inputs: Any) -> dict:
        params = dict(model.named_parameters())
        for p in params.values():
            p.grad = None
        out = model(*inputs)
        out = out["output"] if isinstance(out, dict) else out
        out.sum().backward()
        return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in params.items()}

    # -- neutral weights: torch's own names and layouts are the neutral ones -------------
    def tensors(self, layer: Any) -> list:
        """Parameters, then persistent buffers, as ``state_dict`` lists them (names unchanged)."""
        out = [TensorEntry(n, n) for n, p in layer._parameters.items() if p is not None]
        skip = layer._non_persistent_buffers_set
        return out + [TensorEntry(n, n) for n, b in layer._buffers.items() if b is not None and n not in skip]

    def _own(self, layer: Any, name: str) -> Any:
        t = layer._parameters.get(name)
        return layer._buffers[name] if t is None else t

    def tensor_shape(self, layer: Any, native: str) -> tuple:
        return tuple(self._own(layer, native).shape)

    def read_tensor(self, layer: Any, native: str) -> np.ndarray:
        return self._own(layer, native).detach().cpu().numpy().copy()

    def write_tensor(self, layer: Any, native: str, array: np.ndarray) -> None:
        import torch

        with torch.no_grad():
            t = self._own(layer, native)
            t.copy_(torch.from_numpy(np.array(array, order="C")).to(t.dtype))

    def ignore_unused(self, wrapper: Any, names: list) -> None:
        # DistributedDataParallel skips these (its documented per-module ignore list), so
        # the head after the deepest stage raises no unused-parameter error.
        wrapper._ddp_params_and_buffers_to_ignore = list(names)

    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        return make_wrapper(_nn().Module, model, forward, type_name)

    # -- layer signatures for theseus.match ------------------------------------------------
    def layer_info(self, layer: Any) -> dict:
        nn = _nn()
        if isinstance(layer, nn.modules.conv._ConvNd):
            return {"family": "conv", "kernel": tuple(layer.kernel_size), "stride": tuple(layer.stride),
                    "groups": int(layer.groups), "dilation": tuple(layer.dilation),
                    "padding": _pads(layer.padding)}
        if isinstance(layer, nn.Linear):
            return {"family": "linear"}
        if isinstance(layer, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)):
            return {"family": "norm"}
        if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            return {"family": "max_pool" if isinstance(layer, nn.MaxPool2d) else "avg_pool",
                    "kernel": _pair(layer.kernel_size), "stride": _pair(layer.stride or layer.kernel_size),
                    "padding": _pads(layer.padding)}
        if isinstance(layer, _same_pool_class()):
            return {"family": layer.family, "kernel": layer.kernel, "stride": layer.stride, "padding": "same"}
        return super().layer_info(layer)

    def make_pool(self, family: str, kernel: tuple, stride: tuple, padding: Any) -> Any:
        nn = _nn()
        if padding == "same":
            if family != "max_pool":
                raise UnsupportedOperation("theseus builds TF-'same' padding for max pools only (an average "
                                           "pool's divisor would change)", "wrap")
            return _same_pool_class()(family, tuple(kernel), tuple(stride))
        top, bottom, left, right = padding
        if top != bottom or left != right:
            raise UnsupportedOperation(f"torch pools pad symmetrically; cannot build padding {padding}", "wrap")
        cls = nn.MaxPool2d if family == "max_pool" else nn.AvgPool2d
        return cls(tuple(kernel), tuple(stride), (top, left))


def _pair(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pads(padding: Any) -> Any:
    if isinstance(padding, str):
        return padding
    h, w = _pair(padding)
    return (h, h, w, w)


_same_pool: list = []


def _same_pool_class() -> type:
    if _same_pool:
        return _same_pool[0]
    nn = _nn()
    import torch.nn.functional as F

    class SamePool2d(nn.Module):
        """A 2-D max/avg pool with TF ``same`` padding (extra row/column bottom/right),
        built by ``theseus.port`` to reproduce a source's padding convention."""

        def __init__(self, family: str, kernel: tuple, stride: tuple):
            super().__init__()
            self.family, self.kernel, self.stride = family, kernel, stride

        def forward(self, x):
            pads = []
            for size, k, s in ((x.shape[-1], self.kernel[1], self.stride[1]),
                               (x.shape[-2], self.kernel[0], self.stride[0])):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            if self.family == "max_pool":
                return F.max_pool2d(F.pad(x, pads, value=float("-inf")), self.kernel, self.stride)
            return F.avg_pool2d(F.pad(x, pads), self.kernel, self.stride)

        def extra_repr(self) -> str:
            return f"{self.family}, kernel={self.kernel}, stride={self.stride}, padding='same'"

    _same_pool.append(SamePool2d)
    return SamePool2d
