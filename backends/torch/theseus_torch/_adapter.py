"""The PyTorch adapter: enumeration, replacement, hooks, flags, tensors in/out.

Imports torch lazily (inside methods), so that loading the entry point never imports it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle
from theseus._backend import INSTALL_HINTS

__all__ = ["TorchBackend"]


def _nn():
    import torch.nn as nn

    return nn


class TorchBackend(Backend):
    name = "torch"
    framework = "torch"
    install_hint = INSTALL_HINTS["torch"]
    conformance_module = "theseus_torch.conformance"
    parts_module = "theseus_torch._parts"
    capabilities = frozenset({"hooks", "threads", "state", "wrap", "freeze", "gradients", "train_eval"})

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

    def infer(self, model: Any, *inputs: Any) -> Any:
        import torch

        with torch.no_grad():
            return model(*inputs)

    def float64_copy(self, model: Any) -> Any:
        import copy

        return copy.deepcopy(model).double()

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

    # -- neutral weights: torch's own layout is the neutral one --------------------------
    _LOCAL = ("weight", "bias", "running_mean", "running_var")

    def export_local(self, layer: Any) -> dict:
        out = {}
        for name in self._LOCAL:
            t = layer._parameters.get(name) if name in layer._parameters else layer._buffers.get(name)
            if t is not None:
                out[name] = t.detach().cpu().numpy().copy()
        return out

    def import_local(self, layer: Any, arrays: dict) -> None:
        import torch

        with torch.no_grad():
            for name, arr in arrays.items():
                t = layer._parameters.get(name) if name in layer._parameters else layer._buffers.get(name)
                t.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(t.dtype))

    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        from ._wrapper import make_wrapper

        return make_wrapper(model, forward, type_name)
