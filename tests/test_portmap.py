"""match/PortMap/port on small torch and paddle models: definition order != execution
order, hand-edited wrong transforms rejected by verification, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
paddle = pytest.importorskip("paddle")

import theseus  # noqa: E402

X = np.random.RandomState(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


class TorchNet(torch.nn.Module):
    """bn defined before conv, the shortcut before the main branch, a square Linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.shortcut = torch.nn.Conv2d(8, 16, 1)
        self.main = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16))
        self.fc1 = torch.nn.Linear(16, 256)
        self.fc2 = torch.nn.Linear(256, 256)
        with torch.no_grad():
            for m in (self.bn, self.main[1]):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = self.main(x) + self.shortcut(x)
        return self.fc2(torch.relu(self.fc1(x.mean((2, 3)))))


class PaddleNet(paddle.nn.Layer):
    """The same network written in execution order, other names."""

    def __init__(self):
        super().__init__()
        self.stem = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8))
        self.branch_a = paddle.nn.Conv2D(8, 16, 3, padding=1)
        self.branch_a_bn = paddle.nn.BatchNorm2D(16)
        self.proj = paddle.nn.Conv2D(8, 16, 1)
        self.head = paddle.nn.LayerList([paddle.nn.Linear(16, 256), paddle.nn.Linear(256, 256)])

    def forward(self, x):
        x = paddle.nn.functional.relu(self.stem(x))
        x = self.branch_a_bn(self.branch_a(x)) + self.proj(x)
        return self.head[1](paddle.nn.functional.relu(self.head[0](x.mean((2, 3)))))


@pytest.fixture()
def pair():
    t, p = TorchNet().eval(), PaddleNet()
    p.eval()
    return t, p


def test_definition_order_does_not_matter(pair):
    pm = theseus.match(*pair, X)
    assert pm.layers[:6] == [("conv", "stem[0]"), ("bn", "stem[1]"), ("main[0]", "branch_a"),
                             ("main[1]", "branch_a_bn"), ("shortcut", "proj"), ("fc1", "head[0]")]
    assert pm.translate("main[1]") == "branch_a_bn"
    with pytest.raises(theseus.LayerNotFoundError, match="no single layer of the destination"):
        pm.translate("main")              # branch_a and branch_a_bn are not grouped in PaddleNet
    report = theseus.port(*pair, map=pm, example_input=X)
    assert report.ok, report.summary() + report.message
    assert pm.inverse().translate("head[1]") == "fc2"


def _edited(pm, edit):
    data = pm.to_json()
    for row in data["tensors"]:
        edit(row)
    return theseus.PortMap.from_json(json.loads(json.dumps(data)))


def test_bn_mean_and_variance_swapped_is_rejected(pair):
    pm = theseus.match(*pair, X)

    def swap(row):
        if row["src"] == "main[1]" and row["src_role"] in ("running_mean", "running_var"):
            row["dst_role"] = {"running_mean": "running_var", "running_var": "running_mean"}[row["src_role"]]

    report = theseus.port(*pair, map=_edited(pm, swap), example_input=X)
    assert not report.ok and report.first_difference == ("main[1]", "branch_a_bn")
    with pytest.raises(theseus.PortVerificationError, match="main\\[1\\] -> branch_a_bn"):
        theseus.port(*pair, map=_edited(pm, swap), example_input=X, raise_on_difference=True)


@pytest.mark.skipif(not hasattr(theseus._state, "state_layout"),
                    reason="map transforms act on native names: needs the per-tensor layout protocol")
def test_square_linear_transposed_is_rejected(pair):
    pm = theseus.match(*pair, X)

    def transpose(row):
        if row["src"] == "fc2" and row["src_role"] == "weight":
            row["src_transform"] = "transpose"

    report = theseus.port(*pair, map=_edited(pm, transpose), example_input=X)
    assert not report.ok and report.first_difference == ("fc2", "head[1]")
    assert "DIFFERS" in report.summary()


def test_translate_errors(pair):
    pm = theseus.match(*pair, X)
    with pytest.raises(theseus.LayerNotFoundError, match="not a layer of the source"):
        pm.translate("nope")


def test_apply_reports_missing_and_prefix_typos(pair):
    pm = theseus.match(*pair, X)
    weights = {f"backbone.{k}": v for k, v in theseus.state(pair[0]).items()}
    with pytest.raises(theseus.InvalidArgumentError, match="prefix 'backbnoe.' matches no key"):
        pm.apply(weights, prefix="backbnoe.")
    del weights["backbone.fc2.weight"]
    with pytest.raises(theseus.StateMismatchError, match="missing 1: fc2.weight"):
        pm.apply(weights, prefix="backbone.")


def test_bad_map_files(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(theseus.InvalidArgumentError, match="not a theseus port map"):
        theseus.PortMap.load(tmp_path / "m.json")
    with pytest.raises(theseus.InvalidArgumentError, match="cannot read port map"):
        theseus.PortMap.load(tmp_path / "missing.json")
