"""Framework-free descriptions of the reference architectures every backend builds.

Data only: each backend's MobileNetV1 reads its block table from here, so the four
implementations (torch, paddle, mindspore, the numpy reference) cannot drift apart.
"""

from __future__ import annotations

__all__ = ["MOBILENET_V1_BLOCKS"]

#: MobileNetV1 (PaddleClas): ``(in, out1, out2, groups, stride)`` per block of ``blocks``,
#: before the channel ``scale`` is applied.
MOBILENET_V1_BLOCKS = (
    (32, 32, 64, 32, 1), (64, 64, 128, 64, 2), (128, 128, 128, 128, 1), (128, 128, 256, 128, 2),
    (256, 256, 256, 256, 1), (256, 256, 512, 256, 2), (512, 512, 512, 512, 1), (512, 512, 512, 512, 1),
    (512, 512, 512, 512, 1), (512, 512, 512, 512, 1), (512, 512, 512, 512, 1), (512, 512, 1024, 512, 2),
    (1024, 1024, 1024, 1024, 1),
)
