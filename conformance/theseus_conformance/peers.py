"""Third-party peer models (timm, MindCV, PaddleClas) for tests and benchmarks.

The peers are installed by the project's test set-up (see README and docs/framework-traps.md)
and always built with random init: nothing here downloads weights. Two installation traps
are handled at import time, by a meta-path hook that :func:`install` adds (the project's
root ``conftest.py`` calls it; a script calls it before importing a peer):

* ``torchvision``: PyPI's Linux wheels are CUDA builds whose C ops (``torchvision/_C.so``)
  need ``libtorch_cuda.so`` and cannot load beside the CPU torch. torchvision then fails at
  import (``RuntimeError: operator torchvision::nms does not exist``) because it registers
  fake kernels for ``nms``/``qnms`` without checking that its ops loaded, and timm imports
  torchvision. When (and only when) the C ops cannot load, the hook declares the schemas of
  those two ops before torchvision is imported. The import then completes; calling a
  torchvision C op still raises torchvision's own "Couldn't load custom C++ ops" error.
  Model code (timm layers, ``torchvision.models``) does not use them.
* ``ppcls`` (PaddleClas's model code) ships inside the ``paddleclas`` wheel, whose top-level
  ``paddleclas/__init__.py`` imports OpenCV and the inference tool chain. The hook makes
  ``import ppcls`` resolve to the wheel's ``paddleclas/ppcls`` without running that file, and
  initialises PaddleClas's logger (its models log through it while being built and fail
  with ``'NoneType' object has no attribute 'warning'`` otherwise).
* ``mindcv`` imports mindspore: the hook loads MindSpore's oneDNN first (see
  ``theseus_mindspore``), so mindcv can be imported after paddle.

Example:
    >>> from theseus_conformance import peers
    >>> peers.install()
    >>> net = peers.timm_model("resnet50")       # doctest: +SKIP
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys

__all__ = ["available", "install", "timm_model", "mindcv_model", "ppcls_model"]

_PEERS = ("timm", "mindcv", "paddleclas")

_TORCHVISION_OPS_WITH_UNGUARDED_FAKES = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_declared: list = []  # keeps the torch.library.Library alive


def _torchvision_ops_fallback() -> None:
    """Declare nms/qnms if torchvision's C ops cannot load beside this torch."""
    import torch

    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    finder = importlib.machinery.FileFinder(
        spec.submodule_search_locations[0],
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
    ext = finder.find_spec("_C")
    try:
        if ext is None:
            raise OSError("torchvision has no _C extension")
        torch.ops.load_library(ext.origin)
    except OSError:
        if hasattr(torch.ops.torchvision, "nms"):
            return
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _TORCHVISION_OPS_WITH_UNGUARDED_FAKES:
            lib.define(schema)
        _declared.append(lib)


def _paddleclas_dir() -> str | None:
    spec = importlib.machinery.PathFinder.find_spec("paddleclas")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


class _AfterExec(importlib.abc.Loader):
    """Wraps a loader to run ``after(module)`` once the module has executed."""

    def __init__(self, loader, after):
        self._loader, self._after = loader, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after(module)


def _init_ppcls_logger(module) -> None:
    module.init_logger(log_level=logging.ERROR)


class _PeerFinder(importlib.abc.MetaPathFinder):
    def __init__(self):
        self._torchvision_done = False

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" and not self._torchvision_done:
            self._torchvision_done = True
            _torchvision_ops_fallback()
            return None
        if name == "mindcv" and "mindspore" not in sys.modules:
            try:
                import theseus_mindspore  # noqa: F401  (importing it loads MindSpore's oneDNN first)
            except ImportError:
                return None
            return None
        if name == "ppcls":
            if importlib.machinery.PathFinder.find_spec("ppcls") is not None:
                return None
            root = _paddleclas_dir()
            if root is None:
                return None
            return importlib.machinery.PathFinder.find_spec("ppcls", [root])
        if name == "ppcls.utils.logger":
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _AfterExec(spec.loader, _init_ppcls_logger)
            return spec
        return None


def install() -> None:
    """Add the import hook for the peers (idempotent, imports nothing).

    Example:
        >>> install(); install()
    """
    if not any(isinstance(f, _PeerFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PeerFinder())


def available(*names: str) -> bool:
    """Whether the peer packages (default: all of timm, mindcv, paddleclas) are installed.

    Looks for them without importing anything.

    Example:
        >>> isinstance(available("timm"), bool)
        True
    """
    return all(importlib.machinery.PathFinder.find_spec(n) is not None for n in names or _PEERS)


def timm_model(name: str, **kwargs):
    """A timm model in eval mode, random init (``pretrained=False``).

    Example:
        >>> net = timm_model("mobilenetv1_100")      # doctest: +SKIP
    """
    install()
    import timm

    return timm.create_model(name, pretrained=False, **kwargs).eval()


def mindcv_model(name: str, **kwargs):
    """A MindCV model in inference mode, random init (``pretrained=False``).

    Example:
        >>> net = mindcv_model("resnet50")           # doctest: +SKIP
    """
    install()
    import mindcv

    net = mindcv.create_model(name, pretrained=False, **kwargs)
    net.set_train(False)
    return net


_PPCLS_MODULES = {
    "MobileNetV1": "ppcls.arch.backbone.legendary_models.mobilenet_v1",
    "ResNet50": "ppcls.arch.backbone.legendary_models.resnet",
}


def ppcls_model(name: str, **kwargs):
    """A PaddleClas backbone in eval mode, random init (``pretrained=False``).

    ``name`` is a function of ``ppcls.arch.backbone`` (``MobileNetV1``, ``ResNet50``, ...).

    Example:
        >>> net = ppcls_model("ResNet50")            # doctest: +SKIP
    """
    install()
    import importlib

    module = importlib.import_module(_PPCLS_MODULES.get(name, "ppcls.arch.backbone"))
    net = getattr(module, name)(pretrained=False, **kwargs)
    net.eval()
    return net
