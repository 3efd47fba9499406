"""The native layer around a Python forward that ``extract``/``features``/``truncate``
return, written once: a backend's ``wrap`` calls :func:`make_wrapper` with its layer class.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

__all__ = ["WrapperMixin", "make_wrapper"]


class WrapperMixin:
    """Holds ``model`` as child ``model`` (its state keys get the prefix ``model.``) and runs
    ``forward(x, *inputs)`` (an explicit first argument: ``paddle.jit.to_static`` rejects a
    bare ``*inputs``)."""

    def __init__(self, model: Any, forward: Callable[..., Any], **base_kwargs: Any) -> None:
        super().__init__(**base_kwargs)
        self.model = model
        self._theseus_forward = forward

    def forward(self, x: Any, *inputs: Any) -> Any:
        return self._theseus_forward(x, *inputs)


_classes: dict = {}
_lock = threading.Lock()


def make_wrapper(base: type, model: Any, forward: Callable[..., Any], type_name: str,
                 forward_name: Optional[str] = "forward", **base_kwargs: Any) -> Any:
    """An instance of ``type_name(WrapperMixin, base)`` (one class per base and name).

    Args:
        base: the framework's layer class, or a subclass of it that adds what the framework
            needs (MindSpore: a ``construct`` refusing graph mode).
        model, forward: the wrapped model and the Python forward.
        type_name: the class name the wrapper reports (``FeatureExtractor``...).
        forward_name: the framework's forward method bound to ``WrapperMixin.forward``;
            None keeps ``base``'s own.
        base_kwargs: passed to ``base.__init__`` (MindSpore: ``auto_prefix=False``).

    Example:
        >>> make_wrapper(torch.nn.Module, net, lambda x: net(x) * 2, "Doubled")   # doctest: +SKIP
    """
    key = (base, type_name, forward_name)
    with _lock:
        cls = _classes.get(key)
        if cls is None:
            ns = {"__module__": __name__, "__doc__": WrapperMixin.__doc__}
            if forward_name:
                ns[forward_name] = WrapperMixin.forward
            cls = _classes[key] = type(type_name, (WrapperMixin, base), ns)
    return cls(model, forward, **base_kwargs)
