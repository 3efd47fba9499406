"""Load MindSpore's own oneDNN before anything imports mindspore, without importing it.

``import paddle`` before ``import mindspore`` fails with ``undefined symbol:
dnnl_threadpool_interop_stream_create``: both ship a ``libdnnl.so.3`` and the loader reuses
paddle's. Loading ``mindspore/lib/libdnnl.so.3`` with ``RTLD_GLOBAL`` first lets each
framework bind its own, also when paddle is already imported.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

__all__ = ["preload_dnnl"]

_done = False


def preload_dnnl() -> None:
    """Load mindspore/lib/libdnnl.so.3 globally (once; nothing if mindspore is absent).

    Example:
        >>> from theseus_mindspore._dnnl import preload_dnnl
        >>> preload_dnnl()   # idempotent
    """
    global _done
    if _done:
        return
    _done = True
    try:
        spec = importlib.util.find_spec("mindspore")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "lib", "libdnnl.so.3")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
            return
