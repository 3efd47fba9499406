"""Recording and certificate files are read with read_state's guards (no pickle, sizes
checked before allocating): a forged header or a corrupt archive is a clear TheseusError."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import theseus
from theseus._compare import _read_zip


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _forge(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def test_a_valid_file_reads(tmp_path):
    path = _forge(tmp_path / "ok.tcert", {"meta.json": b'{"a": 1}', "arrays/x.npy": _npy_bytes(np.arange(3.0))})
    meta, arrays = _read_zip(path)
    assert meta == {"a": 1} and np.array_equal(arrays["x"], np.arange(3.0))


def test_forged_shape_is_refused_before_allocating(tmp_path):
    header = _npy_bytes(np.zeros(4, np.float32)).replace(b"(4,)", b"(1000000000000,)")
    path = _forge(tmp_path / "huge.tcert", {"meta.json": b"{}", "arrays/x.npy": header})
    with pytest.raises(theseus.TheseusError, match="declares shape"):
        _read_zip(path)


def test_pickled_member_and_garbage_are_refused(tmp_path):
    obj = io.BytesIO()
    np.lib.format.write_array(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path = _forge(tmp_path / "obj.tcert", {"meta.json": b"{}", "arrays/x.npy": obj.getvalue()})
    with pytest.raises(theseus.TheseusError, match="pickled objects never are"):
        _read_zip(path)
    junk = tmp_path / "junk.tcert"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(theseus.InvalidArgumentError, match="not a theseus recording/certificate file"):
        _read_zip(str(junk))
    path = _forge(tmp_path / "nometa.tcert", {"arrays/x.npy": _npy_bytes(np.zeros(2))})
    with pytest.raises(theseus.InvalidArgumentError, match="not a theseus recording/certificate file"):
        _read_zip(path)
