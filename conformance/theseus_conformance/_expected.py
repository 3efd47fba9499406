"""Exact expected outcomes of the seed-000 scenarios on MobileNetV1 (input 2×3×224×224)."""

from __future__ import annotations

STOP_AFTER = "blocks[0].depthwise_conv.conv"
#: The 18 layers stop_after(STOP_AFTER) turns into Identity, in definition order.
STOP_AFTER_IDENTITIES = (
    ["blocks[0].depthwise_conv.bn", "blocks[0].depthwise_conv.relu", "blocks[0].pointwise_conv"]
    + [f"blocks[{i}]" for i in range(1, 13)]
    + ["avg_pool", "flatten", "fc"]
)
STOP_AFTER_SHAPE = (2, 32, 112, 112)

RETURN_PATTERNS = ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]
RETURN_SHAPES = {
    "output": (2, 1000),
    "blocks[0]": (2, 64, 112, 112),
    "blocks[2]": (2, 128, 56, 56),
    "blocks[4]": (2, 256, 28, 28),
    "blocks[10]": (2, 512, 14, 14),
}

UPGRADE_PATTERNS = ["blocks[11].depthwise_conv.conv", "blocks[12].depthwise_conv.conv"]
UPGRADE_CHANNELS = {"blocks[11].depthwise_conv.conv": 512, "blocks[12].depthwise_conv.conv": 1024}

#: Every descriptor of MobileNetV1 in definition order.
_CBR = ["conv", "bn", "relu"]
MOBILENET_DESCRIPTORS = (
    ["conv"] + [f"conv.{c}" for c in _CBR] + ["blocks"]
    + [d for i in range(13) for d in (
        [f"blocks[{i}]"]
        + [x for part in ("depthwise_conv", "pointwise_conv")
           for x in [f"blocks[{i}].{part}"] + [f"blocks[{i}].{part}.{c}" for c in _CBR]]
    )]
    + ["avg_pool", "flatten", "fc"]
)

#: (bad input, expected exception class name, a fragment the message must contain);
#: ``{weight}``/``{bias}`` stand for the backend's parameter names (fixtures ``weight_name``/``bias_name``)
BAD_DESCRIPTORS = [
    ("blocks[99]", "LayerNotFoundError", "index 99 is out of range for blocks"),
    ("blocks[-14]", "LayerNotFoundError", "valid indices are -13..12"),
    ("nonexistent", "LayerNotFoundError", "has no child layer 'nonexistent'"),
    ("blcks[0]", "LayerNotFoundError", "did you mean"),
    ("", "DescriptorSyntaxError", "empty descriptor"),
    ("blocks[0", "DescriptorSyntaxError", "unclosed '['"),
    ("blocks[0]]", "DescriptorSyntaxError", "unmatched ']'"),
    ("blocks[a]", "DescriptorSyntaxError", "position 7"),
    ("conv.conv.{weight}", "NotALayerError", "not a layer"),
    ("blocks[0][0]", "LayerNotFoundError", "not a sequence container"),
    ("fc.{bias}.x", "NotALayerError", "not a layer"),
    ("**.nothing", "LayerNotFoundError", "'**.nothing'"),
]

#: Inputs that are valid, with their documented meaning.
GOOD_ALIASES = [
    ('blocks["0"]', "blocks[0]"),          # a quoted key selects the child by native name
    ("blocks[ 0 ]", "blocks[0]"),          # whitespace inside brackets is allowed
    ("blocks.0", "blocks[0]"),             # the native dotted spelling
    ("blocks[-1]", "blocks[12]"),          # negative index
    ("  blocks[1] ", "blocks[1]"),         # surrounding whitespace is stripped
]
