"""The fixtures a backend author overrides, and the ones derived from them.

Required fixtures raise ``NotImplementedError`` until overridden in a subclass; each
docstring states its contract.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from theseus import CAPABILITIES, CAPABILITY_TABLE

__all__ = ["Fixtures", "Gated", "requires", "set_eval", "to_numpy_tree", "from_threads"]


def requires(*capabilities: str) -> Callable:
    """Declare the backend capabilities (``theseus.CAPABILITY_TABLE``) a scenario uses.

    Put it on a test function or on a ``Base*Tests`` class (then it applies to every
    ``test_*`` function the class defines); requirements add up. On a backend that does not
    declare one of them the scenario is skipped, with a reason naming what is missing; the
    check is made by the scenario's own class (``Gated``), not by the fixtures a backend
    author writes.

    Example:
        >>> @requires("hooks")
        ... def test_capture(net): ...
        >>> sorted(test_capture._theseus_requires)
        ['hooks']
    """
    unknown = sorted(set(capabilities) - CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capability {', '.join(unknown)}; known: {', '.join(sorted(CAPABILITIES))}")

    def mark(fn: Callable) -> None:
        fn._theseus_requires = frozenset(capabilities) | getattr(fn, "_theseus_requires", frozenset())

    def deco(obj: Any) -> Any:
        if isinstance(obj, type):
            for name, member in vars(obj).items():
                if name.startswith("test") and callable(member):
                    mark(member)
            mark(obj)
        else:
            mark(obj)
        return obj

    return deco


def missing_capabilities(backend: Any, fn: Callable) -> list[str]:
    """The capabilities scenario ``fn`` needs that ``backend`` does not declare, sorted."""
    return sorted(set(getattr(fn, "_theseus_requires", ())) - set(backend.capabilities))


def set_eval(backend: Any, model: Any) -> Any:
    """Put ``model`` in eval mode when the backend has modes (``train_eval``); return it."""
    if "train_eval" in backend.capabilities:
        backend.set_training(model, False)
    return model


class Gated:
    """Base of every ``Base*Tests`` class: skips a scenario whose ``requires`` the backend
    under test lacks, naming each missing capability and what it means."""

    @pytest.fixture(autouse=True)
    def _theseus_capabilities(self, request: Any, backend: Any) -> None:
        skip_unless(backend, getattr(request.function, "_theseus_requires", ()))


def skip_unless(backend: Any, capabilities: Any) -> None:
    """Skip (naming each missing capability and its meaning) unless ``backend`` declares all
    of ``capabilities``; for class-scoped fixtures, which run before ``Gated``'s check."""
    missing = sorted(set(capabilities) - set(backend.capabilities))
    if missing:
        pytest.skip(f"backend {backend.name!r} lacks capability: {', '.join(missing)} ("
                    + "; ".join(f"{c}: {CAPABILITY_TABLE[c].meaning}" for c in missing) + ")")


def to_numpy_tree(backend: Any, out: Any) -> Any:
    """A model output (tensor, dict, list, tuple) with every tensor converted to numpy."""
    if isinstance(out, dict):
        return {k: to_numpy_tree(backend, v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(to_numpy_tree(backend, v) for v in out)
    return backend.to_numpy(out)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(a, b))


def from_threads(call: Callable[[Any], Any], inputs: list, calls: int = 50) -> list:
    """Call ``call(inputs[i])`` ``calls`` times from one thread per input, all at once;
    return the problems: ``(thread, reason)`` for any result that differs from a
    single-threaded run on the same input, or any exception. Empty means thread-safe."""
    import threading

    expected = [call(x) for x in inputs]
    problems: list = []

    def work(i: int) -> None:
        try:
            for _ in range(calls):
                if not _equal(call(inputs[i]), expected[i]):
                    problems.append((i, "another thread's result"))
                    return
        except Exception as err:  # reported to the test
            problems.append((i, repr(err)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems


class Fixtures(Gated):
    """Override ``backend``, ``mobilenet`` and ``build`` in your subclass; override the
    optional ones (``weight_name``, ``bias_name``) where your framework's names differ.

    Inputs the suite feeds are float32 NCHW numpy arrays (batch, channels, height, width);
    the models it builds (``mobilenet``, ``build``) must take them as they are.
    """

    @pytest.fixture(scope="class")
    def backend(self) -> Any:
        """The ``theseus.Backend`` instance under test (its framework already imported)."""
        raise NotImplementedError("override `backend` in your Fixtures subclass: return your theseus.Backend instance")

    @pytest.fixture(scope="class")
    def mobilenet(self) -> Callable[..., Any]:
        """``MobileNetV1(scale=1.0, class_num=1000, return_patterns=None, seed=0)`` factory
        with the reference structure and names (``conv``, ``blocks[0..12]``,
        ``avg_pool``, ``flatten``, ``fc``); equal seeds give equal weights."""
        raise NotImplementedError("override `mobilenet` in your Fixtures subclass: return your MobileNetV1 class")

    @pytest.fixture(scope="class")
    def build(self) -> Callable[[list], Any]:
        """``build(spec) -> layer`` for the neutral model spec (``theseus_conformance.spec``)."""
        raise NotImplementedError("override `build` in your Fixtures subclass: return your spec builder")

    @pytest.fixture(scope="class")
    def weight_name(self) -> str:
        """The attribute name of a convolution's kernel parameter in your framework (a
        descriptor ``conv.conv.<weight_name>`` names a parameter, not a layer)."""
        return "weight"

    @pytest.fixture(scope="class")
    def bias_name(self) -> str:
        """The attribute name of a linear layer's bias parameter in your framework."""
        return "bias"

    # -- derived ---------------------------------------------------------------------
    @pytest.fixture
    def net(self, mobilenet: Callable[..., Any], backend: Any) -> Any:
        """A fresh MobileNetV1 (seed 0), in eval mode if the backend has modes."""
        return set_eval(backend, mobilenet())

    @pytest.fixture
    def run(self, backend: Any) -> Callable[..., Any]:
        """``run(model, x: np.ndarray)``: forward without gradients, output as numpy (tree)."""

        def run(model: Any, x: np.ndarray) -> Any:
            return to_numpy_tree(backend, backend.infer(model, backend.from_numpy(x)))

        return run

    @pytest.fixture
    def image(self) -> np.ndarray:
        """The seed's input shape, batch 2: a deterministic (2, 3, 224, 224) float32 array."""
        return np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
