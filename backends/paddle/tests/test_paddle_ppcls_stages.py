"""features() on unmodified PaddleClas backbones (random init, nothing downloaded), against
PaddleClas's own stage patterns (``MODEL_STAGES_PATTERN``, what ``return_patterns`` taps)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import theseus
from theseus_conformance import peers

if not peers.available("paddleclas"):
    pytest.skip("paddleclas not installed", allow_module_level=True)

#: (module, builder, probe size, theseus's stage names, how they relate to PaddleClas's pattern)
CASES = [
    # PaddleClas lists no /2 stem stage; theseus lists the top-level stem (timm's act1 convention)
    ("resnet", "ResNet18", 64, ["stem", "blocks[1]", "blocks[3]", "blocks[5]", "blocks[7]"], "stem+"),
    # ResNet-vd's stem is a Sequential of three ConvBNLayers, all at /2: named by the container's last
    ("resnet", "ResNet50_vd", 64, ["stem[2]", "blocks[2]", "blocks[6]", "blocks[12]", "blocks[15]"], "stem+"),
    ("mobilenet_v3", "MobileNetV3_large_x0_35", 64,
     ["blocks[0]", "blocks[2]", "blocks[5]", "blocks[11]", "blocks[14]"], "same"),
    ("pp_lcnet", "PPLCNet_x0_25", 64, ["blocks2", "blocks3", "blocks4", "blocks5", "blocks6"], "same"),
    # PaddleClas's MobileNetV1 pattern stops at /16; theseus also lists the /32 end of the body
    ("mobilenet_v1", "MobileNetV1_x0_25", 64, ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]", "blocks[12]"],
     "+last"),
    # unpadded convs (25, 12, 5 at 224); the pattern lists two modules at /16 and /32, theseus the last
    ("inception_v3", "InceptionV3", 224,
     ["inception_block_list[2]", "inception_block_list[7]", "inception_block_list[10]"], "last"),
]


@pytest.mark.parametrize("module,name,size,names,relation", CASES, ids=[c[1] for c in CASES])
def test_ppcls_stages(module, name, size, names, relation):
    peers.install()
    import paddle

    mod = importlib.import_module(f"ppcls.arch.backbone.legendary_models.{module}")
    paddle.seed(0)
    net = getattr(mod, name)(pretrained=False)
    net.eval()
    feat = theseus.features(net, input_shape=(1, 3, size, size))
    assert feat.feature_info.names() == names
    arch = max((k for k in mod.MODEL_STAGES_PATTERN if name.startswith(k)), key=len)
    pattern = mod.MODEL_STAGES_PATTERN[arch]
    if relation == "same":
        expected = pattern
    elif relation == "stem+":
        expected = names[:1] + pattern
    elif relation == "+last":
        expected = pattern + names[-1:]
    else:  # pattern[1] and [2] are both /16, [3] and [4] both /32: theseus lists the last of each
        expected = [pattern[0], pattern[2], pattern[4]]
    assert names == expected
    outs = feat(paddle.to_tensor(np.zeros((1, 3, size, size), np.float32)))
    assert [o.shape[1] for o in outs] == feat.feature_info.channels()
    grids = [tuple(o.shape[2:]) for o in outs]
    if relation == "last":  # unpadded convs: 224 -> ... 25, 12, 5 read as /8, /16, /32
        assert grids == [(25, 25), (12, 12), (5, 5)] and feat.feature_info.reduction() == [8, 16, 32]
    else:
        assert grids == [(size // r, size // r) for r in feat.feature_info.reduction()]
