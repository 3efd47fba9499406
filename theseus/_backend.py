"""The Backend protocol and backend discovery.

The core talks to a framework only through a ``Backend`` object. Backends are found through
the entry-point group ``theseus.backends`` (first-party ones register exactly like a third
party) or ``register_backend``; a backend is considered only when its framework module is
already in ``sys.modules``, so ``import theseus`` never imports a framework.
"""

from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, ClassVar, NamedTuple, Optional

from ._errors import (AmbiguousBackendError, BackendNotFoundError, StateMismatchError, TheseusError,
                      UnsupportedOperation)
from ._layout import TensorEntry

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "Backend",
    "ContainerKind",
    "HookHandle",
    "TensorEntry",
    "CAPABILITIES",
    "CAPABILITY_TABLE",
    "IndexingLayouts",
    "Capability",
    "ENTRY_POINT_GROUP",
    "backend_of",
    "backends",
    "get_backend",
    "register_backend",
    "unregister_backend",
]

ENTRY_POINT_GROUP = "theseus.backends"

#: The one install-hint table: framework module -> the distribution that adds its backend
#: (each pulls the core ``theseus-surgery``).
INSTALL_HINTS: dict[str, str] = {
    "torch": "pip install theseus-surgery-torch",
    "paddle": "pip install theseus-surgery-paddle",
    "mindspore": "pip install theseus-surgery-mindspore",
}
FIRST_PARTY_HINT = "first-party backends: " + " / ".join(INSTALL_HINTS.values())

class Capability(NamedTuple):
    """One optional part of the Backend protocol: what it means and the ``Backend`` methods a
    backend that declares it implements (the others keep defaults that raise
    ``UnsupportedOperation``)."""

    name: str
    meaning: str
    methods: tuple


#: The one table of optional capabilities. A backend lists the ones it supports in
#: ``Backend.capabilities``; the conformance suite skips a scenario that needs one it lacks,
#: with a reason naming it, and checks that a declared one has its methods implemented.
CAPABILITY_TABLE: dict[str, Capability] = {c.name: c for c in (
    Capability("hooks", "forward hooks and pre-hooks; a forward hook may replace the output "
               "(update_res, extract, features, tree with shapes, freeze norm_eval)",
               ("add_forward_hook", "add_forward_pre_hook")),
    Capability("threads", "one model may run forwards from several threads at once (per-thread captures)", ()),
    Capability("state", "export/import of a layer's own weights in the neutral layout (state, load_state, port)",
               ("tensors", "read_tensor", "write_tensor")),
    Capability("wrap", "build a new native layer around a Python forward (extract, features)", ("wrap",)),
    Capability("freeze", "parameters with trainable flags (freeze, unfreeze, freeze_before, frozen)",
               ("parameters", "is_trainable", "set_trainable")),
    Capability("gradients", "one backward pass reporting which parameters received a gradient",
               ("gradients",)),
    Capability("train_eval", "training/eval mode flags per layer (probes restore them; norm_eval holds them)",
               ("is_training", "set_training")),
    Capability("layouts", "permute/reshape/slice tensors (features turns token and channels-last maps into "
               "(B, C, H, W))", ("permute", "reshape", "slice_from")),
)}

#: Capability names a backend may declare in ``Backend.capabilities``.
CAPABILITIES = frozenset(CAPABILITY_TABLE)


class ContainerKind(Enum):
    """How a layer's children are addressed."""

    PLAIN = "plain"          # children by attribute name: ``.name``
    SEQUENCE = "sequence"    # children by position: ``[i]`` (Sequential, ModuleList, ...)
    DICT = "dict"            # children by key: ``["key"]`` (ModuleDict, LayerDict, CellDict)


class HookHandle:
    """What ``Backend.add_forward_hook``/``add_forward_pre_hook`` return: call ``remove()``."""

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove = remove
        self.removed = False

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            self._remove()


