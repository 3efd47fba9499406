"""Backend discovery and dispatch errors (no framework needed)."""

from __future__ import annotations

import pytest

import theseus
from theseus import Backend, ContainerKind


class _Fake:
    pass


class FakeBackend(Backend):
    name = "fake"
    framework = None
    capabilities = frozenset()

    def is_layer(self, obj):
        return isinstance(obj, _Fake)

    def children(self, layer):
        return []

    def container_kind(self, layer):
        return ContainerKind.PLAIN

    def replace_child(self, parent, name, new):
        raise NotImplementedError

    def identity(self):
        return _Fake()

    def add_forward_hook(self, layer, fn):
        raise NotImplementedError

    add_forward_pre_hook = add_forward_hook

    def to_numpy(self, t):
        return t

    def from_numpy(self, a):
        return a

    def is_training(self, layer):
        return False

    def set_training(self, layer, mode, recurse=True):
        pass

    def parameters(self, layer, recurse=True):
        return []

    def is_trainable(self, p):
        return False

    def set_trainable(self, p, flag):
        pass


@pytest.fixture
def fake():
    theseus.register_backend(FakeBackend(), replace=True)
    yield
    theseus.unregister_backend("fake")


def test_unknown_model_names_type_and_fix():
    class Mystery:
        pass

    with pytest.raises(theseus.BackendNotFoundError) as info:
        theseus.backend_of(Mystery())
    msg = str(info.value)
    assert "Mystery" in msg and "installed backends" in msg and "register_backend" in msg
    assert isinstance(info.value, TypeError)


def test_registered_backend_is_found(fake):
    assert theseus.backend_of(_Fake()).name == "fake"
    assert "fake" in theseus.backends()


def test_two_backends_claiming_a_model_is_ambiguous(fake):
    other = FakeBackend()
    other.name = "fake2"
    theseus.register_backend(other)
    try:
        with pytest.raises(theseus.AmbiguousBackendError, match="fake, fake2"):
            theseus.backend_of(_Fake())
    finally:
        theseus.unregister_backend("fake2")


def test_register_requires_a_backend_instance():
    with pytest.raises(TypeError):
        theseus.register_backend(object())  # type: ignore[arg-type]


def test_get_unknown_backend():
    with pytest.raises(theseus.BackendNotFoundError, match="no theseus backend named 'nope'"):
        theseus.get_backend("nope")


def test_empty_model_resolve_errors(fake):
    with pytest.raises(theseus.LayerNotFoundError, match="has no child layer 'x'"):
        theseus.resolve(_Fake(), "x")
