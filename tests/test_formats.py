"""Native checkpoint files: read without the framework, written for the framework.

Files are written by each framework's own ``save`` and read by theseus (and the other way
round); a malicious pickle is refused before it creates anything.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import theseus
from theseus._formats import UnsafeCheckpointError, read_native, write_native

WEIGHTS = {
    "conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
    "bn.running_var": np.array([0.5, 2.0], dtype=np.float32),
    "fc.weight": np.arange(12, dtype=np.float64).reshape(3, 4),
    "bn.num_batches_tracked": np.array(7, dtype=np.int64),
}


@pytest.mark.parametrize("ext", [".pt", ".pth", ".bin", ".safetensors", ".pdparams", ".ckpt"])
def test_round_trip_through_theseus_is_exact(tmp_path, ext):
    path = tmp_path / f"w{ext}"
    theseus.save_state(path, WEIGHTS)
    back = theseus.read_state(path)
    assert list(back) == list(WEIGHTS)
    for k, v in WEIGHTS.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v)


def test_reading_imports_no_framework(tmp_path):
    for ext in (".pt", ".safetensors", ".pdparams", ".ckpt"):
        theseus.save_state(tmp_path / f"w{ext}", WEIGHTS)
    code = ("import sys, theseus\nfor e in ('.pt', '.safetensors', '.pdparams', '.ckpt'):\n"
            f"    assert len(theseus.read_state({str(tmp_path)!r} + '/w' + e)) == 4\n"
            "print([m for m in ('torch', 'paddle', 'mindspore') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_torch_files_both_ways(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 5))
    sd = net.state_dict()
    sd["view"] = torch.arange(6.0).reshape(2, 3).t()          # a strided (non-contiguous) tensor
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "a.pth")
    got = theseus.read_state(tmp_path / "a.pth")
    assert set(got) == {f"state_dict.{k}" for k in sd}
    assert all(np.array_equal(got[f"state_dict.{k}"], v.numpy()) for k, v in sd.items())
    write_native(tmp_path / "b.pt", {k: v.numpy() for k, v in net.state_dict().items()})
    back = torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in net.state_dict().items())
    net.load_state_dict(back)


def test_paddle_files_both_ways(tmp_path):
    paddle = pytest.importorskip("paddle")
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Linear(5, 6))
    paddle.save(net.state_dict(), str(tmp_path / "a.pdparams"))
    got = theseus.read_state(tmp_path / "a.pdparams")
    assert set(got) == set(net.state_dict())
    assert all(np.array_equal(got[k], v.numpy()) for k, v in net.state_dict().items())
    write_native(tmp_path / "b.pdparams", got)
    net.set_state_dict(paddle.load(str(tmp_path / "b.pdparams")))
    assert all(np.array_equal(got[k], v.numpy()) for k, v in net.state_dict().items())


def test_mindspore_files_both_ways(tmp_path):
    pytest.importorskip("theseus_mindspore")
    from theseus_mindspore._runtime import mindspore as ms   # oneDNN first, even after paddle
    net = ms.nn.SequentialCell([ms.nn.Conv2d(3, 4, 3), ms.nn.BatchNorm2d(4)])
    ms.save_checkpoint(net, str(tmp_path / "a.ckpt"))
    got = theseus.read_state(tmp_path / "a.ckpt")
    want = {k: v.asnumpy() for k, v in net.parameters_dict().items()}
    assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    write_native(tmp_path / "b.ckpt", got)
    back = ms.load_checkpoint(str(tmp_path / "b.ckpt"))
    assert all(np.array_equal(back[k].asnumpy(), want[k]) for k in want)


def test_safetensors_files_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"a": np.ones((2, 3), np.float16), "b": np.arange(4, dtype=np.int32)}, str(tmp_path / "a.safetensors"))
    got = theseus.read_state(tmp_path / "a.safetensors")
    assert got["a"].dtype == np.float16 and np.array_equal(got["b"], np.arange(4))
    write_native(tmp_path / "b.safetensors", got)
    back = st.load_file(str(tmp_path / "b.safetensors"))
    assert np.array_equal(back["a"], got["a"]) and np.array_equal(back["b"], got["b"])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("ext", [".pdparams", ".pt"])
def test_malicious_pickle_creates_nothing(tmp_path, ext):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weight": np.zeros(2, np.float32), "evil": _Evil(marker)}, protocol=2)
    with pytest.raises(UnsafeCheckpointError):      # the same payload alone, protocol 4
        read_native_bytes = pickle.dumps({"evil": _Evil(marker)}, protocol=4)
        (tmp_path / "alone.pdparams").write_bytes(read_native_bytes)
        theseus.read_state(tmp_path / "alone.pdparams")
    path = tmp_path / f"evil{ext}"
    if ext == ".pt":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|os\.system") as err:
        theseus.read_state(path)
    assert "nothing was created" in str(err.value)
    assert not marker.exists()


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a zip")
    with pytest.raises(theseus.InvalidArgumentError, match="not a zip-format torch checkpoint"):
        read_native(tmp_path / "x.pt")
    (tmp_path / "x.safetensors").write_bytes(b"\xff" * 8)
    with pytest.raises(theseus.InvalidArgumentError, match="header length"):
        read_native(tmp_path / "x.safetensors")
    with pytest.raises(theseus.InvalidArgumentError, match="no such file"):
        read_native(tmp_path / "missing.ckpt")
    (tmp_path / "x.ckpt").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(theseus.InvalidArgumentError, match="not a MindSpore checkpoint"):
        read_native(tmp_path / "x.ckpt")
