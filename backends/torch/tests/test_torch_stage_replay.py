"""benchmarks/stage_agreement.py judges theseus on recorded probes (module tree + output
shapes) without building the models again: its replay must give exactly what
``theseus.features`` gives on the live model, tuple outputs included."""

from __future__ import annotations

import importlib.util
import json
import os

from torch import nn

import theseus
from _torch_stage_checks import Gated

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "benchmarks", "stage_agreement.py")


def _bench():
    spec = importlib.util.spec_from_file_location("stage_agreement", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()
        self.stages = nn.ModuleList([Gated(8, 16), Gated(16, 32)])
        self.tail = nn.Sequential(nn.Conv2d(32, 32, 1), nn.ReLU())
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.act1(self.conv1(x))
        for s in self.stages:
            _, x = s(x)
        return self.fc(self.tail(x).mean((2, 3)))


def test_replay_equals_live_features():
    bench = _bench()
    model = Net().eval()
    live = theseus.features(model, input_shape=(1, 3, 32, 32)).feature_info
    tree = json.loads(json.dumps(bench._record(model, 32)))   # through JSON, as cached; the (B, C)
    # gate is no map candidate (None), the map keeps its position
    assert {"parts": [None, [1, 16, 8, 8]]} in [s for _, s in tree["ran"].values()]
    replayed = bench._replay(tree)
    assert [[f["channels"], f["reduction"], f["name"]] for f in live] == replayed == [
        [8, 2, "act1"], [16, 4, "stages[0]"], [32, 8, "stages[1]"]]   # tail: the head (after the body)
    assert [f.get("element") for f in live] == [None, 1, 1]
