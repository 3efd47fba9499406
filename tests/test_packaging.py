"""Real packages: ``python -m build`` makes a wheel for every distribution, each backend
depends on the core with a version range, and installing one backend's wheel into a fresh
virtual environment pulls the core and runs README's torch tour there (torch comes from the
local CPU wheel pinned in constraints.txt)."""

from __future__ import annotations

import email
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = "theseus-surgery"
#: source folder -> (distribution name, import package)
DISTS = {
    ".": (CORE, "theseus"),
    "conformance": ("theseus-surgery-conformance", "theseus_conformance"),
    "backends/torch": ("theseus-surgery-torch", "theseus_torch"),
    "backends/paddle": ("theseus-surgery-paddle", "theseus_paddle"),
    "backends/mindspore": ("theseus-surgery-mindspore", "theseus_mindspore"),
}


def _copy_sources(src: pathlib.Path, dst: pathlib.Path, package: str) -> None:
    """Only what a wheel is built from (no egg-info or build/ left over from editable installs)."""
    dst.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    shutil.copytree(src / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for folder, (dist, package) in DISTS.items():
        src = tmp_path_factory.mktemp("src") / dist
        _copy_sources(ROOT / folder, src, package)
        proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
                               str(src)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        (wheel,) = out.glob(dist.replace("-", "_") + "-*.whl")
        built[dist] = wheel
    return built


def _metadata(wheel: pathlib.Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def test_every_distribution_builds_a_wheel_with_its_package(wheels):
    for folder, (dist, package) in DISTS.items():
        with zipfile.ZipFile(wheels[dist]) as z:
            assert f"{package}/__init__.py" in z.namelist()
        assert _metadata(wheels[dist])["Name"] == dist


def test_backends_depend_on_the_core_with_a_version_range(wheels):
    for dist in wheels:
        if dist == CORE:
            continue
        requires = _metadata(wheels[dist]).get_all("Requires-Dist")
        assert f"{CORE}<0.2,>=0.1" in requires, requires


def test_core_extras_name_each_backend(wheels):
    meta = _metadata(wheels[CORE])
    assert set(meta.get_all("Provides-Extra")) >= {"torch", "paddle", "mindspore", "conformance", "all"}
    reqs = meta.get_all("Requires-Dist")
    assert 'theseus-surgery-torch<0.2,>=0.1; extra == "torch"' in reqs


def test_entry_points_point_at_the_adapters(wheels):
    for fw in ("torch", "paddle", "mindspore"):
        with zipfile.ZipFile(wheels[f"theseus-surgery-{fw}"]) as z:
            name = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
            text = z.read(name).decode()
        assert "[theseus.backends]" in text and re.search(rf"^{fw} = theseus_{fw}\._adapter:\w+Backend$", text, re.M)


def _readme_tour() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## 30-second tour"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_one_backend_in_a_fresh_venv_pulls_the_core_and_runs_the_tour(wheels, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--find-links", str(wheels[CORE].parent), "-c", str(ROOT / "constraints.txt"), "theseus-surgery-torch"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            env=env).stdout
    names = {line.split("==")[0].lower() for line in listed.split()}
    assert {"theseus-surgery", "theseus-surgery-torch", "torch", "numpy"} <= names
    assert not names & {"paddlepaddle", "mindspore", "theseus-surgery-paddle", "theseus-surgery-mindspore"}
    tour = _readme_tour() + "\nprint(sorted(theseus.backends()), theseus.__file__)\n"
    run = subprocess.run([str(py), "-c", tour], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    backends, where = run.stdout.split("] ")
    assert backends == "['torch'" and str(venv) in where
    cli = subprocess.run([str(venv / "bin" / "theseus"), "backends"], capture_output=True, text=True, env=env)
    assert cli.returncode == 0 and cli.stdout.splitlines()[2].split()[0] == "torch", cli.stdout + cli.stderr
