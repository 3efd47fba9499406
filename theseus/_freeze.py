"""One freeze policy for every backend: parameters stop updating, normalisation statistics
stop moving when asked, state keys never change, and the policy is re-applied whenever the
user changes the model's mode (``model.train()`` / ``eval()`` / ``set_train(True)``).

Nothing is renamed or wrapped (unlike PaddleClas's ``freeze_befor``, which wraps the layer
and renames its keys). ``theseus.reset`` undoes the whole policy: every parameter gets the
trainable flag it had before theseus, every held norm layer is released.

Norm policy (``norm=``), for the normalisation layers with running statistics:

* the norm layers INSIDE the frozen layers are always held in eval mode (a frozen part does
  not change: MMDetection's ``frozen_stages``);
* ``"train"`` (default): the other norm layers train normally;
* ``"eval"``: every norm layer of the model is held in eval mode, its affine parameters
  still train outside the frozen part (MMDetection's ``norm_eval=True``);
* ``"frozen"``: every norm layer is held in eval mode and its parameters are frozen
  (PaddleDetection's ``freeze_norm``, a FrozenBatchNorm).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, Sequence

from ._backend import HookHandle, backend_of
from ._errors import InvalidArgumentError
from ._grammar import AnyDepth, parse
from ._ops import Patterns, _as_list, _resolve_nodes
from ._record import record_of
from ._walk import children_of, lookup, walk

__all__ = ["freeze", "unfreeze", "freeze_before", "freeze_stages", "frozen"]

_NORMS = ("train", "eval", "frozen")


class _TrainPatch:
    """The instance attribute that shadows a layer's ``train``-like method: calls the
    class's method, then the policy. Holds the layer weakly (the model stays collectable);
    a deep copy of the model gets a patch bound to the copy that does nothing more."""

    def __init__(self, layer: Any, method: str, fn: Optional[Callable[[], None]]) -> None:
        self.ref = weakref.ref(layer)
        self.method = method
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        layer = self.ref()
        out = getattr(type(layer), self.method)(layer, *args, **kwargs)
        if self.fn is not None:
            self.fn()
        return out

    def __deepcopy__(self, memo: dict) -> "_TrainPatch":
        layer = self.ref()
        return _TrainPatch(memo.get(id(layer), layer), self.method, None)


def patch_methods(layer: Any, methods: Sequence[str], fn: Callable[[], None]) -> HookHandle:
    """Shadow ``layer``'s mode methods with ``_TrainPatch``es (the default ``Backend.on_train``)."""
    done = []
    for m in methods:
        if callable(getattr(type(layer), m, None)):
            object.__setattr__(layer, m, _TrainPatch(layer, m, fn))
            done.append(m)
    ref = weakref.ref(layer)

    def remove() -> None:
        obj = ref()
        if obj is not None:
            for m in done:
                if isinstance(vars(obj).get(m), _TrainPatch):
                    object.__delattr__(obj, m)

    return HookHandle(remove)


class _Policy:
    """What freeze changed on one model, and how to undo it."""

    def __init__(self, backend: Any, model: Any) -> None:
        self.backend = backend
        self.params: dict[int, tuple[Any, bool]] = {}      # id -> (parameter, trainable before)
        self.norms: dict[int, tuple[Any, bool, HookHandle]] = {}   # id -> (layer, mode before, hold)
        self.root_mode = backend.is_training(model)
        self.train_hook: Optional[HookHandle] = None

    def freeze_param(self, p: Any) -> None:
        self.params.setdefault(id(p), (p, self.backend.is_trainable(p)))
        self.backend.set_trainable(p, False)

    def hold(self, layer: Any) -> None:
        b = self.backend
        if id(layer) in self.norms:
            return
        handle = b.add_forward_pre_hook(layer, lambda m, inputs: b.set_training(m, False, recurse=False))
        self.norms[id(layer)] = (layer, b.is_training(layer), handle)
        b.set_training(layer, False, recurse=False)

    def release(self, layer: Any, mode: bool) -> None:
        entry = self.norms.pop(id(layer), None)
        if entry is not None:
            entry[2].remove()
            self.backend.set_training(layer, mode, recurse=False)

    def reapply(self) -> None:
        for layer, _, _ in self.norms.values():
            self.backend.set_training(layer, False, recurse=False)

    def undo(self, model: Any) -> None:
        """Every parameter back to its flag before theseus; held norms released to the mode
        they had (or to the model's mode if ``train()``/``eval()`` was called since)."""
        for p, flag in self.params.values():
            self.backend.set_trainable(p, flag)
        self.params.clear()
        now = self.backend.is_training(model)
        for layer, mode, handle in list(self.norms.values()):
            handle.remove()
            self.backend.set_training(layer, mode if now == self.root_mode else now, recurse=False)
        self.norms.clear()
        if self.train_hook is not None:
            self.train_hook.remove()
            self.train_hook = None