class Backend(ABC):
    """One framework's adapter. Everything not here lives in the core.

    A backend is a small stateless class. Class attributes:

    * ``name``: the entry-point name (``"torch"``).
    * ``framework``: the top-level module that must be in ``sys.modules`` for the backend to
      be considered (``"torch"``); ``None`` for a backend that needs no framework.
    * ``install_hint``: what a user installs to get it (``"pip install theseus-surgery-torch"``);
      first-party ones come from ``INSTALL_HINTS``.
    * ``capabilities``: the subset of ``CAPABILITIES`` this backend supports.
    """

    name: ClassVar[str]
    framework: ClassVar[Optional[str]]
    install_hint: ClassVar[str] = ""
    capabilities: ClassVar[frozenset] = frozenset()
    #: False when the framework's own eager forwards are wrong if run from several threads
    #: at once; theseus then serialises the calls it controls (``lock_calls``, wrappers).
    thread_safe: ClassVar[bool] = True
    #: True when reading a tensor back (``to_numpy``) waits for an asynchronous runtime with a
    #: fixed cost per read (MindSpore PyNative: ~6 ms even for a finished op). theseus then holds
    #: the framework tensors of a forward (``copy``) and reads them all after it.
    deferred_reads: ClassVar[bool] = False
    #: The module that registers this backend's built-in model parts (backbones, necks,
    #: heads, activations) with ``theseus.register``; imported by ``theseus.build``.
    parts_module: ClassVar[Optional[str]] = None

    # -- recognition and structure ---------------------------------------------------
    @abstractmethod
    def is_layer(self, obj: Any) -> bool:
        """True when ``obj`` is a layer of this framework (nn.Module / nn.Layer / nn.Cell)."""

    @abstractmethod
    def children(self, layer: Any) -> list[tuple[str, Any]]:
        """Direct child layers as ``(native_name, child)`` in definition order.

        Native names are those of the framework's state keys (``"0"``, ``"conv"``).
        A child registered under two names is listed under each; ``None`` slots are skipped.
        """

    @abstractmethod
    def container_kind(self, layer: Any) -> ContainerKind:
        """SEQUENCE for Sequential/ModuleList-like containers, DICT for dict containers."""

    @abstractmethod
    def replace_child(self, parent: Any, name: str, new: Any) -> None:
        """Make ``new`` the child ``name`` of ``parent``, keeping its name and position.

        After the call, ``parent``'s forward must run ``new`` where it ran the old child
        (the framework traps: Paddle named Sequential, MindSpore SequentialCell).
        """

    def after_surgery(self, root: Any) -> None:
        """Called once on the root after any structural change (e.g. refresh parameter names)."""

    @abstractmethod
    def identity(self) -> Any:
        """A new Identity layer (returns its input unchanged)."""

    def type_name(self, layer: Any) -> str:
        """The layer's class name as shown in trees and messages."""
        return type(layer).__name__

    def layer_info(self, layer: Any) -> dict:
        """What ``theseus.match`` compares besides weights and output shapes.

        Keys: ``family`` (``conv``, ``linear``, ``norm``, ``max_pool``, ``avg_pool``, ``act``,
        ``other``), and where they apply ``kernel``, ``stride``, ``groups``, ``dilation``
        (tuples/ints) and ``padding``: a tuple of per-side pads ``(top, bottom, left, right)``
        or ``"same"`` for TF-style padding (extra row/column bottom/right). The default
        guesses the family from the class name; adapters override it with the real values.

        Example:
            >>> backend.layer_info(conv)        # doctest: +SKIP
            {'family': 'conv', 'kernel': (3, 3), 'stride': (2, 2), 'groups': 1, 'padding': (1, 1, 1, 1)}
        """
        name = type(layer).__name__.lower()
        for family, words in (("conv", ("conv",)), ("linear", ("linear", "dense")), ("norm", ("norm",)),
                              ("max_pool", ("maxpool",)), ("avg_pool", ("avgpool",)),
                              ("act", ("relu", "gelu", "sigmoid", "swish", "silu", "tanh", "hardswish"))):
            if any(w in name for w in words):
                return {"family": family}
        return {"family": "other"}

    def make_pool(self, family: str, kernel: tuple, stride: tuple, padding: Any) -> Any:
        """A new 2-D pooling layer (``family`` ``max_pool``/``avg_pool``) with ``padding`` in
        ``layer_info``'s spelling: per-side pads or ``"same"``. Used by ``port`` to give a
        destination the source's padding convention."""
        raise UnsupportedOperation(f"backend {self.name!r} cannot build pooling layers", "wrap")

    # -- hooks -------------------------------------------------------------------------
    def add_forward_hook(self, layer: Any, fn: Callable[[Any, tuple, Any], Any]) -> HookHandle:
        """Call ``fn(layer, inputs, output)`` after each forward of ``layer`` (capability ``hooks``).

        A non-None return value replaces the layer's output (it may be a dict).
        """
        raise self._lacks("hooks", "register forward hooks")

    def add_forward_pre_hook(self, layer: Any, fn: Callable[[Any, tuple], Any]) -> HookHandle:
        """Call ``fn(layer, inputs)`` before each forward of ``layer``; return value ignored
        (capability ``hooks``)."""
        raise self._lacks("hooks", "register forward pre-hooks")

    def lock_calls(self, model: Any, lock: Any) -> HookHandle:
        """Make every forward of ``model`` run while holding ``lock`` (a reentrant lock);
        needed only when ``thread_safe`` is False. The handle undoes it."""
        raise UnsupportedOperation(f"backend {self.name!r} cannot serialise forwards", "threads")

    def check_hooks_usable(self, model: Any) -> None:
        """Raise ``UnsupportedOperation`` when hooks cannot capture outputs right now
        (e.g. a compiled/graph execution mode). Default: always usable."""

    # -- tensors -----------------------------------------------------------------------
    @abstractmethod
    def to_numpy(self, tensor: Any) -> "np.ndarray":
        """A copy of ``tensor`` as a numpy array."""

    @abstractmethod
    def from_numpy(self, array: "np.ndarray") -> Any:
        """A framework tensor holding a copy of ``array`` (dtype kept)."""

    def shape(self, tensor: Any) -> Optional[tuple]:
        """The shape of a tensor, or None for something that is not a tensor."""
        shp = getattr(tensor, "shape", None)
        return None if shp is None else tuple(int(s) for s in shp)

    def permute(self, tensor: Any, dims: tuple) -> Any:
        """``tensor`` with its axes reordered (``features`` turns ``(B, H, W, C)`` maps and
        token grids into ``(B, C, H, W)``)."""
        raise self._lacks("layouts", "permute tensors")

    def reshape(self, tensor: Any, shape: tuple) -> Any:
        """``tensor`` reshaped (``-1`` allowed once)."""
        raise self._lacks("layouts", "reshape tensors")

    def slice_from(self, tensor: Any, axis: int, start: int) -> Any:
        """``tensor[..., start:, ...]`` along ``axis`` (drops class/register tokens)."""
        raise self._lacks("layouts", "slice tensors")

    def on_train(self, layer: Any, fn: Callable[[], None]) -> HookHandle:
        """Call ``fn()`` after every call of ``layer``'s own train-mode method
        (``train``/``eval`` in torch and Paddle, ``set_train`` in MindSpore), so a policy
        (``freeze``) is re-applied when the user changes the mode. Default: patch the
        instance's ``train_methods``."""
        from ._freeze import patch_methods

        return patch_methods(layer, self.train_methods, fn)

    def ignore_unused(self, wrapper: Any, names: list) -> None:
        """Tell the framework's data parallelism that the wrapper's parameters ``names``
        (native names in the wrapper) never take part in its forward (the layers after the
        deepest stage of a ``features``/``truncate`` module). Default: nothing to tell."""

    #: the methods that change a layer's training mode (see ``on_train``)
    train_methods: ClassVar[tuple] = ("train", "eval")

    def version(self, tensor: Any) -> Optional[int]:
        """A counter the framework bumps whenever ``tensor`` is modified in place (torch
        ``_version``, Paddle ``inplace_version``), or None when it keeps none. theseus uses
        it to hand back true captures at no cost where no in-place op follows."""
        return None

    def copy(self, tensor: Any) -> Any:
        """A copy of ``tensor`` that later in-place ops on ``tensor`` do not change and that
        keeps gradient flow (``clone``). Default: the tensor itself (no in-place ops)."""
        return tensor

    def infer(self, model: Any, *inputs: Any) -> Any:
        """Run the model's forward on framework tensors without recording gradients."""
        return model(*inputs)

    def float64_copy(self, model: Any) -> Any:
        """An independent copy of ``model`` computing in float64 (every floating parameter and
        buffer cast), used by ``compare`` to measure float32 round-off. Default: unsupported
        (compare then estimates round-off from fan-in and says so)."""
        raise UnsupportedOperation(f"backend {self.name!r} cannot make a float64 copy of a model "
                                   "(optional; compare then estimates float32 round-off from fan-in)")

    # -- modes and training ------------------------------------------------------------
    def is_training(self, layer: Any) -> bool:
        """The layer's own training flag (capability ``train_eval``)."""
        raise self._lacks("train_eval", "read training/eval modes")

    def set_training(self, layer: Any, mode: bool, recurse: bool = True) -> None:
        """Set the training flag, of the layer only or of its whole subtree (capability
        ``train_eval``)."""
        raise self._lacks("train_eval", "set training/eval modes")

    def is_norm(self, layer: Any) -> bool:
        """True for normalisation layers with running statistics (BatchNorm-like)."""
        return False

    def parameters(self, layer: Any, recurse: bool = True) -> list[tuple[str, Any]]:
        """All parameters, frozen ones included, as ``(native_name, parameter)``; never
        buffers or normalisation statistics (capability ``freeze``)."""
        raise self._lacks("freeze", "list parameters")

    def is_trainable(self, param: Any) -> bool:
        """Whether the parameter receives gradients (capability ``freeze``)."""
        raise self._lacks("freeze", "read trainable flags")

    def set_trainable(self, param: Any, flag: bool) -> None:
        """Make the parameter (not) receive gradients (capability ``freeze``)."""
        raise self._lacks("freeze", "set trainable flags")

    def gradients(self, model: Any, *inputs: Any) -> dict[str, bool]:
        """Run forward and backward of ``sum(output)`` once; ``{native_name: received a
        gradient}`` for every parameter (used by the conformance suite's freeze tests)."""
        raise self._lacks("gradients", "compute gradients")

    # -- weights in the neutral layout -------------------------------------------------
    def tensors(self, layer: Any) -> list["TensorEntry"]:
        """Every parameter and persistent buffer the layer itself holds (not its children's),
        as ``TensorEntry(native, neutral, transform)``, in the framework's order.

        Convert known roles by the layer's class (norm ``weight``/``bias``/``running_mean``/
        ``running_var``; Paddle Linear ``transpose``...); list every other tensor with
        ``neutral == native``. An entry may take tensors of children by dotted path
        (``("q_proj.weight", "k_proj.weight", "v_proj.weight")``, ``"concat_transposed"``):
        the children then do not list them again. See docs/neutral-layout.md.
        """
        raise self._lacks("state", "export weights")

    def read_tensor(self, layer: Any, native: str) -> "np.ndarray":
        """A numpy copy of the layer's own tensor ``native`` (an attribute name from ``tensors``)."""
        raise self._lacks("state", "export weights")

    def tensor_shape(self, layer: Any, native: str) -> tuple:
        """The shape of the layer's own tensor ``native`` (override to avoid the copy that this
        default, ``read_tensor(...).shape``, makes)."""
        return tuple(self.read_tensor(layer, native).shape)

    def write_tensor(self, layer: Any, native: str, array: "np.ndarray") -> None:
        """Overwrite the layer's own tensor ``native`` in place with ``array`` (same shape and
        dtype, checked by the core)."""
        raise self._lacks("state", "import weights")

    def export_local(self, layer: Any) -> dict[str, "np.ndarray"]:
        """The layer's own tensors as ``{neutral name: array}`` (copies; a convenience over
        ``tensors``/``read_tensor``). Optional bookkeeping roles (torch's
        ``num_batches_tracked``) are left out: they are not weights and other frameworks lack
        them; ``theseus.state`` has every tensor."""
        from ._layout import OPTIONAL_ROLES, to_neutral

        out = {}
        for e in self.tensors(layer):
            if all("." not in n for n in e.natives) and e.neutral not in OPTIONAL_ROLES:
                out[e.neutral] = to_neutral(e, [self.read_tensor(layer, n) for n in e.natives])
        return out

    def import_local(self, layer: Any, arrays: dict[str, "np.ndarray"]) -> None:
        """Write ``{neutral name: array}`` as ``export_local`` returns them (a convenience;
        ``load_state`` is the checked, atomic way)."""
        from ._layout import from_neutral

        import numpy as np

        entries = {e.neutral: e for e in self.tensors(layer) if all("." not in n for n in e.natives)}
        for name, arr in arrays.items():
            if name not in entries:
                raise StateMismatchError(f"{self.type_name(layer)} has no tensor {name!r}; it has "
                                         f"{', '.join(entries) or 'none'}")
            e = entries[name]
            current = [self.read_tensor(layer, n) for n in e.natives]
            parts = from_neutral(e, np.asarray(arr), [c.shape for c in current])
            for n, p, c in zip(e.natives, parts, current):
                if p.shape != c.shape:
                    raise StateMismatchError(f"{name}: shape {tuple(np.shape(arr))} does not fit {self.type_name(layer)}")
                self.write_tensor(layer, n, np.array(p, dtype=c.dtype, order="C"))

    # -- building new modules ----------------------------------------------------------
    def wrap(self, model: Any, forward: Callable[..., Any], type_name: str) -> Any:
        """A new native layer holding ``model`` as its child ``model`` (parameter names of
        ``model`` unchanged) whose forward is ``forward(*inputs)``."""
        raise self._lacks("wrap", "build wrapper modules")

    def _lacks(self, capability: str, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"backend {self.name!r} cannot {what}: it lacks the capability {capability!r} "
            f"({CAPABILITY_TABLE[capability].meaning})", capability)

    def __repr__(self) -> str:
        return f"<theseus backend {self.name!r}>"


