"""The conformance suite on the paddle backend (defined in ``theseus_paddle.conformance``)."""

from theseus_paddle.conformance import TestPaddleConformance  # noqa: F401
