"""Every bad command line gets one line on stderr and exit status 2 (never a traceback,
never a usage dump, never a silently reinterpreted argument)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from theseus import save_state


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "theseus", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_torch = pytest.mark.skipif(not _installed("theseus_torch"), reason="needs torch")
NET = "theseus_torch:MobileNetV1"

CASES = {
    # id: (argv, fragment of the one stderr line)
    "no_command": ([], "required: COMMAND"),
    "unknown_command": (["frobnicate"], "invalid choice"),
    "tree_no_model": (["tree"], "required: MODEL"),
    "tree_unknown_option": (["tree", NET, "--colour"], "unrecognized arguments"),
    "model_no_colon": (["tree", "theseus_torch"], "MODEL must be 'module:callable'"),
    "model_huge": (["tree", "x" * 100_000], "characters>"),
    "model_no_module": (["tree", "no_such_module_xyz:Net"], "cannot import module"),
    "model_no_attr": (["tree", "theseus:NoSuchThing"], "has no attribute"),
    "model_needs_args": (["tree", "json:loads"], "building the model json:loads() failed: TypeError"),
    "model_raises": (["tree", "json:JSONDecodeError"], "building the model"),
    "model_not_a_model": (["tree", "os:getcwd"], "no installed theseus backend recognises"),
    "shape_empty_item": (["tree", NET, "--input-shape", "1,,3"], "expected positive integers"),
    "shape_trailing_comma": (["tree", NET, "--input-shape", "1,3,"], "expected positive integers"),
    "shape_words": (["tree", NET, "--input-shape", "a,b"], "expected positive integers"),
    "shape_zero": (["tree", NET, "--input-shape", "0,3,8,8"], "positive integers"),
    "shape_negative": (["tree", NET, "--input-shape=-1,3,8,8"], "expected positive integers"),
    "shape_float": (["tree", NET, "--input-shape", "1.5,3"], "expected positive integers"),
    "shape_blank": (["tree", NET, "--input-shape", ""], "expected positive integers"),
    "shape_huge_dims": (["tree", NET, "--input-shape", "100000,100000,100000,100000"], "elements; a probe input"),
    "shape_huge_digits": (["tree", NET, "--input-shape", "9" * 5000], "characters>"),
    "shape_too_many_dims": (["tree", NET, "--input-shape", ",".join(["1"] * 40)], "to 32 dimensions"),
    "conformance_backend": (["conformance", "--backend", "no-such-backend"], "no theseus backend named"),
    "conformance_module": (["conformance", "--module", "oops"], "--module expects NAME=MODULE_OR_FILE"),
    "port_no_to": (["port", "a.npz", "b.npz"], "required: --to"),
    "port_missing_src": (["port", "no_such.npz", "out.npz", "--to", NET], "is not a file"),
    "port_src_folder": (["port", ".", "out.npz", "--to", NET], "is not a file"),
    "port_dash_no_from": (["port", "-", "out.npz", "--to", NET], "--from"),
    "port_dst_missing_folder": (["port", "w.npz", "no/such/folder/out.npz", "--to", NET], "does not exist"),
    "port_dst_is_folder": (["port", "w.npz", "sub.npz", "--to", NET], "is a folder"),
    "port_bad_file": (["port", "text.npz", "out.npz", "--to", NET], "not an .npz"),
}

# cases that build the torch model before failing
TORCH_CASES = {
    "shape_image_model_2d": (["tree", NET, "--input-shape", "1,3"], "probe forward on zeros of shape (1, 3) failed"),
    "port_bad_prefix": (["port", "w.npz", "out.npz", "--to", NET, "--prefix", "blocks["], "unclosed '['"),
}


@pytest.fixture
def workdir(tmp_path):
    save_state(tmp_path / "w.npz", {"fc.weight": np.zeros((2, 2), np.float32)})
    (tmp_path / "text.npz").write_text("not weights\n")
    (tmp_path / "sub.npz").mkdir()
    return tmp_path


def _check(out: subprocess.CompletedProcess, fragment: str, workdir) -> None:
    lines = out.stderr.splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1, out.stderr
    assert fragment in lines[0], lines[0]
    assert len(lines[0]) < 1500
    assert out.stdout == ""
    assert not (workdir / "out.npz").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments_one_line_exit_2(workdir, case):
    argv, fragment = CASES[case]
    _check(cli(*argv, cwd=workdir), fragment, workdir)


@needs_torch
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_bad_arguments_after_building_the_model(workdir, case):
    argv, fragment = TORCH_CASES[case]
    _check(cli(*argv, cwd=workdir), fragment, workdir)


def _argument_error_cases() -> list:
    """Every subcommand's argument errors, read from the parser itself: no arguments at all,
    an unknown option, and a malformed value for every option that converts its value."""
    import argparse

    from theseus._cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    cases = []
    for name, parser in sorted(sub.choices.items()):
        positional = ["a.npz", "b.npz"][:sum(1 for a in parser._actions if not a.option_strings)]
        required = [x for a in parser._actions if a.required and a.option_strings for x in (a.option_strings[0], "m:N")]
        if any(a.required for a in parser._actions):
            cases.append((f"{name}-nothing", [name]))
        cases.append((f"{name}-unknown-option", [name, *positional, *required, "--no-such-option"]))
        for a in parser._actions:
            if a.option_strings and a.type is not None:
                cases.append((f"{name}{a.option_strings[0]}", [name, *positional, *required, a.option_strings[0], "1,x"]))
    return cases


ARGUMENT_ERRORS = _argument_error_cases()


@pytest.mark.parametrize("argv", [c[1] for c in ARGUMENT_ERRORS], ids=[c[0] for c in ARGUMENT_ERRORS])
def test_every_subcommands_argument_errors_are_one_line_exit_2(argv, capsys):
    from theseus._cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr()
    assert exc.value.code == 2, err.err
    assert len(err.err.splitlines()) == 1, err.err
    assert err.err.startswith(f"theseus {argv[0]}: error: "), err.err
    assert err.out == ""


def test_the_issue_example_malformed_input_shape(tmp_path):
    out = cli("tree", "mod:Net", "--input-shape", "1,x", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "theseus tree: error: argument --input-shape: expected positive integers separated by commas "
        "(1,3,224,224), got '1,x' (see theseus tree --help)"]
    assert out.stdout == ""
