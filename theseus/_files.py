"""Neutral weights on disk: ``.npz`` read and written without numpy's pickle paths.

Every member is checked before it is allocated: a real ``.npy`` header, a dtype of
numbers, a declared size that the member's bytes and the caller's ``max_bytes`` allow.
Decompression never goes beyond what the declared shapes need. Writes go to a temporary
file in the destination folder and are renamed into place (no half-written file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.lib.format as npy_format

if TYPE_CHECKING:  # pragma: no cover
    import zipfile

from ._errors import InvalidArgumentError, StateFileError, clip, clip_repr
from ._validate import WEIGHT_KINDS, check_array

__all__ = ["read_state", "save_state", "DEFAULT_MAX_BYTES"]

#: Default limit of ``read_state``: the sum of all members' declared array sizes.
DEFAULT_MAX_BYTES = 16 * 2**30

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 1 << 24
_MAX_HEADER = 10_000  # numpy's own default limit for a .npy header


def _read_errors() -> tuple:
    """What reading a corrupt archive raises (zipfile is imported only when a file is read)."""
    import zipfile
    import zlib

    return (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, NotImplementedError,
            OverflowError, RuntimeError, SyntaxError)

PathLike = Union[str, "os.PathLike[str]"]


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _read_header(f: Any, path: PathLike, key: str) -> tuple[tuple, bool, np.dtype]:
    try:
        major, minor = npy_format.read_magic(f)
    except ValueError:  # numpy's "the magic string is not correct" / too short
        raise StateFileError(path, f"member {clip_repr(key)} is not a .npy array (no .npy header); "
                                   "theseus.save_state writes one .npy per weight") from None
    if (major, minor) not in ((1, 0), (2, 0)):
        raise StateFileError(path, f"member {clip_repr(key)} uses .npy format {major}.{minor}; 1.0 and 2.0 are "
                                   "supported (plain numeric arrays)")
    try:
        reader = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
        shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
    except _read_errors()[:3]:  # a corrupt stream (BadZipFile, zlib.error, EOFError): reported by the caller
        raise
    except Exception as err:  # numpy parses untrusted header text: any failure means malformed
        raise StateFileError(path, f"member {clip_repr(key)} has a malformed .npy header ({clip(str(err))})") from None
    if dtype.hasobject or dtype.kind not in WEIGHT_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise StateFileError(path, f"member {clip_repr(key)} has dtype {clip(str(dtype))}; only bool, integer and "
                                   "real arrays are read (pickled objects never are)")
    return tuple(shape), bool(fortran), dtype


def _read_member(zf: "zipfile.ZipFile", info: "zipfile.ZipInfo", path: PathLike, key: str, budget: int) -> np.ndarray:
    with zf.open(info) as f:
        shape, fortran, dtype = _read_header(f, path, key)
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        header = f.tell() if f.seekable() else None
        room = info.file_size - (header or 0)
        if nbytes > room:
            raise StateFileError(path, f"member {clip_repr(key)} declares shape {clip(str(shape))} {dtype} "
                                       f"({_size(nbytes)}) but holds {_size(max(room, 0))} of data "
                                       "(truncated or forged header)")
        if nbytes > budget:
            raise StateFileError(path, f"member {clip_repr(key)} declares {_size(nbytes)}, beyond the read limit "
                                       f"(max_bytes, {_size(budget)} left); pass a larger max_bytes to read_state "
                                       "if the file is trusted")
        arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)  # pages are touched only as data arrives
        view = memoryview(arr.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
        done = 0
        while done < nbytes:  # never decompress more than the declared shape needs
            chunk = f.read(min(_CHUNK, nbytes - done))
            if not chunk:
                raise StateFileError(path, f"member {clip_repr(key)} ends after {done} of {nbytes} data bytes "
                                           "(truncated file)")
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
        if f.read(1):
            raise StateFileError(path, f"member {clip_repr(key)} holds more data than its shape {clip(str(shape))} "
                                       f"{dtype} declares ({_size(nbytes)})")
    return arr.T if fortran else arr


def read_state(path: PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Read neutral weights from an ``.npz`` (as written by ``save_state``).

    Nothing is unpickled; every member must be a plain ``.npy`` array of bools, integers or
    reals whose bytes match its declared shape. The arrays are new and writeable.

    Args:
        path: the file.
        max_bytes: refuse files whose arrays add up to more than this (default 16 GiB),
            checked from the headers before anything is allocated.

    Returns:
        ``{key: array}`` in file order.

    Raises:
        StateFileError: not an ``.npz`` (empty, truncated, a ``.npy``, text...), a corrupt
            member (bad CRC, bad header), a dtype that is not numeric, or sizes that do not
            add up. Missing files and permissions raise the usual ``OSError``.

    Example:
        >>> theseus.save_state("w.npz", {"fc.weight": np.ones((2, 3))})   # doctest: +SKIP
        >>> theseus.read_state("w.npz")["fc.weight"].shape                   # doctest: +SKIP
        (2, 3)
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise InvalidArgumentError(f"read_state: max_bytes must be a non-negative int, got {clip_repr(max_bytes)}")
    from ._formats import format_of, read_native

    if isinstance(path, (str, os.PathLike)) and format_of(path) is not None:
        # a framework's native checkpoint (.pdparams, .pt/.pth/.bin, .safetensors, .ckpt):
        # read without the framework, pickles through the restricted unpickler
        return read_native(path)
    import zipfile

    errors = _read_errors()
    with open(path, "rb") as fh:
        head = fh.read(8)
        if not head:
            raise StateFileError(path, "the file is empty; expected an .npz written by theseus.save_state")
        if head.startswith(_NPY_MAGIC):
            raise StateFileError(path, "this is a single .npy array, not an .npz of named weights; load it with "
                                       "np.load and save {name: array} with theseus.save_state")
        if not head.startswith(_ZIP_MAGIC):
            raise StateFileError(path, f"not an .npz (zip) file (it starts with {head[:8]!r}); expected a file "
                                       "written by theseus.save_state")
        fh.seek(0)
        try:
            zf = zipfile.ZipFile(fh)
        except errors as err:
            raise StateFileError(path, f"not a readable .npz: {clip(str(err))} (truncated or corrupt zip)") from None
        out: dict[str, np.ndarray] = {}
        budget = max_bytes
        with zf:
            for info in zf.infolist():
                name = info.filename
                if not name.endswith(".npy") or info.is_dir():
                    raise StateFileError(path, f"member {clip_repr(name)} is not a .npy array; an .npz of weights "
                                               "holds only <key>.npy members")
                key = name[:-4]
                if key in out:
                    raise StateFileError(path, f"key {clip_repr(key)} appears twice")
                try:
                    arr = _read_member(zf, info, path, key, budget)
                except StateFileError:
                    raise
                except errors as err:
                    raise StateFileError(path, f"member {clip_repr(key)} cannot be read: {type(err).__name__}: "
                                               f"{clip(str(err))} (corrupt file)") from None
                budget -= arr.nbytes
                out[key] = arr
    return out


def save_state(path: PathLike, weights: Mapping[str, Any]) -> str:
    """Write neutral weights to an ``.npz`` that any numpy can read, never pickling.

    Every value must be a bool, integer or real array (or convertible to one); every key a
    non-empty string (``"file"`` included). The file is written to a temporary name in the
    same folder and renamed into place, so a failure leaves no partial file. As with
    ``np.savez``, ``.npz`` is appended to a path without it.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: a key that is not a string, or a value that is not numeric
            (the key is named); nothing is written.
        StateFileError: the destination folder does not exist or cannot be written.

    Example:
        >>> theseus.save_state("w.npz", theseus.state(net))   # doctest: +SKIP
        'w.npz'
    """
    from ._formats import format_of, write_native

    if isinstance(path, (str, os.PathLike)) and format_of(path) is not None:
        # a framework's native checkpoint by extension; a model is written under its own
        # native names and layouts (as its framework would save it)
        if not isinstance(weights, Mapping):
            from ._port import native_state

            weights = native_state(weights)
        write_native(path, weights)
        return os.fspath(path)
    if not isinstance(weights, Mapping):
        raise InvalidArgumentError(f"save_state expects a mapping name -> array, got {type(weights).__name__}")
    arrays = []
    for key, value in weights.items():
        if not isinstance(key, str) or not key or "\x00" in key:
            raise InvalidArgumentError(f"save_state: keys must be non-empty strings without NUL characters, got "
                                       f"{type(key).__name__} {clip_repr(key)}")
        arrays.append((key, check_array(key, value)))
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not target.endswith(".npz"):
        target += ".npz"
    import tempfile
    import zipfile

    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise StateFileError(target, f"cannot write: the folder {clip(folder)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".theseus-", suffix=".npz.tmp", dir=folder)
    except OSError as err:
        raise StateFileError(target, f"cannot write in {clip(folder)!r}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED,
                                                        allowZip64=True) as zf:
            for key, arr in arrays:
                with zf.open(key + ".npy", "w", force_zip64=True) as member:
                    npy_format.write_array(member, arr, allow_pickle=False)
        os.replace(tmp, target)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise StateFileError(target, f"cannot write: {err.strerror or err}") from None
        raise
    return target
