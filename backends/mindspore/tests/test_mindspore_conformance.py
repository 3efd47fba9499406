"""The conformance suite on the mindspore backend (defined in ``theseus_mindspore.conformance``)."""

from theseus_mindspore.conformance import TestMindSporeConformance  # noqa: F401
