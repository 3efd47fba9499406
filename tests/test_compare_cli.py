"""compare/certify/verify through the command line with ``--map`` (two implementations of one
network with different names, definition order and framework), and the PNG plot: written
with matplotlib, a clear TheseusError without it.

The source is recorded in a subprocess by the CLI itself; the rest runs through
``theseus._cli.main`` in this process (output captured), so every exit status and line is
asserted exactly.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
paddle = pytest.importorskip("paddle")

import theseus  # noqa: E402
from theseus import _cli  # noqa: E402

MODELS = '''
import numpy as np
import paddle
import torch


class Src(torch.nn.Module):
    """conv -> bn -> relu -> pointwise conv -> mean -> fc"""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.pw = torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.pw(self.relu(self.bn(self.conv(x)))).mean((2, 3)))


class Dst(paddle.nn.Layer):
    """The same network in Paddle: other names, the head defined first."""

    def __init__(self):
        super().__init__()
        self.head = paddle.nn.Linear(8, 5)
        self.stem = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8),
                                         paddle.nn.ReLU())
        self.mix = paddle.nn.Conv2D(8, 8, 1)

    def forward(self, x):
        return self.head(self.mix(self.stem(x)).mean((2, 3)))


def src():
    return Src().eval()


def dst():
    paddle.seed(1)
    m = Dst()
    m.eval()
    return m
'''

SHAPE = "1,3,12,12"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """models.py, the PortMap and a plain {src: dst} map, source weights and ported (good and
    broken) destination weights."""
    d = tmp_path_factory.mktemp("cli_map")
    (d / "models.py").write_text(MODELS)
    sys.path.insert(0, str(d))
    try:
        import models
    finally:
        sys.path.remove(str(d))
    src, dst = models.src(), models.dst()
    sd = theseus.state(src)
    rng = np.random.RandomState(3)
    sd["bn.running_mean"] = rng.normal(0, 0.2, 8).astype(np.float32)
    sd["bn.running_var"] = rng.uniform(0.5, 2, 8).astype(np.float32)
    theseus.load_state(src, sd)
    x = theseus.make_input((1, 3, 12, 12))
    pm = theseus.match(src, dst, x)
    assert dict(pm.layers) == {"conv": "stem[0]", "bn": "stem[1]", "relu": "stem[2]", "pw": "mix", "fc": "head"}
    report = theseus.port(src, dst, map=pm, example_input=x)
    assert report.ok
    pm.save(d / "portmap.json")
    (d / "dict.json").write_text(json.dumps(dict(pm.layers)))
    theseus.save_state(str(d / "src.npz"), sd)
    theseus.save_state(str(d / "dst.npz"), theseus.state(dst))
    bad = theseus.state(dst)
    bad["mix.weight"] = np.ascontiguousarray(bad["mix.weight"][[1, 0] + list(range(2, 8))])
    theseus.save_state(str(d / "dst_bad.npz"), bad)
    return d


def _run(capsys, monkeypatch, d, *args):
    monkeypatch.syspath_prepend(str(d))
    monkeypatch.chdir(d)
    rc = _cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _pair(d):
    return [f"{d / 'models.py'}:src", f"{d / 'models.py'}:dst", "--src-weights", d / "src.npz",
            "--input-shape", SHAPE]


@pytest.mark.parametrize("map_file", ["portmap.json", "dict.json"])
def test_cli_compare_with_map(capsys, monkeypatch, files, map_file):
    d = files
    rc, out, err = _run(capsys, monkeypatch, d, "compare", *_pair(d), "--dst-weights", d / "dst.npz",
                        "--map", d / map_file)
    assert (rc, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0].startswith("compare torch -> paddle: 6 outputs judged; all agree within the per-layer tolerance")
    pairs = {(ln.split()[1], ln.split()[2]) for ln in lines[3:9]}
    assert pairs == {("conv", "stem[0]"), ("bn", "stem[1]"), ("relu", "stem[2]"), ("pw", "mix"), ("fc", "head"),
                     ("<output>", "<output>")}
    assert any(ln.startswith("note: the source") and "subprocess" in ln for ln in lines)

    if map_file == "dict.json":
        return              # the faulty port once, with the PortMap file (and a PNG plot)
    png = d / "cli.png"
    plot = ["--plot", png] if importlib.util.find_spec("matplotlib") else []     # a test dependency
    rc, out, err = _run(capsys, monkeypatch, d, "compare", *_pair(d), "--dst-weights", d / "dst_bad.npz",
                        "--map", d / map_file, *plot)
    assert (rc, err) == (1, "")
    if plot:
        assert out.splitlines()[-1] == f"plot: {png}" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = out.splitlines()[0]
    assert "FIRST FAULT (isolated): source pw (Conv2d) = destination mix (Conv2D)" in first
    assert first.endswith("Likely cause: output channels 0 and 1 swapped (weight rows exchanged)")
    marked = [ln for ln in out.splitlines() if ln.startswith(">>")]
    assert len(marked) == 1 and marked[0].split()[1:4] == ["3", "pw", "mix"]


def test_cli_without_map_names_the_unjudged_layers(capsys, monkeypatch, files):
    """Without --map the descriptors do not line up: only the output and the one parameter-free
    layer (one of a kind, paired by position) are judged, and the output names the rest."""
    d = files
    rc, out, err = _run(capsys, monkeypatch, d, "compare", *_pair(d), "--dst-weights", d / "dst.npz")
    assert rc == 0 and err == ""
    assert out.splitlines()[0].startswith("compare torch -> paddle: 2 outputs judged")
    assert [ln.split()[1:3] for ln in out.splitlines()[3:5]] == [["relu", "stem[2]"], ["<output>", "<output>"]]
    assert "not judged (no destination layer): conv, bn, pw, fc" in out


def test_cli_certify_and_verify_with_map(capsys, monkeypatch, files):
    d = files
    cert = d / "port.tcert"
    rc, out, err = _run(capsys, monkeypatch, d, "certify", *_pair(d), "--dst-weights", d / "dst.npz",
                        "--map", d / "portmap.json", "-o", cert)
    assert (rc, err) == (0, "")
    assert out.splitlines()[-1] == f"certificate: {cert} ({cert.stat().st_size} bytes)"
    rc, out, err = _run(capsys, monkeypatch, d, "verify", cert, "--model", f"{d / 'models.py'}:dst",
                        "--weights", d / "dst.npz")
    assert (rc, err) == (0, "")
    assert "all agree" in out.splitlines()[0]
    rc, out, err = _run(capsys, monkeypatch, d, "verify", cert, "--model", f"{d / 'models.py'}:dst",
                        "--weights", d / "dst_bad.npz")
    assert rc == 1 and err == ""
    assert "FIRST FAULT (accumulated): source pw (Conv2d) = destination mix (Conv2D)" in out.splitlines()[0]
    rc, out, err = _run(capsys, monkeypatch, d, "certify", *_pair(d), "--dst-weights", d / "dst_bad.npz",
                        "--map", d / "portmap.json", "-o", d / "bad.tcert")
    assert rc == 1 and out.splitlines()[-1] == "not certified" and not (d / "bad.tcert").exists()


@pytest.mark.parametrize("content,message", [
    ("not json", "cannot read the map"),
    ("[1, 2]", "is not a layer map: expected JSON {source descriptor: destination descriptor}"),
    ('{"format": "something else"}', "not a theseus port map"),
    ('{"conv": "stem[9]"}', "map: destination layer 'stem[9]' (for source 'conv') is not a layer of the destination"),
])
@pytest.mark.parametrize("command", ["compare", "certify"])
def test_cli_bad_map_is_one_line_exit_2(capsys, monkeypatch, files, tmp_path, content, message, command):
    d = files
    bad = tmp_path / "map.json"
    bad.write_text(content)
    extra = ["-o", tmp_path / "x.tcert"] if command == "certify" else []
    rc, out, err = _run(capsys, monkeypatch, d, command, *_pair(d), "--dst-weights", d / "dst.npz",
                        "--map", bad, *extra)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.tcert").exists()


# ----------------------------------------------------------------------------------------
# the PNG plot
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faulty_report():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1)).eval()
    b = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1)).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b[2].weight[[0, 1]] = b[2].weight[[1, 0]].clone()
    report = theseus.compare(a, b, input_shape=(1, 3, 8, 8))
    assert report.first_divergence == "[2]"
    return report


def test_png_plot_is_written(tmp_path, faulty_report):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    assert faulty_report.plot(str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert data[12:16] == b"IHDR" and int.from_bytes(data[16:20], "big") == 1100   # 11 in x 100 dpi


def test_png_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch, faulty_report):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib -> ImportError
    with pytest.raises(theseus.TheseusError, match=r"a \.png plot needs matplotlib .*or write \.svg"):
        faulty_report.plot(str(tmp_path / "p.png"))
    assert not (tmp_path / "p.png").exists()
    svg = faulty_report.plot(str(tmp_path / "p.svg"))        # SVG needs nothing
    assert open(svg).read().startswith("<svg")
