"""The conformance suite on the torch backend (defined in ``theseus_torch.conformance``)."""

from theseus_torch.conformance import TestTorchConformance  # noqa: F401
