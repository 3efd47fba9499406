"""Hostile and broken weight files: ``read_state`` and ``theseus port`` give one clear
``StateFileError`` for each, allocate nothing the file's real bytes do not back, and never
unpickle. ``save_state`` never pickles and writes atomically."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import numpy.lib.format as npy_format
import pytest

import theseus
from theseus import InvalidArgumentError, StateFileError, read_state, save_state


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _header_only(shape: tuple, dtype: str = "<f4", version=(1, 0)) -> bytes:
    buf = io.BytesIO()
    d = {"descr": dtype, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        npy_format.write_array_header_1_0(buf, d)
    else:
        npy_format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _zip(members: dict, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _good() -> bytes:
    return _zip({"fc.weight.npy": _npy(np.arange(64, dtype=np.float32).reshape(8, 8)),
                 "fc.bias.npy": _npy(np.zeros(8, np.float32))})


def _bad_crc() -> bytes:
    data = bytearray(_good())
    i = data.index(b"\x93NUMPY") + 200  # inside the first member's array bytes
    data[i] ^= 0xFF
    return bytes(data)


def _bomb() -> bytes:
    # declares 10 floats, decompresses to 512 MB of zeros (about 0.5 MB compressed)
    payload = _header_only((10,), "<f8")
    zi = zipfile.ZipInfo("fc.weight.npy")
    zi.compress_type = zipfile.ZIP_DEFLATED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        with zf.open(zi, "w", force_zip64=True) as m:
            m.write(payload)
            block = bytes(1 << 20)
            for _ in range(512):
                m.write(block)
    return buf.getvalue()


def _dup() -> bytes:
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a.npy", _npy(np.zeros(2)))
            zf.writestr("a.npy", _npy(np.ones(2)))
    return buf.getvalue()


HOSTILE = {
    # name: (file bytes, words the message must contain)
    "empty": (b"", "empty"),
    "text": (b"hello, these are not weights\n", "not an .npz"),
    "pickle": (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.", "not an .npz"),
    "npy": (_npy(np.zeros((2, 2), np.float32)), "single .npy"),
    "truncated": (_good()[: len(_good()) // 2], "truncated or corrupt"),
    "bad_crc": (_bad_crc(), "corrupt"),
    "object_array": (_zip({"a.npy": _npy(np.array([1, "x"], dtype=object))}), "pickled objects never"),
    "complex": (_zip({"a.npy": _npy(np.ones(3, np.complex64))}), "dtype complex64"),
    "strings": (_zip({"a.npy": _npy(np.array(["1.5", "2"]))}), "dtype <U3"),
    "datetime": (_zip({"a.npy": _npy(np.array(["2020-01-01"], dtype="M8[D]"))}), "dtype datetime64"),
    "structured": (_zip({"a.npy": _npy(np.zeros(2, dtype=[("x", "<f4")]))}), "only bool, integer and real"),
    "tib_header": (_zip({"a.npy": _header_only((1 << 40,), "<f4") + bytes(64)}), "4.0 TiB"),
    "short_data": (_zip({"a.npy": _header_only((100,), "<f4") + bytes(40)}), "truncated or forged"),
    "extra_data": (_zip({"a.npy": _header_only((2,), "<f4") + bytes(64)}), "more data"),
    "bomb": (_bomb(), "more data"),
    "no_npy_header": (_zip({"a.npy": b"just some bytes, no header at all"}), "no .npy header"),
    "not_npy_member": (_zip({"a.npy": _npy(np.zeros(2)), "notes.txt": b"hi"}), "not a .npy array"),
    "npy_v3": (_zip({"a.npy": b"\x93NUMPY\x03\x00" + b"\x00" * 20}), "format 3.0"),
    "malformed_header": (_zip({"a.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': os.sys}\n"}), "malformed"),
    "duplicate": (_dup(), "twice"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_read_state_refuses_hostile_file(tmp_path, name):
    data, words = HOSTILE[name]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(data)
    with pytest.raises(StateFileError) as err:
        read_state(path)
    assert words in str(err.value), str(err.value)
    assert str(path) in str(err.value)
    assert len(str(err.value)) < 600


def test_bomb_is_refused_without_decompressing_it(tmp_path):
    import tracemalloc

    path = tmp_path / "bomb.npz"
    path.write_bytes(HOSTILE["bomb"][0])
    tracemalloc.start()
    try:
        with pytest.raises(StateFileError):
            read_state(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # the file expands to 512 MB; the reader stops after the declared 80 bytes


def test_max_bytes_refuses_before_allocating(tmp_path):
    path = tmp_path / "w.npz"
    save_state(path, {"a": np.zeros(1000, np.float32), "b": np.zeros(1000, np.float32)})
    assert set(read_state(path, max_bytes=8000)) == {"a", "b"}
    with pytest.raises(StateFileError, match="beyond the read limit"):
        read_state(path, max_bytes=7999)
    with pytest.raises(InvalidArgumentError):
        read_state(path, max_bytes=-1)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state(tmp_path / "nope.npz")


def test_round_trip_keeps_dtypes_orders_and_odd_keys(tmp_path):
    weights = {
        "file": np.arange(6, dtype=np.float32).reshape(2, 3),          # np.savez's own parameter name
        "blocks[0].conv.weight": np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
        'heads["cls"].bias': np.array([1, 2], np.int64),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), np.float16),
        "flags": np.array([True, False]),
        "big_endian": np.arange(3, dtype=">i4"),
    }
    written = save_state(tmp_path / "w", weights)
    assert written == str(tmp_path / "w.npz")
    back = read_state(written)
    assert list(back) == list(weights)
    for k, v in weights.items():
        assert back[k].shape == v.shape and back[k].dtype == v.dtype and np.array_equal(back[k], v), k
        assert back[k].flags.writeable
    with np.load(written, allow_pickle=False) as plain:  # any numpy reads it
        assert np.array_equal(plain["file"], weights["file"])


@pytest.mark.parametrize("value, words", [
    (np.array([1, "x"], dtype=object), "Python objects"),
    ([[1.0, 2.0], [3.0]], "not a rectangular array"),
    ("1.5", "got a str"),
    (b"\x00\x01", "got a bytes"),
    (np.array(["1.5"]), "strings"),
    (np.ones(2, np.complex128), "complex"),
    (np.array(["2020-01-01"], dtype="M8[D]"), "datetimes"),
    (np.array([1], dtype="m8[s]"), "timedeltas"),
    ({"a": 1}, "Python objects"),
])
def test_save_state_never_pickles(tmp_path, value, words):
    with pytest.raises(InvalidArgumentError) as err:
        save_state(tmp_path / "w.npz", {"good": np.zeros(2), "bad.weight": value})
    assert words in str(err.value) and "bad.weight" in str(err.value)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary left


@pytest.mark.parametrize("key", [0, None, ("a",), "", "a\x00b"])
def test_save_state_refuses_bad_keys(tmp_path, key):
    with pytest.raises(InvalidArgumentError, match="keys must be non-empty strings"):
        save_state(tmp_path / "w.npz", {key: np.zeros(2)})


def test_save_state_into_missing_folder(tmp_path):
    with pytest.raises(StateFileError, match="does not exist"):
        save_state(tmp_path / "no" / "such" / "w.npz", {"a": np.zeros(2)})


def test_save_state_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    save_state(path, {"a": np.zeros(2)})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(npy_format, "write_array", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_state(path, {"a": np.ones(2)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]


# -- theseus port on the same files: one line on stderr, exit 2, before any model is built --

@pytest.mark.parametrize("name", ["empty", "text", "npy", "truncated", "bad_crc", "object_array", "tib_header",
                                  "bomb"])
def test_cli_port_refuses_hostile_file(tmp_path, name):
    src = tmp_path / "src.npz"
    src.write_bytes(HOSTILE[name][0])
    out = subprocess.run([sys.executable, "-m", "theseus", "port", str(src), str(tmp_path / "out.npz"),
                          "--to", "theseus_torch:MobileNetV1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("theseus port: error:"), out.stderr
    assert HOSTILE[name][1] in lines[0]
    assert not (tmp_path / "out.npz").exists()


def test_reading_never_touches_pickle(tmp_path, monkeypatch):
    import pickle

    def refuse(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    for name, (data, _) in HOSTILE.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        with pytest.raises(StateFileError):
            theseus.read_state(path)


# -- fuzz: any corruption of a valid file gives arrays or a StateFileError, nothing else --

def test_fuzz_read_state_corrupted_files(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    good = _zip({"fc.weight.npy": _npy(np.arange(12, dtype=np.float32).reshape(3, 4)),
                 "fc.bias.npy": _npy(np.zeros(3, np.int16))}, compression=zipfile.ZIP_DEFLATED)
    examples = int(os.environ.get("THESEUS_FUZZ_EXAMPLES", "200"))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=6),
           st.one_of(st.none(), st.integers(0, len(good))))
    def check(flips, cut):
        data = bytearray(good)
        for i, b in flips:
            data[i] = b
        if cut is not None:
            del data[cut:]
        path = tmp_path / "fuzzed.npz"
        path.write_bytes(bytes(data))
        try:
            out = read_state(path)
        except StateFileError as err:
            assert len(str(err)) < 1000
            return
        for key, arr in out.items():  # whatever was read is well-formed numbers
            assert isinstance(key, str) and arr.dtype.kind in "biuf"

    check()
