"""The registry configs are resolved through: ``(kind, name) -> {backend: factory}``.

Never ``eval``, never star-imports: a config's ``type`` is looked up here, and each backend
registers its own layers under the same names so that one config builds on every framework.
A name ending in ``:`` is a prefix (``timm:`` builds ``timm:resnet50``).
"""

from __future__ import annotations

import difflib
import importlib
import threading
from typing import Any, Callable, Optional

from ._backend import backends, get_backend
from ._errors import InvalidArgumentError, UnknownTypeError, UnsupportedOperation

__all__ = ["KINDS", "register", "registered", "lookup_factory"]

#: What a config can name: the three parts of a model, the activation layers of ``act_cfg``,
#: and the containers a backend assembles parts with (``BuildNet``, ``Sequential``).
KINDS = ("backbone", "neck", "head", "activation", "model")

_lock = threading.RLock()
_table: dict[str, dict[str, dict[str, Callable]]] = {k: {} for k in KINDS}
_parts_loaded: set[str] = set()


def _infer_backend(obj: Any) -> str:
    """The backend whose framework defines one of ``obj``'s base classes."""
    by_framework = {fw: name for name, fw in backends().items() if fw}
    for cls in getattr(obj, "__mro__", ()):
        top = (getattr(cls, "__module__", "") or "").split(".")[0]
        if top in by_framework:
            return by_framework[top]
    raise InvalidArgumentError(
        f"register: cannot tell which backend {getattr(obj, '__qualname__', obj)!r} belongs to (it is not a "
        f"subclass of a framework layer); pass backend=..., one of {sorted(backends()) or 'none installed'}")


def register(kind: str, name: str, backend: Optional[str] = None) -> Callable[[Any], Any]:
    """Register a layer class or factory under ``name`` so that configs can name it.

    Args:
        kind: one of ``KINDS`` (``"backbone"``, ``"neck"``, ``"head"``, ``"activation"``, ``"model"``).
        name: the config's ``type``; a name ending in ``:`` registers a prefix whose factory
            is called as ``factory(model_name, **kwargs)`` (``"timm:"`` for ``timm:resnet50``).
        backend: the backend the factory builds for; inferred from the class's framework
            base class when omitted (functions need it).

    Returns:
        A decorator that registers its argument and returns it unchanged. Registering a
        name again for the same backend replaces the earlier entry.

    Example:
        >>> import torch.nn as nn, theseus                       # doctest: +SKIP
        >>> @theseus.register("neck", "Flatten")                  # doctest: +SKIP
        ... class Flatten(nn.Module):
        ...     def forward(self, x):
        ...         return x.flatten(1)
    """
    if kind not in KINDS:
        raise InvalidArgumentError(f"register: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(name, str) or not name or name.strip() != name:
        raise InvalidArgumentError(f"register: name must be a non-empty string without surrounding spaces, got {name!r}")
    if backend is not None and not isinstance(backend, str):
        raise InvalidArgumentError(f"register: backend must be a backend name (str), got {backend!r}")

    def decorator(obj: Any) -> Any:
        if not callable(obj):
            raise InvalidArgumentError(f"register: {obj!r} is not callable (register a class or a factory function)")
        owner = backend or _infer_backend(obj)
        with _lock:
            _table[kind].setdefault(name, {})[owner] = obj
        return obj

    return decorator


def load_parts(backend: str) -> None:
    """Import the backend's module of built-in parts once (its ``parts_module``)."""
    if backend in _parts_loaded:
        return
    b = get_backend(backend)
    module = getattr(b, "parts_module", None)
    if module:
        importlib.import_module(module)
    _parts_loaded.add(backend)


def registered(kind: Optional[str] = None, backend: Optional[str] = None) -> dict[str, list[str]]:
    """What configs can name: ``{kind: sorted names}`` (prefixes end in ``:``).

    Args:
        kind: only this kind.
        backend: only names registered for this backend (its built-in parts are loaded first,
            which imports its framework).

    Example:
        >>> theseus.registered("neck", backend="torch")["neck"]   # doctest: +SKIP
        ['FPN', 'GlobalAveragePooling']
    """
    if kind is not None and kind not in KINDS:
        raise InvalidArgumentError(f"registered: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if backend is not None:
        load_parts(backend)
    out = {}
    for k in [kind] if kind else KINDS:
        out[k] = sorted(n for n, impls in _table[k].items() if backend is None or backend in impls)
    return out


def _closest(name: str, names: list[str]) -> Optional[str]:
    low = {n.lower(): n for n in names}
    if name.lower() in low:
        return low[name.lower()]
    hit = difflib.get_close_matches(name.lower(), list(low), n=1, cutoff=0.5)
    return low[hit[0]] if hit else None


def lookup_factory(kind: str, name: str, backend: str, path: str) -> tuple[Callable, tuple]:
    """The factory for ``name`` on ``backend`` and the positional arguments it takes first
    (the model name of a prefixed type).

    Raises:
        UnknownTypeError: lists what is registered for ``kind`` and the closest match.
        UnsupportedOperation: the name exists, but only for other backends.
    """
    load_parts(backend)
    table = _table[kind]
    args: tuple = ()
    key = name
    if ":" in name and name not in table:
        prefix, _, rest = name.partition(":")
        key, args = prefix + ":", (rest,)
        if not rest:
            raise UnknownTypeError(path, name, kind, [], None, f"{name!r} names no model after the prefix "
                                   f"(e.g. {prefix}:resnet50)")
    impls = table.get(key)
    if not impls:
        names = sorted(n for n, i in table.items() if backend in i)
        raise UnknownTypeError(path, name, kind, names, _closest(key, names))
    if backend not in impls:
        raise UnsupportedOperation(
            f"{path}: {kind} type {name!r} is registered for backend(s) {', '.join(sorted(impls))}, "
            f"not for {backend!r}; build with backend={sorted(impls)[0]!r}", "build")
    return impls[backend], args
