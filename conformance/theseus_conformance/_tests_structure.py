"""Descriptors, patterns, discovery and the tree, on every backend."""

from __future__ import annotations

import pytest

import theseus

from . import _expected as E
from ._fixtures import Gated, requires
from . import spec


class BaseDescriptorTests(Gated):
    def test_list_descriptors_mobilenet(self, net):
        assert theseus.list_descriptors(net) == E.MOBILENET_DESCRIPTORS

    def test_list_descriptors_nested(self, build):
        assert theseus.list_descriptors(build(spec.NESTED)) == spec.NESTED_DESCRIPTORS

    @pytest.mark.parametrize("text,canonical", E.GOOD_ALIASES)
    def test_aliases_resolve_to_the_same_layer(self, net, text, canonical):
        got = theseus.resolve(net, text)
        assert list(got) == [canonical]
        assert got[canonical] is theseus.resolve(net, canonical)[canonical]

    def test_native_dotted_spelling(self, net):
        got = theseus.resolve(net, "blocks.0.depthwise_conv.conv")
        assert list(got) == ["blocks[0].depthwise_conv.conv"]

    @pytest.mark.parametrize("pattern,expected", [
        ("blocks[1:3]", ["blocks[1]", "blocks[2]"]),
        ("blocks[-2:]", ["blocks[11]", "blocks[12]"]),
        ("blocks[0].*", ["blocks[0].depthwise_conv", "blocks[0].pointwise_conv"]),
        ("*_pool", ["avg_pool"]),
        ("blocks[*].pointwise_conv", [f"blocks[{i}].pointwise_conv" for i in range(13)]),
        ("**.bn", ["conv.bn"] + [f"blocks[{i}].{p}.bn" for i in range(13) for p in ("depthwise_conv", "pointwise_conv")]),
        ("blocks[12].**", ["blocks[12]"] + [d for d in E.MOBILENET_DESCRIPTORS if d.startswith("blocks[12].")]),
    ])
    def test_patterns(self, net, pattern, expected):
        assert list(theseus.resolve(net, pattern)) == expected

    def test_dict_container_keys(self, build):
        model = build(spec.NESTED)
        a = theseus.resolve(model, 'heads["cls"]')
        b = theseus.resolve(model, "heads.cls")
        assert list(a) == list(b) == ['heads["cls"]']
        assert a['heads["cls"]'] is b['heads["cls"]']

    def test_nested_negative_index(self, build):
        assert list(theseus.resolve(build(spec.NESTED), "stages[-1][-1]")) == ["stages[1][2]"]

    def test_patterns_in_given_order(self, net):
        assert list(theseus.resolve(net, ["fc", "conv"])) == ["fc", "conv"]


class BaseDiscoveryTests(Gated):
    def test_backend_of_model(self, net, backend):
        assert theseus.backend_of(net) is backend

    def test_backend_of_unknown_object(self):
        class NotAModel:
            pass

        with pytest.raises(theseus.BackendNotFoundError, match="NotAModel"):
            theseus.backend_of(NotAModel())

    def test_backend_listed(self, backend):
        assert backend.name in theseus.backends()

    def test_capabilities_are_known(self, backend):
        assert set(backend.capabilities) <= theseus.CAPABILITIES

    def test_declared_capabilities_are_implemented(self, backend):
        """A declared capability's methods are overridden, not the raising defaults."""
        lacking = [f"{cap}: {m}" for cap in sorted(backend.capabilities)
                   for m in theseus.CAPABILITY_TABLE[cap].methods
                   if getattr(type(backend), m) is getattr(theseus.Backend, m)]
        assert lacking == []


class BaseTreeTests(Gated):
    def test_tree_structure(self, net):
        lines = theseus.tree(net).splitlines()
        assert lines[0] == "MobileNetV1 (MobileNetV1)"
        assert lines[1] == "├── conv (ConvBNLayer)"
        assert lines[2] == "│   ├── conv.conv (" + lines[2].split("(")[1]
        assert lines[-1] == "└── fc (" + lines[-1].split("(")[1]
        assert len(lines) == 1 + len(E.MOBILENET_DESCRIPTORS)

    @requires("hooks")
    def test_tree_with_shapes(self, net):
        text = theseus.tree(net, input_shape=(1, 3, 224, 224))
        assert "├── conv (ConvBNLayer) -> (1, 32, 112, 112)" in text
        assert "blocks[4] (DepthwiseSeparable) -> (1, 256, 28, 28)" in text
        assert text.splitlines()[0] == "MobileNetV1 (MobileNetV1) -> (1, 1000)"