_policies: dict[int, _Policy] = {}


def _policy(backend: Any, model: Any) -> _Policy:
    pol = _policies.get(id(model))
    if pol is None:
        pol = _policies[id(model)] = _Policy(backend, model)
        try:
            weakref.finalize(model, _policies.pop, id(model), None)
        except TypeError:  # pragma: no cover - not weak-referenceable
            pass
        ref = weakref.ref(model)

        def undo() -> None:  # theseus.reset removes every handle of the record: undo the policy
            m = ref()
            p = _policies.pop(id(m), None) if m is not None else None
            if p is not None:
                p.undo(m)

        record_of(model).add_handles("freeze", [HookHandle(undo)])
    if pol.train_hook is None:
        pol.train_hook = backend.on_train(model, pol.reapply)
    return pol


def _targets(backend: Any, model: Any, patterns: Patterns) -> list:
    """The layers to act on; a pattern that is exactly ``**`` means the whole model."""
    pats = _as_list(patterns, "freeze")
    whole = [p for p in pats if parse(p).segments == (AnyDepth(),)]
    rest = [p for p in pats if p not in whole]
    return [model] * bool(whole) + [n.layer for _, n in _resolve_nodes(backend, model, rest)]


def _norm_arg(norm: str, norm_eval: Optional[bool], what: str) -> str:
    if norm_eval is not None:
        if not isinstance(norm_eval, bool):
            raise InvalidArgumentError(f"{what}: norm_eval must be True or False, got {norm_eval!r}")
        return "eval" if norm_eval else norm
    if norm not in _NORMS:
        raise InvalidArgumentError(f"{what}: norm must be one of {', '.join(map(repr, _NORMS))}, got {norm!r}")
    return norm


def _subtree(backend: Any, layers: list) -> list:
    seen, out = set(), []
    for layer in layers:
        for n in [layer] + [x.layer for x in walk(backend, layer)]:
            if id(n) not in seen:
                seen.add(id(n))
                out.append(n)
    return out


def _apply_freeze(backend: Any, model: Any, layers: list, norm: str, own_params_of: Sequence[Any] = ()) -> list[str]:
    pol = _policy(backend, model)
    for layer in layers:
        for _, p in backend.parameters(layer):
            pol.freeze_param(p)
    for layer in own_params_of:
        for _, p in backend.parameters(layer, recurse=False):
            pol.freeze_param(p)
    held = [n for n in _subtree(backend, layers) if backend.is_norm(n)]
    if norm != "train":
        held += [n for n in _subtree(backend, [model]) if backend.is_norm(n)]
    for n in held:
        pol.hold(n)
        if norm == "frozen":
            for _, p in backend.parameters(n):
                pol.freeze_param(p)
    return frozen(model)


def freeze(model: Any, patterns: Patterns = "**", norm: str = "train", norm_eval: Optional[bool] = None) -> list[str]:
    """Stop gradients for every parameter of the matched layers (and their children); the
    norm layers inside them are held in eval mode; ``norm`` says what happens to the others.

    The policy survives ``model.train()`` (it is re-applied) and keeps every state key;
    ``unfreeze`` or ``theseus.reset`` undo it.

    Args:
        patterns: which layers; ``"**"`` (default) is the whole model.
        norm: ``"train"`` (other norm layers train), ``"eval"`` (every norm layer held in
            eval mode, MMDetection's ``norm_eval``) or ``"frozen"`` (every norm layer held
            and its parameters frozen).
        norm_eval: ``True`` is ``norm="eval"`` (kept for the seed's spelling).

    Returns:
        The native names of the parameters that are now frozen.

    Example:
        >>> theseus.freeze(net, ["conv", "blocks[0:3]"], norm="eval")   # doctest: +SKIP
    """
    backend = backend_of(model)
    norm = _norm_arg(norm, norm_eval, "freeze")
    layers = _targets(backend, model, patterns)
    return _apply_freeze(backend, model, layers, norm)


