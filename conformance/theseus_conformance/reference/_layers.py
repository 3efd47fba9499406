"""A tiny numpy neural-network library: the reference framework theseus is checked against.

Semantics follow PyTorch where it matters to theseus: children are registered in definition
order by attribute assignment (re-assigning a name keeps its position), ``training`` starts
True, forward hooks may replace the output, hook handles have ``remove()``.

Trainable flags live on ``Parameter`` objects (``.data`` is the float32 array,
``.requires_grad`` the flag); statistics (``running_mean``/``running_var``) are plain arrays
in ``_buffers``. There is no autograd: ``requires_grad`` is a flag only.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Optional

import numpy as np

from theseus import TheseusLayerMixin

__all__ = [
    "AdaptiveAvgPool2d", "BatchNorm2d", "Conv2d", "Flatten", "Identity", "Layer", "LayerDict",
    "LayerList", "Linear", "Parameter", "ReLU", "RemovableHandle", "Sequential", "TheseusLayer",
    "conv2d", "manual_seed",
]

_F32 = np.float32
_rng = np.random.RandomState(0)
_rng_lock = threading.Lock()


def manual_seed(seed: int) -> None:
    """Reset the generator that initialises newly built layers (like ``torch.manual_seed``)."""
    global _rng
    with _rng_lock:
        _rng = np.random.RandomState(seed)


def _uniform(shape: tuple, bound: float) -> np.ndarray:
    with _rng_lock:
        return _rng.uniform(-bound, bound, size=shape).astype(_F32)


class Parameter:
    """A trainable array: ``data`` (float32 numpy array) and the ``requires_grad`` flag."""

    __slots__ = ("data", "requires_grad", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        self.data = np.array(data, dtype=_F32, copy=True)
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, requires_grad={self.requires_grad})"


class RemovableHandle:
    """Returned by ``register_forward_hook``/``register_forward_pre_hook``."""

    _ids = itertools.count()

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Layer:
    """Base layer: children, parameters, buffers, training flag and hooks."""

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_children"] = {}
        d["_params"] = {}
        d["_buffers"] = {}
        d["_forward_hooks"] = {}
        d["_forward_pre_hooks"] = {}

    # -- attribute registration ------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_children" not in d:
            if isinstance(value, (Layer, Parameter)):
                raise AttributeError("call Layer.__init__() before assigning layers or parameters")
            object.__setattr__(self, name, value)
            return
        stores = {"_children": Layer, "_params": Parameter}
        for store, cls in stores.items():
            if isinstance(value, cls):
                self._forget(name, keep=store)
                d[store][name] = value
                return
        for store, what in (("_children", "layer"), ("_params", "Parameter")):
            if name in d[store]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} to {name!r}: expected a {what} or None")
                d[store][name] = None
                return
        if name in d["_buffers"]:
            d["_buffers"][name] = None if value is None else np.asarray(value)
            return
        object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        d = self.__dict__
        d.pop(name, None)
        for store in ("_children", "_params", "_buffers"):
            if store != keep:
                d[store].pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_children", "_params", "_buffers"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in ("_children", "_params", "_buffers"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: Optional[np.ndarray]) -> None:
        """Register a non-trainable array (e.g. running statistics) under ``name``."""
        self._forget(name, keep="_buffers")
        self._buffers[name] = None if array is None else np.asarray(array)

    # -- traversal -------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Layer"]]:
        return ((n, c) for n, c in self._children.items() if c is not None)

    def children(self) -> Iterator["Layer"]:
        return (c for _, c in self.named_children())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Layer"]]:
        """Every layer (self first) in definition pre-order; shared layers once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield name, layer
            kids = [(f"{name}.{n}" if name else n, c) for n, c in layer.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator["Layer"]:
        return (m for _, m in self.named_modules())

    def _named(self, store: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        layers = self.named_modules() if recurse else [("", self)]
        for prefix, layer in layers:
            for n, v in getattr(layer, store).items():
                if v is not None and id(v) not in seen:
                    seen.add(id(v))
                    yield (f"{prefix}.{n}" if prefix else n), v

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named("_params", recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        return self._named("_buffers", recurse)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted native name."""
        out = {n: p.data.copy() for n, p in self.named_parameters()}
        out.update({n: b.copy() for n, b in self.named_buffers()})
        return out

    # -- modes -----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Layer":
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    # -- hooks and calling -----------------------------------------------------------
    def register_forward_hook(self, fn: Callable[["Layer", tuple, Any], Any]) -> RemovableHandle:
        """``fn(layer, inputs, output)`` after each forward; a non-None result replaces the output."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = fn
        return h

    def register_forward_pre_hook(self, fn: Callable[["Layer", tuple], Any]) -> RemovableHandle:
        """``fn(layer, inputs)`` before each forward; a non-None result replaces the inputs."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = fn
        return h

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            r = hook(self, inputs)
            if r is not None:
                inputs = r if isinstance(r, tuple) else (r,)
        out = self.forward(*inputs, **kwargs)
        for hook in list(self._forward_hooks.values()):
            r = hook(self, inputs, out)
            if r is not None:
                out = r
        return out

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({n}): " + repr(c).replace("\n", "\n  ") for n, c in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


class TheseusLayer(TheseusLayerMixin, Layer):
    """A reference ``Layer`` with the seed's methods (``stop_after``, ``update_res``, ...).

    Subclasses build their layers, then call ``self.init_res(return_patterns)``.
    """


# -- containers ------------------------------------------------------------------------
def _pairs(args: tuple) -> Optional[list]:
    """``[(name, layer)]`` when ``args`` is one mapping or one list of (name, layer) pairs."""
    if len(args) != 1:
        return None
    a = args[0]
    if isinstance(a, Mapping):
        return list(a.items())
    if isinstance(a, (list, tuple)) and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in a):
        return list(a)
    return None


def _add(parent: Layer, name: str, layer: Any) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"{type(parent).__name__} takes layers, got {type(layer).__name__} for {name!r}")
    parent._children[str(name)] = layer


class Sequential(Layer):
    """Runs its children in order. ``Sequential(a, b)`` names them ``"0"``, ``"1"``;
    ``Sequential(OrderedDict(...))`` or ``Sequential([("a", a), ...])`` keeps the names."""

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        pairs = _pairs(layers)
        for name, layer in pairs if pairs is not None else enumerate(layers):
            _add(self, str(name), layer)

    def __getitem__(self, idx: Any) -> Any:
        items = list(self.named_children())
        if isinstance(idx, slice):
            return Sequential(items[idx])
        return items[idx][1]

    def __len__(self) -> int:
        return len(list(self.named_children()))

    def __iter__(self) -> Iterator[Layer]:
        return self.children()

    def forward(self, x: Any) -> Any:
        for layer in list(self.children()):
            x = layer(x)
        return x


class LayerList(Layer):
    """A list of layers named ``"0"``, ``"1"``, ... (no forward of its own)."""

    def __init__(self, layers: Optional[list] = None) -> None:
        super().__init__()
        for layer in layers or []:
            self.append(layer)

    def append(self, layer: Layer) -> "LayerList":
        _add(self, str(len(self._children)), layer)
        return self

    def __getitem__(self, idx: int) -> Layer:
        return list(self._children.values())[idx]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Layer]:
        return self.children()


class LayerDict(Layer):
    """Layers by key, in insertion order (no forward of its own)."""

    def __init__(self, layers: Any = None) -> None:
        super().__init__()
        items = list(layers.items()) if isinstance(layers, Mapping) else list(layers or [])
        for name, layer in items:
            _add(self, name, layer)

    def __getitem__(self, key: str) -> Layer:
        return self._children[key]

    def __setitem__(self, key: str, layer: Layer) -> None:
        _add(self, key, layer)

    def __contains__(self, key: object) -> bool:
        return key in self._children

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._children))

    def keys(self) -> list:
        return list(self._children)

    def values(self) -> list:
        return list(self.children())

    def items(self) -> list:
        return list(self.named_children())


# -- layers ------------------------------------------------------------------------------
def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray], stride: Any = 1,
           padding: Any = 0, groups: int = 1) -> np.ndarray:
    """Grouped 2-D cross-correlation, NCHW, zero padding, float32.

    One matmul (or broadcast multiply when a group has one input channel, e.g. depthwise)
    per kernel offset, accumulated: im2col without materialising the column matrix.
    """
    x = np.asarray(x, dtype=_F32)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), g = _pair(stride), _pair(padding), int(groups)
    if c != cg * g or o % g:
        raise ValueError(f"conv2d: input has {c} channels, weight {weight.shape} with groups={g}")
    if ph or pw:
        xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=_F32)
        xp[:, :, ph:ph + h, pw:pw + w] = x
    else:
        xp = x
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    og = o // g
    xg = xp.reshape(n, g, cg, xp.shape[2], xp.shape[3])
    # (kh, kw, g, og, cg), contiguous: numpy's matmul uses BLAS only on contiguous operands
    wk = np.ascontiguousarray(np.asarray(weight, dtype=_F32).reshape(g, og, cg, kh, kw).transpose(3, 4, 0, 1, 2))
    out = np.zeros((n, g, og, oh, ow), dtype=_F32)
    for i in range(kh):
        for j in range(kw):
            xs = xg[:, :, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            wij = wk[i, j]                                                # (g, og, cg)
            if cg == 1:
                out += xs * wij[None, :, :, :, None]
            else:
                out += (wij[None] @ xs.reshape(n, g, cg, oh * ow)).reshape(n, g, og, oh, ow)
    out = out.reshape(n, o, oh, ow)
    if bias is not None:
        out += np.asarray(bias, dtype=_F32)[None, :, None, None]
    return out


class Conv2d(Layer):
    """2-D convolution; ``weight`` is ``[out, in/groups, kh, kw]``, ``bias`` ``[out]`` or None."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in ({in_channels}) and out ({out_channels}) channels must divide by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / np.sqrt(fan_in)
        self.weight = Parameter(_uniform((out_channels, in_channels // groups) + self.kernel_size, bound))
        self._params["bias"] = Parameter(_uniform((out_channels,), bound)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        b = self._params["bias"]
        return conv2d(x, self.weight.data, None if b is None else b.data, self.stride, self.padding, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}")


class BatchNorm2d(Layer):
    """Batch normalisation over NCHW channels; running stats with momentum, unbiased variance."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, _F32))
        self.bias = Parameter(np.zeros(num_features, _F32))
        self.register_buffer("running_mean", np.zeros(num_features, _F32))
        self.register_buffer("running_var", np.ones(num_features, _F32))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=_F32)
        if self.training:
            count = x.size // x.shape[1]
            if count < 2:
                raise ValueError("BatchNorm2d needs more than 1 value per channel when training")
            mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
            var = x.var(axis=(0, 2, 3), dtype=np.float64)
            m = self.momentum
            self._buffers["running_mean"] = ((1 - m) * self.running_mean + m * mean).astype(_F32)
            self._buffers["running_var"] = ((1 - m) * self.running_var + m * var * count / (count - 1)).astype(_F32)
        else:
            mean, var = self.running_mean.astype(np.float64), self.running_var.astype(np.float64)
        scale = self.weight.data / np.sqrt(var + self.eps)
        shift = self.bias.data - mean * scale
        return x * scale.astype(_F32)[None, :, None, None] + shift.astype(_F32)[None, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Linear(Layer):
    """``x @ weight.T + bias`` with ``weight`` ``[out, in]``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(_uniform((out_features, in_features), bound))
        self._params["bias"] = Parameter(_uniform((out_features,), bound)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(x, dtype=_F32) @ self.weight.data.T
        b = self._params["bias"]
        return out if b is None else out + b.data

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"


class ReLU(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, np.zeros((), dtype=np.asarray(x).dtype))


class Identity(Layer):
    """Returns its input unchanged (the same object)."""

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return x


class AdaptiveAvgPool2d(Layer):
    """Average over H and W to 1×1 (only ``output_size=1`` is supported)."""

    def __init__(self, output_size: Any = 1) -> None:
        super().__init__()
        if _pair(output_size) != (1, 1):
            raise ValueError(f"the reference AdaptiveAvgPool2d supports output_size=1 only, got {output_size!r}")
        self.output_size = output_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(x.dtype)


class Flatten(Layer):
    """Flattens dimensions ``start_dim..end_dim`` into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        s, e = self.start_dim % x.ndim, self.end_dim % x.ndim
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
