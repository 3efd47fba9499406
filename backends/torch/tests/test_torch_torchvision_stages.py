"""features() on unmodified torchvision classifiers (random init, nothing downloaded): the
/32 stage is the last block of the body, not the 1x1 expansion conv torchvision appends to
``features`` before the classifier (issue 12's rule; torchvision's own detection backbones
tap that conv for MobileNetV3, timm's and PaddleClas's stage lists do not)."""

from __future__ import annotations

import pytest
import torch

import theseus
from _torch_stage_checks import assert_stage_outputs

torchvision = pytest.importorskip("torchvision")

CASES = [
    ("mobilenet_v3_large", ["features[1]", "features[3]", "features[6]", "features[12]", "features[15]"],
     [16, 24, 40, 112, 160]),
    ("efficientnet_b0", ["features[1]", "features[2]", "features[3]", "features[5]", "features[7]"],
     [16, 24, 40, 112, 320]),
    ("resnet18", ["relu", "layer1", "layer2", "layer3", "layer4"], [64, 64, 128, 256, 512]),
    # inception blocks hold several Sequential branches: blocks, not wrappers of a body (the
    # stages were branch outputs such as inception3b.branch4)
    ("googlenet", ["conv1", "conv3", "inception3b", "inception4e", "inception5b"], [64, 192, 480, 832, 1024]),
]

_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}


@pytest.mark.parametrize("name,names,channels", CASES, ids=[c[0] for c in CASES])
def test_torchvision_stages(name, names, channels):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **_KWARGS.get(name, {})).eval()
    feat = theseus.features(model, input_shape=(1, 3, 64, 64))
    assert feat.feature_info.names() == names
    assert feat.feature_info.channels() == channels and feat.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert_stage_outputs(model, feat, torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
