"""``theseus tree MODEL``: a module in the current folder (as ``python -m`` finds it) and a
``path/to/file.py:callable``; a malformed ``--input-shape`` is one usage line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

MODEL = '''
import torch.nn as nn
from helper_layers import Block   # a sibling module: the file's folder is on the path


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(Block(), nn.ReLU())
'''
HELPER = '''
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv(x)
'''
TREE = ["Net (Net)", "├── stem (Conv2d)", "└── body (Sequential)", "    ├── body[0] (Block)",
        "    │   └── body[0].conv (Conv2d)", "    └── body[1] (ReLU)"]


def _theseus(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "theseus", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    (root / "models").mkdir()
    (root / "models" / "mymodel.py").write_text(MODEL)
    (root / "models" / "helper_layers.py").write_text(HELPER)
    return root


def test_module_in_the_current_folder(project):
    out = _theseus("tree", "mymodel:Net", cwd=project / "models")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == TREE


def test_path_to_a_file(project):
    out = _theseus("tree", "models/mymodel.py:Net", cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == TREE


@pytest.mark.parametrize("spec,message", [
    ("models/nothere.py:Net", "no file 'models/nothere.py'"),
    ("models/mymodel.py:Nope", "has no attribute 'Nope'"),
    ("mymodel", "MODEL must be 'module:callable' or 'path/to/file.py:callable'"),
])
def test_bad_model_is_one_usage_line(project, spec, message):
    out = _theseus("tree", spec, cwd=project)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr


@pytest.mark.parametrize("shape", ["1,a,3", "0,3,8,8", "", "1x3x-8x8"])
def test_malformed_input_shape_is_a_usage_error(project, shape):
    out = _theseus("tree", "models/mymodel.py:Net", "--input-shape", shape, cwd=project)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "input-shape" in out.stderr.strip().splitlines()[-1], out.stderr
