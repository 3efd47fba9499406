"""CLI: theseus match and theseus port --map (in-process, torch and paddle MobileNetV1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("paddle")

import theseus  # noqa: E402
from theseus._cli import main  # noqa: E402

SRC, DST = "theseus_torch:MobileNetV1", "theseus_paddle:MobileNetV1"


@pytest.fixture(scope="module")
def map_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "map.json"
    assert main(["match", SRC, DST, "--input-shape", "1,3,32,32", "-o", str(path)]) == 0
    return path


def test_match_prints_the_table_and_writes_sorted_json(map_file, capsys):
    assert main(["match", SRC, DST, "--input-shape", "1,3,32,32"]) == 0
    out = capsys.readouterr().out
    assert "137 tensors" in out and "blocks[12].pointwise_conv.conv" in out
    assert "matched 137 tensors in" in out and "transforms: identity->" in out
    if hasattr(theseus._state, "state_layout"):       # per-tensor protocol: Paddle Linear is [in, out]
        assert "identity->transpose x1" in out
    data = json.loads(map_file.read_text())
    assert data["format"] == "theseus.portmap/1" and len(data["tensors"]) == 137
    assert map_file.read_text() == theseus.PortMap.load(map_file).dumps()


def test_port_checkpoint_with_prefix_through_the_map(map_file, tmp_path, capsys):
    import theseus_torch

    src = theseus_torch.MobileNetV1(seed=7)
    ckpt = {f"backbone.{k}": v for k, v in theseus.state(src).items()}
    ckpt["head.extra"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "ckpt.npz", **ckpt)
    out_file = tmp_path / "out.npz"
    code = main(["port", str(tmp_path / "ckpt.npz"), str(out_file), "--map", str(map_file), "--to", DST,
                 "--prefix", "backbone."])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"read {len(ckpt)} arrays" in out and "137 tensors matched" in out and "loaded 137 tensors" in out
    assert "not verified" in out
    got = theseus.read_state(out_file)
    want = theseus.state(src)
    assert len(got) == 137 and all(np.array_equal(got[k], want[k]) for k in got)


def test_port_verifies_with_from(map_file, tmp_path, capsys):
    import theseus_torch

    np.savez(tmp_path / "ckpt.npz", **theseus.state(theseus_torch.MobileNetV1(seed=8)))
    code = main(["port", str(tmp_path / "ckpt.npz"), str(tmp_path / "out.npz"), "--map", str(map_file), "--to", DST,
                 "--from", SRC, "--input-shape", "1,3,32,32"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verified: outputs agree" in out


@pytest.mark.parametrize("argv,message", [
    (["match", SRC, DST], "--input-shape"),
    (["port", "x.npz", "y.npz", "--map", "nope.json", "--to", DST], "cannot read port map"),
    (["port", "x.npz", "y.npz", "--map", "nope.json", "--to", DST, "--prefix", "backbone."], "cannot read port map"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) if argv[0] == "match" and "--input-shape" not in argv else _nothing():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) <= 3


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.skipif(not hasattr(theseus._state, "state_layout"),
                    reason="checkpoint keys are native names: needs the per-tensor layout protocol")
def test_readme_port_between_implementations_commands(tmp_path, monkeypatch, capsys):
    """README's 'Porting between implementations': the python block writes the checkpoint,
    then each command of the bash block runs and ports it into timm's resnet50."""
    import pathlib
    import re
    import shlex

    from theseus_conformance import peers

    if not peers.available():
        pytest.skip("the peer models are not installed")
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Porting between implementations", 1)[1].split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(python, "README.md[port between implementations]", "exec"), {})
    for line in [ln for ln in bash.splitlines() if ln.startswith("theseus ")]:
        assert main(shlex.split(line)[1:]) == 0, line
    out = capsys.readouterr().out
    assert "matched 267 tensors" in out and "loaded 267 tensors through the map" in out
    from safetensors.numpy import load_file

    written = load_file(str(tmp_path / "resnet50_timm.safetensors"))
    assert len(written) == 320 and "layer2.3.conv1.weight" in written
