"""One framework-free seeded initialisation: ``MobileNetV1(seed=s)`` holds the same weights
on torch, paddle, mindspore and the reference backend (checked in one subprocess, MindSpore
imported first for the oneDNN clash)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r'''
import json, numpy as np
import theseus_mindspore                     # first: MindSpore's oneDNN before paddle's
import theseus
from theseus_conformance.reference import ReferenceBackend
theseus.register_backend(ReferenceBackend(), replace=True)
from theseus_conformance.reference import MobileNetV1 as R
from theseus_torch import MobileNetV1 as T
from theseus_paddle import MobileNetV1 as P
from theseus_mindspore import MobileNetV1 as M

def digest(net):
    sd = theseus.state(net)
    return {k: [float(np.float64(v).sum()), v.tobytes().hex()[:64]] for k, v in sd.items()}

ref = theseus.state(R(scale=0.25, class_num=10, seed=3))
result = {}
for name, cls in (("torch", T), ("paddle", P), ("mindspore", M), ("reference", R)):
    sd = theseus.state(cls(scale=0.25, class_num=10, seed=3))
    # same keys (torch also keeps BN's optional num_batches_tracked; order is the framework's)
    keys = sorted(k for k in sd if not k.endswith(".num_batches_tracked"))
    result[name] = [keys == sorted(ref), [k for k in ref if not np.array_equal(sd[k], ref[k])]]
other = theseus.state(T(scale=0.25, class_num=10, seed=4))
result["other_seed_differs"] = not np.array_equal(other["conv.conv.weight"], ref["conv.conv.weight"])
result["fc_bias_zero"] = float(np.abs(ref["fc.bias"]).max())
print("RESULT " + json.dumps(result))
'''


def test_equal_seeds_give_equal_weights_on_every_backend(tmp_path):
    import importlib.util

    missing = [fw for fw in ("torch", "paddle", "mindspore") if importlib.util.find_spec(fw) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    script = tmp_path / "seeded.py"       # a file: MindSpore compiles graphs from source files
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT "):])
    for name in ("torch", "paddle", "mindspore", "reference"):
        assert result[name] == [True, []], (name, result[name])
    assert result["other_seed_differs"] and result["fc_bias_zero"] == 0.0


def test_seeded_init_draws_in_state_order_with_he_and_lecun_scales():
    import numpy as np

    import theseus
    from theseus_conformance.reference import Linear, ReferenceBackend, Sequential, build

    theseus.register_backend(ReferenceBackend(), replace=True)
    model = Sequential(build(["conv", 3, 8, 3, 1, 1, 1, True]), Linear(8, 4))
    written = theseus.seeded_init(model, seed=5)
    assert written == ["[0].weight", "[1].weight", "[1].bias"]
    rng = np.random.RandomState(5)
    sd = theseus.state(model)
    np.testing.assert_array_equal(sd["[0].weight"], (rng.standard_normal((8, 3, 3, 3)) * (2 / 27) ** 0.5).astype(np.float32))
    np.testing.assert_array_equal(sd["[1].weight"], (rng.standard_normal((4, 8)) * (1 / 8) ** 0.5).astype(np.float32))
    assert not sd["[1].bias"].any() and sd["[0].bias"].any()     # conv bias kept
