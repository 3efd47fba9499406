"""The MindSpore adapter: enumeration, replacement, hooks, flags, tensors in/out.

Imports mindspore lazily (inside methods, through ``_runtime``), so that loading the entry
point never imports it. The MindSpore traps handled here:

* ``setattr(seq, "1", new)`` on a ``SequentialCell`` leaves the old layer running (its
  ``construct`` iterates a cached list): replacement goes through ``seq[i] = new``.
* Parameter names are fixed when a cell is attached (relative to its immediate parent):
  ``after_surgery`` renames every parameter structurally, keeping the root's own prefix.
* GRAPH_MODE / ``mindspore.jit`` compile hooks in and silently drop their Python side
  effects: ``check_hooks_usable`` refuses GRAPH_MODE; a theseus hook that is compiled anyway
  (mode switched later, a jitted caller) raises a RuntimeError with a clear message; hook
  changes and surgery drop compiled graphs, which would otherwise keep running stale.
* PyNative forwards are not thread-safe (wrong values from concurrent threads): ``thread_safe``
  is False and theseus serialises the forwards it controls (``lock_calls``, wrappers).
* ``asnumpy()`` shares memory and ``Parameter.set_data`` silently reshapes: export copies,
  import writes exact shapes and dtypes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np

from theseus import Backend, ContainerKind, HookHandle, StateMismatchError, TensorEntry, UnsupportedOperation
from theseus._backend import INSTALL_HINTS, IndexingLayouts

__all__ = ["MindSporeBackend"]

#: MindSpore name -> neutral role of every norm layer's tensors (BatchNorm*, InstanceNorm*,
#: LayerNorm, GroupNorm).
_NORM_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_STATISTICS = frozenset({"moving_mean", "moving_variance"})
_GRAPH_MSG = ("theseus hooks (update_res captures) cannot run in MindSpore GRAPH_MODE or under mindspore.jit: "
              "the compiled graph drops their Python side effects, so captured outputs would be missing. "
              "Run the model in PyNative mode, or call theseus.update_res(model, []) / theseus.reset(model) "
              "before compiling it.")


_locked_classes: dict = {}


def _locked_class(cls: type, lock: Any) -> type:
    """A subclass of ``cls`` with the same name whose calls hold ``lock`` in PyNative."""
    key = (cls, id(lock))
    if key not in _locked_classes:
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            ms = _ms()
            if ms.get_context("mode") == ms.GRAPH_MODE:
                return cls.__call__(self, *args, **kwargs)
            with lock:
                return cls.__call__(self, *args, **kwargs)

        _locked_classes[key] = type(cls.__name__, (cls,), {
            "__call__": __call__, "_theseus_locked": True, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__})
    return _locked_classes[key]


def _ms():
    from ._runtime import mindspore

    return mindspore


def _nn():
    return _ms().nn


def _drop_compiled() -> None:
    """Forget every compiled GRAPH_MODE / ``mindspore.jit`` graph of the process.

    A compiled graph (a cell's or a jitted function's) keeps running the children and hooks
    it was compiled with: later replacements and hook changes would be silently ignored.
    Costs a recompile of other graphs too; skipped when nothing was ever compiled.
    """
    try:
        from mindspore.graph import api

        compiled = bool(api.ms_compile_cache) or any(api.cells_compile_cache.values())
    except (ImportError, AttributeError):  # other MindSpore versions: clear unconditionally
        compiled = True
    if compiled:
        _ms().ms_memory_recycle()


def _handle(native: Any) -> HookHandle:
    _drop_compiled()

    def remove() -> None:
        native.remove()
        _drop_compiled()

    return HookHandle(remove)


def _params_by_structure(root: Any) -> list[tuple[str, Any]]:
    """``(name, parameter)`` with the names a fresh build of ``root`` would give, in
    ``parameters_and_names`` order (shared cells/parameters once). A child of a cell built
    with ``auto_prefix=False`` (a theseus wrapper) does not get that cell's name as prefix."""
    out: list[tuple[str, Any]] = []
    seen_cells: set[int] = set()
    seen_params: set[int] = set()
    stack = [("", root)]
    while stack:
        prefix, cell = stack.pop()
        if id(cell) in seen_cells:
            continue
        seen_cells.add(id(cell))
        for pname, par in cell._params.items():
            if par is not None and getattr(par, "inited_param", None) is not None:
                par = par.inited_param
            if par is not None and id(par) not in seen_params:
                seen_params.add(id(par))
                out.append((prefix + pname, par))
        kids = [(n, c) for n, c in cell._cells.items() if c is not None]
        for cname, child in reversed(kids):  # stack: reversed keeps definition order
            stack.append((prefix + cname + "." if getattr(cell, "_auto_prefix", True) else prefix, child))
    return out