class IndexingLayouts:
    """``slice_from`` and ``reshape`` for tensors with numpy-style basic indexing and a
    ``reshape(tuple)`` method (torch, paddle, MindSpore and numpy tensors all have them).

    Not defaults on ``Backend``: there a capability's methods raise ``UnsupportedOperation``
    naming it. A backend that declares ``layouts`` opts in by listing this class first and
    writes only ``permute`` (and overrides what its framework spells differently).

    Example:
        >>> class MyBackend(IndexingLayouts, Backend):   # doctest: +SKIP
        ...     capabilities = frozenset({"layouts"})
        ...     def permute(self, tensor, dims): return tensor.permute(*dims)
    """

    def slice_from(self, tensor: Any, axis: int, start: int) -> Any:
        return tensor[(slice(None),) * axis + (slice(start, None),)]

    def reshape(self, tensor: Any, shape: tuple) -> Any:
        return tensor.reshape(tuple(shape))


# ----------------------------------------------------------------------------------------
# discovery
# ----------------------------------------------------------------------------------------

_lock = threading.RLock()
_registered: dict[str, Backend] = {}        # explicitly registered instances
_loaded: dict[str, Backend] = {}            # instances loaded from entry points
_entry_points: Optional[dict[str, Any]] = None
_by_type: dict[type, Backend] = {}


