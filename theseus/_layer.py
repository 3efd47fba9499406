"""The seed's method API (``net.stop_after`` …) as a framework-free mixin.

Each backend's ``TheseusLayer`` is ``class TheseusLayer(TheseusLayerMixin, <framework layer>)``;
the methods only delegate to the module-level operations.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

from . import _ops
from ._errors import TheseusError

__all__ = ["TheseusLayerMixin", "TheseusWarning"]


class TheseusWarning(UserWarning):
    """Issued by the bool-returning seed methods instead of raising."""


class TheseusLayerMixin:
    """``stop_after``/``update_res``/``upgrade_sublayer`` as methods (PaddleClas API).

    Subclasses build their layers, then call ``self.init_res(return_patterns)`` at the end
    of ``__init__`` to honour the constructor argument ``return_patterns=``.
    """

    def init_res(self, return_patterns: Optional[Any] = None) -> None:
        """Apply the constructor's ``return_patterns`` (no-op for None)."""
        if return_patterns is None:
            return
        pats = _ops._as_list(return_patterns, "return_patterns")  # arrays, bytes...: a clear error
        if pats:
            _ops.update_res(self, pats)

    def stop_after(self, stop_layer_name: str) -> bool:
        """Truncate after ``stop_layer_name``; True on success, False (with a warning that
        carries the error message) on failure — the model is then unchanged."""
        try:
            _ops.stop_after(self, stop_layer_name)
        except TheseusError as err:
            warnings.warn(str(err), TheseusWarning, stacklevel=2)
            return False
        return True

    def update_res(self, return_patterns: Any) -> dict:
        """Return these layers' outputs with the final output; see ``theseus.update_res``."""
        return _ops.update_res(self, return_patterns)

    def upgrade_sublayer(self, layer_name_pattern: Any, handle_func: Callable[[Any, str], Any]) -> dict:
        """Replace matching layers with ``handle_func(layer, pattern)``; see ``theseus.upgrade_sublayer``."""
        return _ops.upgrade_sublayer(self, layer_name_pattern, handle_func)
