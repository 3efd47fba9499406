"""Test set-up for the whole repository: make the third-party peer models importable.

timm (via a CUDA-built torchvision beside the CPU torch), PaddleClas's ``ppcls`` and MindCV
each need one import-time fix; ``theseus_conformance.peers`` documents them. The hook imports
nothing until a peer is imported.
"""

from theseus_conformance import peers

peers.install()
