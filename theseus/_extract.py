"""``extract``: a new native module that returns intermediate outputs (``features`` and
``truncate`` in ``_features.py`` use the same collector).

The source model's own forward runs (any topology); hooks on the requested layers collect
into a per-call, per-thread buffer that the new module's forward RETURNS, and the forward
stops as soon as the deepest requested layer has run. The hooks are inert outside the new
module's forward, so the source model behaves exactly as before.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Mapping, Union

from ._backend import Backend, backend_of, serial_lock
from ._errors import InvalidArgumentError, UnsupportedOperation
from ._ops import Patterns, _as_list, _resolve_nodes
from ._truth import TrueValues

__all__ = ["extract"]


class _Stop(Exception):
    """Raised by the last capture hook to end the forward early (never escapes)."""


def _remove_all(handles: list) -> None:
    for h in handles:
        h.remove()


class _Collector:
    def __init__(self, backend: Backend, model: Any, targets: "OrderedDict[str, Any]", stop_early: bool) -> None:
        self.backend = backend
        self.model = model
        self.keys = list(targets)
        self.stop_early = stop_early
        self.local = threading.local()
        self.truth = TrueValues(backend, "extract/features")
        self.handles = [backend.add_forward_hook(layer, self._hook(key)) for key, layer in targets.items()]

    def attach(self, wrapper: Any) -> Any:
        """Tie the hooks' lifetime to the new module: they go when it is collected."""
        try:
            weakref.finalize(wrapper, _remove_all, list(self.handles))
        except TypeError:  # pragma: no cover - not weak-referenceable: hooks stay (inert)
            pass
        return wrapper

    def _hook(self, key: str):
        local, n, stop, truth = self.local, len(self.keys), self.stop_early, self.truth

        def hook(layer: Any, inputs: tuple, output: Any) -> None:
            buf = getattr(local, "buf", None)
            if buf is not None:
                buf[key] = truth.take(key, output, local.record)
                if stop and len(buf) == n:
                    raise _Stop()

        return hook

    def run(self, *inputs: Any) -> tuple[dict, Any]:
        self.backend.check_hooks_usable(self.model)
        if self.backend.thread_safe:
            return self._run(inputs)
        with serial_lock(self.backend):  # the framework is not thread-safe: one call at a time
            return self._run(inputs)

    def _run(self, inputs: tuple) -> tuple[dict, Any]:
        buf: dict = {}
        record: dict = {}
        self.local.buf, self.local.record = buf, record
        out = None
        try:
            out = self.model(*inputs)
        except _Stop:
            pass
        finally:
            self.local.buf = self.local.record = None
        self.truth.check(record)
        missing = [k for k in self.keys if k not in buf]
        if missing:
            raise UnsupportedOperation(f"layer(s) {', '.join(missing)} did not run during the forward "
                                       "(not called by the model's forward, hooks do not run in this mode, or the model was "
                                       "compiled before this module was made: compile again)", "hooks")
        return buf, out


def extract(model: Any, layers: Union[Patterns, Mapping[str, str]], include_output: bool = False) -> Any:
    """IntermediateLayerGetter without its limits: layers at any depth, any topology.

    Args:
        model: a model of any backend; it is not changed (its layers are shared).
        layers: descriptors/patterns (outputs keyed by canonical descriptor), or a
            ``{descriptor: out_name}`` dict as in torchvision.
        include_output: also return the model's final output as ``"output"`` (first); the
            whole forward then runs. Otherwise the forward stops after the last requested
            layer has run.

    Returns:
        A new native module (nn.Module / nn.Layer / nn.Cell) holding ``model`` as child
        ``model``, whose forward returns an ordered dict ``{out_name: tensor}`` in the
        order the layers were given.

    Example:
        >>> ext = theseus.extract(resnet, {"layer1[0].conv2": "feat1", "layer3": "feat2"})  # doctest: +SKIP
        >>> list(ext(x))                                                                     # doctest: +SKIP
        ['feat1', 'feat2']
    """
    backend = backend_of(model)
    if isinstance(layers, Mapping):
        pairs = list(layers.items())
        for k, v in pairs:
            if not isinstance(v, str):
                raise InvalidArgumentError(f"extract: output names must be str, got {v!r} for {k!r}")
        nodes = []
        for k, v in pairs:
            found = _resolve_nodes(backend, model, [k])
            if len(found) != 1:
                raise InvalidArgumentError(f"extract: {k!r} matches {len(found)} layers; a dict needs one layer per key")
            nodes.append((v, found[0][1]))
    else:
        nodes = [(n.text, n) for _, n in _resolve_nodes(backend, model, _as_list(layers, "extract"))]
    names = [name for name, _ in nodes]
    if len(set(names)) != len(names) or (include_output and "output" in names):
        raise InvalidArgumentError(f"extract: output names must be unique (and not 'output'): {names}")
    targets = OrderedDict((name, n.layer) for name, n in nodes)
    backend.check_hooks_usable(model)
    collector = _Collector(backend, model, targets, stop_early=not include_output)

    def forward(*inputs: Any) -> "OrderedDict[str, Any]":
        buf, out = collector.run(*inputs)
        result: OrderedDict = OrderedDict()
        if include_output:
            result["output"] = out
        for name in names:
            result[name] = buf[name]
        return result

    return collector.attach(backend.wrap(model, forward, "FeatureExtractor"))