def _discover() -> dict[str, Any]:
    global _entry_points
    if _entry_points is None:
        from importlib import metadata  # only when a backend is first needed: import theseus stays fast

        eps = metadata.entry_points()
        group = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
        _entry_points = {ep.name: ep for ep in group}
    return _entry_points


_serial_locks: dict[str, Any] = {}


def serial_lock(backend: Backend) -> Any:
    """The process-wide reentrant lock that serialises forwards on a backend whose
    framework is not thread-safe."""
    with _lock:
        return _serial_locks.setdefault(backend.name, threading.RLock())


def register_backend(backend: Backend, *, replace: bool = False) -> None:
    """Register a backend instance by its ``name`` (the programmatic equivalent of the
    ``theseus.backends`` entry point).

    Example:
        >>> from theseus_conformance.reference import ReferenceBackend  # doctest: +SKIP
        >>> register_backend(ReferenceBackend())                           # doctest: +SKIP
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend expects a theseus.Backend instance, got {type(backend).__name__}")
    with _lock:
        if backend.name in _registered and not replace:
            raise ValueError(f"a backend named {backend.name!r} is already registered; pass replace=True")
        _registered[backend.name] = backend
        _by_type.clear()


def unregister_backend(name: str) -> None:
    """Forget an explicitly registered backend."""
    with _lock:
        _registered.pop(name, None)
        _by_type.clear()


def _load(name: str) -> Optional[Backend]:
    with _lock:
        if name in _registered:
            return _registered[name]
        if name in _loaded:
            return _loaded[name]
        ep = _discover().get(name)
        if ep is None:
            return None
        cls = ep.load()
        inst = cls() if isinstance(cls, type) else cls
        _loaded[name] = inst
        return inst


def backends(active_only: bool = False) -> dict[str, Optional[str]]:
    """Installed backends: ``{name: framework module}``.

    Args:
        active_only: only those whose framework is already imported in this process.

    Example:
        >>> "torch" in backends()   # doctest: +SKIP
        True
    """
    out: dict[str, Optional[str]] = {}
    names = list(_discover()) + [n for n in _registered if n not in _discover()]
    for name in names:
        b = _load(name)
        if b is None:
            continue
        if active_only and b.framework is not None and b.framework not in sys.modules:
            continue
        out[name] = b.framework
    return out


def get_backend(name: str) -> Backend:
    """The backend registered under ``name``.

    Raises:
        BackendNotFoundError: no backend of that name is installed.
    """
    b = _load(name)
    if b is None:
        raise BackendNotFoundError(
            f"no theseus backend named {name!r} is installed; installed: {sorted(backends()) or 'none'}. "
            f"{FIRST_PARTY_HINT}"
        )
    return b


def backend_of(model: Any) -> Backend:
    """The backend that recognises ``model``; only backends whose framework is imported
    are asked, so this never imports a framework.

    Raises:
        BackendNotFoundError: nothing recognises the object (names its type and what to install).
        AmbiguousBackendError: more than one backend claims it.

    Example:
        >>> import torch, theseus                      # doctest: +SKIP
        >>> theseus.backend_of(torch.nn.Linear(2, 2)).name   # doctest: +SKIP
        'torch'
    """
    t = type(model)
    hit = _by_type.get(t)
    if hit is not None:
        return hit
    found = []
    for name in list(_registered) + [n for n in _discover() if n not in _registered]:
        b = _load(name)
        if b is None or (b.framework is not None and b.framework not in sys.modules):
            continue
        try:
            if b.is_layer(model):
                found.append(b)
        except TheseusError:
            raise
        except Exception:  # a broken third-party adapter must not hide the others
            continue
    if len(found) > 1:
        raise AmbiguousBackendError(
            f"{t.__module__}.{t.__qualname__} is claimed by several backends: "
            f"{', '.join(b.name for b in found)}; unregister one with theseus.unregister_backend(name)"
        )
    if not found:
        mod = (t.__module__ or "").split(".")[0]
        hint = INSTALL_HINTS.get(mod, "install or register a theseus backend for its framework "
                                      "(see theseus.register_backend)")
        installed = sorted(backends()) or ["none"]
        raise BackendNotFoundError(
            f"no installed theseus backend recognises a model of type {t.__module__}.{t.__qualname__}; "
            f"installed backends: {', '.join(installed)}; to use it: {hint}"
        )
    with _lock:
        _by_type[t] = found[0]
    return found[0]
