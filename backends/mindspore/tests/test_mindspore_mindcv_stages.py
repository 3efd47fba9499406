"""features() on unmodified MindCV models (random init, nothing downloaded): MindCV's own
``feature_info`` where the model has one, exact stages where it has none."""

from __future__ import annotations

import numpy as np
import pytest

import theseus_mindspore  # noqa: F401  (MindSpore's oneDNN before anything else)
import theseus
from theseus_conformance import peers

if not peers.available("mindcv"):
    pytest.skip("mindcv not installed", allow_module_level=True)


def _mindcv(name):
    peers.install()
    import mindcv
    import mindspore

    mindspore.set_seed(0)
    net = mindcv.create_model(name, pretrained=False)
    net.set_train(False)
    return net


def _last_per_reduction(info):
    return [(f["chs"], f["reduction"]) for i, f in enumerate(info)
            if i + 1 == len(info) or info[i + 1]["reduction"] != f["reduction"]]


#: (model, stage names theseus finds at 64x64, stages as (channels, reduction))
CASES = [
    # feature_info: relu (/2), layer1..layer4: the same stages
    ("resnet18", ["relu", "layer1", "layer2", "layer3", "layer4"],
     [(64, 2), (64, 4), (128, 8), (256, 16), (512, 32)]),
    # feature_info lists every block (several per resolution): theseus the last of each
    ("mobilenet_v3_small_100", ["features[2]", "features[3]", "features[5]", "features[10]", "features"],
     [(16, 2), (16, 4), (24, 8), (48, 16), (576, 32)]),
    # no feature_info: a Sequential trunk whose dense blocks hold cell lists (blocks, not cells)
    ("densenet121", ["features[2]", "features[4]", "features[6]", "features[8]", "features"],
     [(64, 2), (256, 4), (512, 8), (1024, 16), (1024, 32)]),
    # no feature_info; inception blocks with several Sequential branches are blocks, not
    # wrappers of a body (was: branch outputs such as inception3b.b4, 64 channels, at /8)
    ("googlenet", ["conv1", "conv3", "inception3b", "inception4e", "inception5b"],
     [(64, 2), (192, 4), (480, 8), (832, 16), (1024, 32)]),
    # no feature_info; blocks[9] (a 1x1 ConvBnAct 80 -> 480 appended to the list of stages)
    # is the head, not the /32 stage (was blocks[9], 480 channels)
    ("ghostnet_050", ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[6][4]", "blocks[8]"],
     [(8, 2), (12, 4), (20, 8), (56, 16), (80, 32)]),
]


@pytest.mark.parametrize("name,names,stages", CASES, ids=[c[0] for c in CASES])
def test_mindcv_stages(name, names, stages):
    import mindspore

    net = _mindcv(name)
    feat = theseus.features(net, input_shape=(1, 3, 64, 64))
    assert feat.feature_info.names() == names
    assert [(f["channels"], f["reduction"]) for f in feat.feature_info] == stages
    info = getattr(net, "feature_info", None)
    if info:
        assert stages == _last_per_reduction(info)
    outs = feat(mindspore.Tensor(np.zeros((1, 3, 64, 64), np.float32)))
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // r, 64 // r) for c, r in stages]
