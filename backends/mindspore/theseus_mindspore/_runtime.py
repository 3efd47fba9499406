"""Import mindspore safely; every module of this package that needs it imports it from here.

Two environment traps are handled once, at first use:

* MindSpore 2.x is built against NumPy 1.x. With numpy>=2 the first tensor op of a process
  may fail with ``SystemError: <method 'reshape' of 'TensorPy' objects> returned a result
  with an exception set`` and numpy scalars are rejected: warn, naming the fix.
* ``import paddle`` before ``import mindspore`` fails with ``undefined symbol:
  dnnl_threadpool_interop_stream_create``: both ship a ``libdnnl.so.3`` and the loader reuses
  paddle's. Loading MindSpore's own copy with ``RTLD_GLOBAL`` first (located without
  importing mindspore) lets each framework bind its own.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from theseus import FrameworkConflictError, TheseusWarning

from ._dnnl import preload_dnnl

__all__ = ["mindspore", "NumpyVersionWarning", "in_jit"]


class NumpyVersionWarning(TheseusWarning):
    """numpy>=2 is installed next to MindSpore, which is built against NumPy 1.x."""


def _check_numpy() -> None:
    if int(np.__version__.split(".")[0]) >= 2:
        warnings.warn(
            f"numpy {np.__version__} is installed, but MindSpore 2.x is built against NumPy 1.x: "
            "tensor operations may fail with \"SystemError: <method 'reshape' of 'TensorPy' objects> "
            "returned a result with an exception set\" and numpy scalars are rejected. "
            "Install numpy<2 (pip install 'numpy<2').",
            NumpyVersionWarning,
            stacklevel=3,
        )


def _import_mindspore():
    if "mindspore" in sys.modules:
        return sys.modules["mindspore"]
    preload_dnnl()
    try:
        import mindspore
    except ModuleNotFoundError as err:
        if err.name != "mindspore":
            raise _conflict(err) from err
        raise ModuleNotFoundError("mindspore is not installed: pip install 'mindspore>=2.3' 'numpy<2'",
                                  name="mindspore") from err
    except (ImportError, OSError) as err:
        raise _conflict(err) from err
    return mindspore


def _conflict(err: BaseException) -> FrameworkConflictError:
    others = [m for m in ("paddle", "torch", "tensorflow") if m in sys.modules]
    return FrameworkConflictError(
        f"mindspore could not be imported ({type(err).__name__}: {err}). "
        + (f"Already imported in this process: {', '.join(others)}. " if others else "")
        + "Frameworks that ship their own oneDNN (paddle) must be imported AFTER mindspore: "
        "import mindspore (or theseus_mindspore) before paddle, or start a fresh process."
    )


_check_numpy()
mindspore = _import_mindspore()


def _fn_probe() -> int:
    return 0


@mindspore.ops.constexpr(check=False)
def _is_none(func) -> bool:
    return func is None


def in_jit() -> bool:
    """True while the graph compiler (GRAPH_MODE, ``mindspore.jit``) compiles the caller,
    False when Python runs it: a function is not a compile-time constant, so it is seen as
    None there (the trick of MindSpore's private ``_run_in_jit``)."""
    return _is_none(_fn_probe)
