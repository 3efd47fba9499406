"""Freezing: parameters stop receiving gradients; norm layers optionally held in eval mode.

Nothing is renamed or wrapped, so state keys never change (unlike PaddleClas's
``freeze_befor``, which wraps the layer and renames its keys).
"""

from __future__ import annotations

from typing import Any

from ._backend import backend_of
from ._grammar import AnyDepth, parse
from ._ops import Patterns, _as_list, _resolve_nodes
from ._record import record_of
from ._walk import children_of, lookup, walk

__all__ = ["freeze", "unfreeze", "freeze_before", "frozen"]


def _targets(backend: Any, model: Any, patterns: Patterns) -> list:
    """The layers to act on; a pattern that is exactly ``**`` means the whole model."""
    pats = _as_list(patterns, "freeze")
    whole = [p for p in pats if parse(p).segments == (AnyDepth(),)]
    rest = [p for p in pats if p not in whole]
    return [model] * bool(whole) + [n.layer for _, n in _resolve_nodes(backend, model, rest)]


def _apply(backend: Any, model: Any, layers: list, flag: bool, norm_eval: bool) -> None:
    for layer in layers:
        for _, p in backend.parameters(layer):
            backend.set_trainable(p, flag)
    if not flag and not norm_eval:
        return
    rec = record_of(model)
    subtree = [n for layer in layers for n in [layer] + [x.layer for x in walk(backend, layer)]]
    for n in subtree:
        key = f"norm_eval:{id(n)}"
        if flag:
            rec.remove_handles(key)
        elif backend.is_norm(n) and key not in rec.handles:
            backend.set_training(n, False, recurse=False)
            hold = backend.add_forward_pre_hook(n, lambda m, inputs: backend.set_training(m, False, recurse=False))
            rec.add_handles(key, [hold])


def freeze(model: Any, patterns: Patterns = "**", norm_eval: bool = False) -> list[str]:
    """Stop gradients for every parameter of the matched layers (and their children).

    Args:
        patterns: which layers; ``"**"`` (default) is the whole model.
        norm_eval: also hold the matched normalisation layers in eval mode (running
            statistics frozen), even after ``model.train()``; ``unfreeze`` releases them.

    Returns:
        The native names of the parameters that are now frozen.

    Example:
        >>> theseus.freeze(net, ["conv", "blocks[0:3]"], norm_eval=True)   # doctest: +SKIP
    """
    backend = backend_of(model)
    layers = _targets(backend, model, patterns)
    _apply(backend, model, layers, False, norm_eval)
    return frozen(model)


def unfreeze(model: Any, patterns: Patterns = "**") -> list[str]:
    """Make the matched layers' parameters trainable again and release held norm layers.

    Returns:
        The native names of the parameters still frozen.
    """
    backend = backend_of(model)
    _apply(backend, model, _targets(backend, model, patterns), True, False)
    return frozen(model)


def freeze_before(model: Any, descriptor: str, norm_eval: bool = False) -> list[str]:
    """Freeze the named layer and everything defined before it (the seed's ``freeze_befor``):
    at every level of its path, the siblings registered before it.

    Example:
        >>> theseus.freeze_before(net, "blocks[2]")   # conv, blocks[0..2] frozen   # doctest: +SKIP
    """
    backend = backend_of(model)
    node = lookup(backend, model, descriptor)
    layers = [node.layer]
    for level in node.path():
        layers += [sib.layer for sib in children_of(backend, level.parent)[:level.position]]
    _apply(backend, model, layers, False, norm_eval)
    return frozen(model)


def frozen(model: Any) -> list[str]:
    """Native names of the model's parameters that receive no gradient."""
    backend = backend_of(model)
    return [name for name, p in backend.parameters(model) if not backend.is_trainable(p)]
