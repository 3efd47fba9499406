"""The conformance suite on the paddle backend.

Run it with ``theseus conformance --backend paddle`` or ``pytest -rsxX`` on this file; the
backend's ``tests/test_paddle_conformance.py`` imports the class so plain ``pytest`` runs
collect it too. This module imports paddle (the backend is considered once its framework is
imported); nothing else in ``theseus_paddle`` imports it.
"""

import paddle  # noqa: F401

from theseus_conformance import suite_for

__all__ = ["TestPaddleConformance"]

TestPaddleConformance = suite_for("paddle", "theseus_paddle:MobileNetV1", "theseus_paddle._zoo:build", name="TestPaddleConformance")