def _renames(layer: Any) -> dict:
    """MindSpore parameter name -> neutral role, by the cell's class."""
    nn = _nn()
    from mindspore.nn.layer.normalization import _BatchNorm, _InstanceNorm

    if isinstance(layer, (_BatchNorm, _InstanceNorm, nn.LayerNorm, nn.GroupNorm)):
        return _NORM_NAMES
    if isinstance(layer, nn.PReLU):
        return {"w": "weight"}
    if isinstance(layer, nn.Embedding):
        return {"embedding_table": "weight"}
    return {}


class MindSporeBackend(IndexingLayouts, Backend):
    """theseus backend for ``mindspore.nn.Cell`` models (hooks need PyNative mode, the default)."""

    name = "mindspore"
    framework = "mindspore"
    install_hint = INSTALL_HINTS["mindspore"]
    conformance_module = "theseus_mindspore.conformance"
    parts_module = "theseus_mindspore._parts"
    # MindSpore 2.10 PyNative gives wrong results when forwards run concurrently from several
    # threads, even on separate cells without hooks (measured: 8 threads x 50), so theseus
    # serialises the forwards of models it captures from ("threads" holds through lock_calls).
    capabilities = frozenset({"hooks", "threads", "state", "wrap", "freeze", "gradients", "train_eval", "layouts"})
    thread_safe = False
    # asnumpy() right after an op waits ~6 ms for the async runtime (measured: ReLU on
    # 1x256x16x16, 0.4 ms without the read, 6 ms with it); compare reads after the forward
    deferred_reads = True

    # -- structure ---------------------------------------------------------------------
    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, _nn().Cell)

    def children(self, layer: Any) -> list:
        # ``name_cells()`` drops the second name of a shared child; the protocol lists both.
        return [(n, c) for n, c in layer._cells.items() if c is not None]

    def container_kind(self, layer: Any) -> ContainerKind:
        nn = _nn()
        if isinstance(layer, (nn.SequentialCell, nn.CellList)):
            return ContainerKind.SEQUENCE
        if isinstance(layer, nn.CellDict):
            return ContainerKind.DICT
        return ContainerKind.PLAIN

    def replace_child(self, parent: Any, name: str, new: Any) -> None:
        nn = _nn()
        if isinstance(parent, nn.SequentialCell):
            # setattr would update _cells but not the cell_list that construct iterates.
            parent[list(parent._cells).index(name)] = new
        elif isinstance(parent, (nn.CellList, nn.CellDict)):
            parent._cells[name] = new  # keeps the key and its position
        else:
            setattr(parent, name, new)

    def after_surgery(self, root: Any) -> None:
        """Rename every parameter structurally (``blocks.11.depthwise_conv.conv.weight``),
        keeping the prefix the root's parameters already had (a backbone attached as
        ``backbone`` keeps ``backbone.``), and drop compiled graphs (they would run stale)."""
        items = _params_by_structure(root)
        votes: Counter = Counter()
        for name, par in items:
            if par.name == name:
                votes[""] += 1
            elif par.name.endswith("." + name):
                votes[par.name[: -len(name)]] += 1
        prefix = votes.most_common(1)[0][0] if votes else ""
        for name, par in items:
            if par.name != prefix + name:
                par.name = prefix + name
        _drop_compiled()

    def identity(self) -> Any:
        return _nn().Identity()

    # -- hooks -------------------------------------------------------------------------
    def add_forward_hook(self, layer: Any, fn: Callable) -> HookHandle:
        from ._runtime import in_jit

        def post(cell, args, output):
            if in_jit():  # constant-folded by the graph compiler: fn is then never compiled
                raise RuntimeError(_GRAPH_MSG)
            return fn(cell, args, output)

        return _handle(layer.register_forward_hook(post))

    def add_forward_pre_hook(self, layer: Any, fn: Callable) -> HookHandle:
        from ._runtime import in_jit

        def pre(cell, args):
            if in_jit():
                raise RuntimeError(_GRAPH_MSG)
            fn(cell, args)
            return None  # a MindSpore pre-hook's return value would replace the inputs

        return _handle(layer.register_forward_pre_hook(pre))

    def lock_calls(self, model: Any, lock: Any) -> HookHandle:
        """Run every call of ``model`` under ``lock``: the instance gets a same-named
        subclass whose ``__call__`` holds the lock (``construct`` itself must stay
        parseable by the graph compiler). The handle restores the original class."""
        original = type(model)
        if getattr(original, "_theseus_locked", False):
            return HookHandle(lambda: None)
        model.__class__ = _locked_class(original, lock)

        def undo() -> None:
            if type(model) is not original:
                model.__class__ = original

        return HookHandle(undo)

    def check_hooks_usable(self, model: Any) -> None:
        ms = _ms()
        if ms.get_context("mode") == ms.GRAPH_MODE:
            raise UnsupportedOperation(
                "hooks cannot capture layer outputs in MindSpore GRAPH_MODE: hooks are compiled into the "
                "graph and their Python side effects are dropped, so captured outputs would be missing. "
                "Use PyNative mode (mindspore.set_context(mode=mindspore.PYNATIVE_MODE), the default) "
                "for update_res, or build a model whose construct returns the intermediates.",
                "hooks",
            )

    # -- tensors -----------------------------------------------------------------------
    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor.asnumpy(), copy=True)  # asnumpy() shares memory

    def from_numpy(self, array: np.ndarray) -> Any:
        return _ms().Tensor(np.array(array, copy=True))

    # -- modes and training ------------------------------------------------------------
    def permute(self, tensor: Any, dims: tuple) -> Any:
        return _ms().ops.transpose(tensor, tuple(dims))

    train_methods = ("set_train",)

    def is_training(self, layer: Any) -> bool:
        return bool(layer.training)

    def set_training(self, layer: Any, mode: bool, recurse: bool = True) -> None:
        if recurse:
            layer.set_train(bool(mode))
        else:
            layer.training = bool(mode)

    def is_norm(self, layer: Any) -> bool:
        from mindspore.nn.layer.normalization import _BatchNorm

        return isinstance(layer, _BatchNorm)

    def parameters(self, layer: Any, recurse: bool = True) -> list:
        # Running statistics are Parameters in MindSpore; a frozen weight still is a parameter.
        if not recurse:
            return [(n, p) for n, p in layer._params.items() if p is not None and n not in _STATISTICS]
        return [(n, p) for n, p in layer.parameters_and_names() if n.rsplit(".", 1)[-1] not in _STATISTICS]

    def is_trainable(self, param: Any) -> bool:
        return bool(param.requires_grad)

    def set_trainable(self, param: Any, flag: bool) -> None:
        param.requires_grad = bool(flag)

    def gradients(self, model: Any, *inputs: Any) -> dict:
        """One backward pass of ``sum(output)`` with respect to the trainable parameters, as a
        MindSpore training step takes them (``requires_grad=False`` ones are not differentiated)."""
        ms = _ms()
        named = self.parameters(model)
        train = [p for _, p in named if p.requires_grad]

        def loss(*xs):
            out = model(*xs)
            return (out["output"] if isinstance(out, dict) else out).sum()

        got = {}
        if train:
            grads = ms.grad(loss, grad_position=None, weights=ms.ParameterTuple(train))(*inputs)
            got = {id(p): bool(np.abs(g.asnumpy()).sum() > 0) for p, g in zip(train, grads)}
        return {n: got.get(id(p), False) for n, p in named}

    # -- neutral weights ---------------------------------------------------------------
    def tensors(self, layer: Any) -> list:
        """Every Parameter the cell holds itself (MindSpore has no other persistent state),
        roles converted by class: every norm kind's ``gamma``/``beta``/``moving_mean``/
        ``moving_variance``, PReLU ``w``, Embedding ``embedding_table``; BatchNorm3d's
        statistics live in a ``bn2d`` child and are listed as its own. Conv2d ``[out, in/groups,
        kh, kw]`` and Dense ``[out, in]`` already are the neutral layout."""
        nn = _nn()
        if isinstance(layer, nn.BatchNorm3d) and "bn2d" in layer._cells:
            inner = layer._cells["bn2d"]
            return [TensorEntry(f"bn2d.{n}", _NORM_NAMES[n]) for n, p in inner._params.items()
                    if p is not None and n in _NORM_NAMES]
        rename = _renames(layer)
        return [TensorEntry(n, rename.get(n, n)) for n, p in layer._params.items() if p is not None]

    def tensor_shape(self, layer: Any, native: str) -> tuple:
        return tuple(layer._params[native].shape)

    def read_tensor(self, layer: Any, native: str) -> np.ndarray:
        return np.array(layer._params[native].asnumpy(), copy=True)  # asnumpy() shares memory

    def write_tensor(self, layer: Any, native: str, array: np.ndarray) -> None:
        par = layer._params[native]
        if tuple(array.shape) != tuple(par.shape):  # set_data would silently reshape
            raise StateMismatchError(f"{native}: shape {tuple(array.shape)} does not fit {tuple(par.shape)}")
        par.set_data(_ms().Tensor(np.array(array, copy=True)))

    # -- building new cells ------------------------------------------------------------
    def wrap(self, model: Any, forward: Callable, type_name: str) -> Any:
        from ._wrapper import make_wrapper

        return make_wrapper(model, forward, type_name)


    # -- layer signatures for theseus.match ------------------------------------------------
    def layer_info(self, layer: Any) -> dict:
        nn = _nn()
        if isinstance(layer, nn.Conv2d):
            return {"family": "conv", "kernel": _pair(layer.kernel_size), "stride": _pair(layer.stride),
                    "groups": int(layer.group), "dilation": _pair(layer.dilation),
                    "padding": _ms_pads(layer.pad_mode, layer.padding, layer.kernel_size, layer.stride)}
        if isinstance(layer, nn.Dense):
            return {"family": "linear"}
        if self.is_norm(layer) or isinstance(layer, (nn.LayerNorm, nn.GroupNorm)):
            return {"family": "norm"}
        if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            return {"family": "max_pool" if isinstance(layer, nn.MaxPool2d) else "avg_pool",
                    "kernel": _pair(layer.kernel_size), "stride": _pair(layer.stride),
                    "padding": _ms_pads(layer.pad_mode, getattr(layer, "padding", 0), layer.kernel_size,
                                        layer.stride)}
        return super().layer_info(layer)

    def make_pool(self, family: str, kernel: tuple, stride: tuple, padding: Any) -> Any:
        nn = _nn()
        cls = nn.MaxPool2d if family == "max_pool" else nn.AvgPool2d
        if padding == "same":
            return cls(tuple(kernel), tuple(stride), pad_mode="same")
        top, bottom, left, right = padding
        if top != bottom or left != right:
            raise UnsupportedOperation(f"MindSpore pools pad symmetrically; cannot build padding {padding}", "wrap")
        if top == left == 0:
            return cls(tuple(kernel), tuple(stride), pad_mode="valid")
        return cls(tuple(kernel), tuple(stride), pad_mode="pad", padding=(top, left))

def _pair(v: Any) -> tuple:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _ms_pads(pad_mode: str, padding: Any, kernel: Any = None, stride: Any = None) -> Any:
    mode = str(pad_mode).lower()
    if mode == "same":
        k, s = _pair(kernel or 0), _pair(stride or 0)
        if s == (1, 1) and k[0] % 2 and k[1] % 2:  # stride 1, odd kernel: 'same' pads symmetrically
            return (k[0] // 2, k[0] // 2, k[1] // 2, k[1] // 2)
        return "same"
    if mode == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, (tuple, list)):
        p = [int(x) for x in padding]
        if len(p) == 4:
            return tuple(p)
        if len(p) == 3:      # MaxPool2d(pad_mode="pad") stores (depth, h, w)
            return (p[1], p[1], p[2], p[2])
        if len(p) == 2:
            return (p[0], p[0], p[1], p[1])
    p = int(padding or 0)
    return (p, p, p, p)