def unfreeze(model: Any, patterns: Patterns = "**") -> list[str]:
    """Make the matched layers' parameters trainable again and release the held norm layers
    among them (they take the model's current mode).

    Returns:
        The native names of the parameters still frozen.
    """
    backend = backend_of(model)
    layers = _targets(backend, model, patterns)
    pol = _policies.get(id(model))
    for layer in layers:
        for _, p in backend.parameters(layer):
            backend.set_trainable(p, True)
            if pol is not None:
                pol.params.pop(id(p), None)
    if pol is not None:
        mode = backend.is_training(model)
        for n in _subtree(backend, layers):
            pol.release(n, mode)
    return frozen(model)


def freeze_before(model: Any, descriptor: str, norm: str = "train", norm_eval: Optional[bool] = None) -> list[str]:
    """Freeze the named layer and everything defined before it (the seed's ``freeze_befor``):
    at every level of its path, the siblings registered before it.

    Example:
        >>> theseus.freeze_before(net, "blocks[2]")   # conv, blocks[0..2] frozen   # doctest: +SKIP
    """
    backend = backend_of(model)
    norm = _norm_arg(norm, norm_eval, "freeze_before")
    node = lookup(backend, model, descriptor)
    layers = [node.layer]
    for level in node.path():
        layers += [sib.layer for sib in children_of(backend, level.parent)[:level.position]]
    return _apply_freeze(backend, model, layers, norm)


def freeze_stages(model: Any, n: int, norm: str = "train", input_shape: Sequence[int] = (1, 3, 224, 224)) -> list[str]:
    """Freeze the stem and the first ``n`` stages, as detector backbones do
    (MMDetection's ``frozen_stages``, PaddleDetection's ``freeze_at``).

    Stages are those ``features()`` finds. Stages are counted as detectors count them: the
    stem is everything that runs before stage 1, including any stage finer than /4 (a
    ResNet's /2 stem output), and the model's own parameters (a ViT's class token and
    position embedding); stage 1 is the first stage at reduction >= 4 (ResNet ``layer1``).
    ``n=0`` freezes the stem only; ``n=-1`` nothing (MMDetection's default).

    Args:
        n: number of stages after the stem (-1 .. number of stages at reduction >= 4).
        norm: as in ``freeze``; ``"eval"`` is MMDetection's ``norm_eval=True``.
        input_shape: the probe input's shape (as in ``features``).

    Returns:
        The native names of the parameters that are now frozen.

    Example:
        >>> theseus.freeze_stages(resnet50, 1, norm="eval")   # conv1, bn1, layer1   # doctest: +SKIP
    """
    from ._features import stage_plan

    backend = backend_of(model)
    norm = _norm_arg(norm, None, "freeze_stages")
    plan = stage_plan(model, input_shape)
    pyramid = [(node, order) for node, red, order in plan["stages"] if red >= 4]
    if not isinstance(n, int) or isinstance(n, bool) or not -1 <= n <= len(pyramid):
        raise InvalidArgumentError(f"freeze_stages: n must be an int in -1..{len(pyramid)} (the stages at reduction "
                                   f">= 4: {', '.join(node.text for node, _ in pyramid)}), got {n!r}")
    if n == -1:
        return frozen(model)
    blocks = plan["blocks"]
    if n > 0:
        end = pyramid[n - 1][1]
        layers = [node.layer for node, order, _ in blocks if order <= end]
    else:
        fine = [order for _, red, order in plan["stages"] if red < 4]
        first = pyramid[0][1] if pyramid else max(o for _, o, _ in blocks)
        if fine:
            end = max(fine)
            layers = [node.layer for node, order, _ in blocks if order <= end]
        else:  # no /2 stage: the stem is what runs before the first body block of stage 1
            body = [order for _, order, is_body in blocks if is_body and order <= first]
            start = min(body) if body else first
            layers = [node.layer for node, order, _ in blocks if order < start]
    return _apply_freeze(backend, model, layers, norm, own_params_of=[model])


def frozen(model: Any) -> list[str]:
    """Native names of the model's parameters that receive no gradient."""
    backend = backend_of(model)
    return [name for name, p in backend.parameters(model) if not backend.is_trainable(p)]
