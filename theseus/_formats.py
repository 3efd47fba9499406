"""Native checkpoint files of each framework, read and written without the framework.

* Paddle ``.pdparams``: a pickle of ``{name: numpy array}``.
* torch ``.pt``/``.pth``/``.bin``: a zip archive with ``data.pkl`` (tensors as persistent
  storage ids) and one raw file per storage.
* ``.safetensors``: an 8-byte header length, a JSON header, raw little-endian data.
* MindSpore ``.ckpt``: protobuf ``Checkpoint{repeated Value{tag, TensorProto{dims,
  tensor_type, tensor_content}}}``, decoded from the wire format here.

Pickles are read by a restricted unpickler that accepts only numpy arrays, torch tensor
rebuild calls (turned into numpy arrays, torch is never imported) and plain containers:
any other global is refused before anything is created.

Example:
    >>> weights = read_native("ResNet50_pretrained.pdparams")     # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from typing import Any, Mapping, Optional, Union

import numpy as np

from ._errors import InvalidArgumentError, TheseusError

__all__ = ["FORMATS", "UnsafeCheckpointError", "format_of", "read_native", "write_native"]

#: extension -> format name
FORMATS = {".pdparams": "paddle", ".pdopt": "paddle", ".pt": "torch", ".pth": "torch", ".bin": "torch",
           ".safetensors": "safetensors", ".ckpt": "mindspore"}


class UnsafeCheckpointError(TheseusError):
    """A checkpoint's pickle asks for something other than arrays and plain containers."""


def format_of(path: Union[str, os.PathLike]) -> Optional[str]:
    """The native format a file name implies, or None (``.npz`` and others)."""
    return FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())


# ----------------------------------------------------------------------------------------
# restricted pickles
# ----------------------------------------------------------------------------------------

_TORCH_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16",
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Storage:
    def __init__(self, dtype: Any, key: str, data: Optional[bytes]):
        self.dtype, self.key, self.data = dtype, key, data

    def array(self) -> np.ndarray:
        if self.dtype == "bfloat16":
            raw = np.frombuffer(self.data, dtype="<u2").astype(np.uint32) << 16
            return raw.view(np.float32)
        return np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<"))


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *rest: Any) -> np.ndarray:
    flat = storage.array()
    item = flat.dtype.itemsize
    if not size:
        return np.array(flat[offset])
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride))
    return np.array(view, dtype=flat.dtype.newbyteorder("="))


def _rebuild_parameter(data: np.ndarray, *rest: Any) -> np.ndarray:
    return data


def _reconstruct(*args: Any) -> Any:
    from numpy.core.multiarray import _reconstruct as real

    return real(*args)


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    # protocol-2 pickles of numpy arrays carry their bytes as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8"):
        raise UnsafeCheckpointError("_codecs.encode called with something other than text")
    return text.encode(encoding)


def _dtype(*args: Any) -> Any:
    return np.dtype(*args)


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "dict"): dict, ("builtins", "list"): list, ("builtins", "tuple"): tuple,
    ("builtins", "set"): set, ("builtins", "int"): int, ("builtins", "float"): float,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): tuple,
}


class _Restricted(pickle.Unpickler):
    def __init__(self, file: Any, storages: Optional[Mapping[str, bytes]] = None, where: str = ""):
        super().__init__(file)
        self._storages = storages
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        hit = _ALLOWED.get((module, name))
        if hit is None:
            raise UnsafeCheckpointError(
                f"{self._where}: the checkpoint's pickle asks for {module}.{name}; theseus reads only arrays "
                "and plain containers and refused it (nothing was created). Re-save the weights as "
                ".safetensors or .npz, or load the file with its framework if you trust it")
        return hit

    def persistent_load(self, pid: Any) -> Any:
        if self._storages is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafeCheckpointError(f"{self._where}: unexpected persistent id {pid!r} in the pickle")
        _, stype, key, _location, _numel = pid[:5]
        if not isinstance(stype, _StorageType):
            raise UnsafeCheckpointError(f"{self._where}: storage of unknown type {stype!r}")
        data = self._storages.get(str(key))
        if data is None:
            raise InvalidArgumentError(f"{self._where}: storage {key!r} is missing from the archive")
        return _Storage(_TORCH_DTYPES[stype.name], str(key), data)


def _flatten(obj: Any, where: str, prefix: str = "") -> dict:
    """``{name: array}`` from nested dicts (``{"state_dict": {...}}``, EMA copies...)."""
    out: dict = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise InvalidArgumentError(f"{where}: key {k!r} is not a string")
            if k == "StructuredToParameterName@@":
                continue
            name = f"{prefix}{k}"
            if isinstance(v, np.ndarray):
                if v.dtype.kind == "O":
                    raise UnsafeCheckpointError(f"{where}: {name} is an object array; only numeric arrays are read")
                out[name] = v
            elif isinstance(v, Mapping):
                out.update(_flatten(v, where, name + "."))
            elif isinstance(v, (int, float, str, type(None), list, tuple)):
                continue  # epoch counters, config values: not weights
            else:
                raise InvalidArgumentError(f"{where}: {name} is a {type(v).__name__}, not an array")
        return out
    raise InvalidArgumentError(f"{where}: the checkpoint holds a {type(obj).__name__}, not a mapping of arrays")


def _read_pickle(data: bytes, where: str, storages: Optional[Mapping[str, bytes]] = None) -> dict:
    try:
        obj = _Restricted(io.BytesIO(data), storages, where).load()
    except TheseusError:
        raise
    except Exception as err:  # noqa: BLE001 - corrupt pickles
        raise InvalidArgumentError(f"{where}: not a readable checkpoint pickle ({type(err).__name__}: {err})") from None
    return _flatten(obj, where)


def _read_torch(path: str) -> dict:
    if not zipfile.is_zipfile(path):
        raise InvalidArgumentError(f"{path}: not a zip-format torch checkpoint (torch >= 1.6 writes zip files; "
                                   "the legacy format is not read: re-save it with torch.save)")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise InvalidArgumentError(f"{path}: expected one data.pkl in the archive, found {len(pkl)}")
        root = pkl[0][: -len("data.pkl")]
        storages = {n[len(root) + len("data/"):]: z.read(n) for n in names if n.startswith(root + "data/")}
        return _read_pickle(z.read(pkl[0]), path, storages)


# ----------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U8": "u1", "BOOL": "?"}
_ST_NAMES = {np.dtype(v).newbyteorder("<").str: k for k, v in _ST_DTYPES.items()}


def _code(table: dict, dtype: np.dtype) -> Optional[str]:
    return table.get(np.dtype(dtype).newbyteorder("<").str)


def _read_safetensors(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise InvalidArgumentError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise InvalidArgumentError(f"{path}: header length {n} exceeds the file")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as err:
        raise InvalidArgumentError(f"{path}: unreadable safetensors header ({err})") from None
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        if meta["dtype"] == "BF16":
            arr = (np.frombuffer(body[start:end], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif meta["dtype"] in _ST_DTYPES:
            arr = np.frombuffer(body[start:end], dtype=_ST_DTYPES[meta["dtype"]])
        else:
            raise InvalidArgumentError(f"{path}: {name} has dtype {meta['dtype']}, which theseus does not read")
        out[name] = arr.reshape(meta["shape"]).astype(arr.dtype.newbyteorder("="), copy=True)
    return out


def _write_safetensors(path: str, weights: Mapping[str, np.ndarray]) -> None:
    header, chunks, offset = {}, [], 0
    for name in weights:
        arr = np.asarray(weights[name], order="C")
        code = _code(_ST_NAMES, arr.dtype)
        if code is None:
            raise InvalidArgumentError(f"{name}: dtype {arr.dtype} cannot be written to safetensors")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for c in chunks:
            f.write(c)


# ----------------------------------------------------------------------------------------
# MindSpore .ckpt (protobuf wire format)
# ----------------------------------------------------------------------------------------

_MS_DTYPES = {"Float32": "<f4", "Float64": "<f8", "Float16": "<f2", "Int64": "<i8", "Int32": "<i4",
              "Int16": "<i2", "Int8": "i1", "UInt8": "u1", "Bool": "?"}
_MS_NAMES = {np.dtype(v).newbyteorder("<").str: k for k, v in _MS_DTYPES.items()}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise InvalidArgumentError("truncated protobuf varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise InvalidArgumentError("truncated protobuf field")
            val, i = buf[i:i + n], i + n
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise InvalidArgumentError(f"unsupported protobuf wire type {wire}")
        yield field, wire, val


def _read_ckpt(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    out = {}
    try:
        for field, wire, value in _fields(raw):
            if field != 1 or wire != 2:
                continue
            tag, dims, ttype, content = None, [], None, b""
            for f2, w2, v2 in _fields(bytes(value)):
                if f2 == 1 and w2 == 2:
                    tag = bytes(v2).decode()
                elif f2 == 2 and w2 == 2:
                    for f3, w3, v3 in _fields(bytes(v2)):
                        if f3 == 1 and w3 == 0:
                            dims.append(v3)
                        elif f3 == 1 and w3 == 2:  # packed dims
                            j = 0
                            while j < len(v3):
                                d, j = _varint(bytes(v3), j)
                                dims.append(d)
                        elif f3 == 2:
                            ttype = bytes(v3).decode()
                        elif f3 == 3:
                            content = bytes(v3)
            if tag is None or ttype is None:
                continue
            if ttype not in _MS_DTYPES:
                raise InvalidArgumentError(f"{path}: {tag} has tensor type {ttype}, which theseus does not read")
            arr = np.frombuffer(content, dtype=_MS_DTYPES[ttype])
            out[tag] = arr.reshape(dims).astype(arr.dtype.newbyteorder("="), copy=True)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(f"{path}: not a MindSpore checkpoint ({err})") from None
    return out


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _enc_field(field: int, payload: bytes) -> bytes:
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def _write_ckpt(path: str, weights: Mapping[str, np.ndarray]) -> None:
    parts = []
    for name, arr in weights.items():
        arr = np.asarray(arr, order="C")
        code = _code(_MS_NAMES, arr.dtype)
        if code is None:
            raise InvalidArgumentError(f"{name}: dtype {arr.dtype} cannot be written to a MindSpore checkpoint")
        tensor = b"".join(_enc_varint(1 << 3 | 0) + _enc_varint(int(d)) for d in arr.shape)
        tensor += _enc_field(2, code.encode()) + _enc_field(3, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        parts.append(_enc_field(1, _enc_field(1, name.encode()) + _enc_field(2, tensor)))
    with open(path, "wb") as f:
        f.write(b"".join(parts))


# ----------------------------------------------------------------------------------------
# writing pickles the frameworks load (no framework imported)
# ----------------------------------------------------------------------------------------

def _write_pdparams(path: str, weights: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        pickle.dump({k: np.asarray(v, order="C") for k, v in weights.items()}, f, protocol=4)


def _pickle_str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _pickle_int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _pickle_tuple(items: list) -> bytes:
    return b"(" + b"".join(items) + b"t"


_TORCH_STORAGE = {np.dtype(v).newbyteorder("<").str: k for k, v in _TORCH_DTYPES.items() if v != "bfloat16"}


def _write_torch(path: str, weights: Mapping[str, np.ndarray]) -> None:
    """A zip archive ``torch.load`` (also ``weights_only=True``) reads as an OrderedDict of tensors."""
    body = [b"\x80\x02", b"ccollections\nOrderedDict\n)R("]
    storages = {}
    for i, (name, arr) in enumerate(weights.items()):
        arr = np.asarray(arr, order="C")
        stype = _code(_TORCH_STORAGE, arr.dtype)
        if stype is None:
            raise InvalidArgumentError(f"{name}: dtype {arr.dtype} cannot be written to a torch checkpoint")
        key = str(i)
        storages[key] = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        strides = [int(np.prod(arr.shape[k + 1:])) for k in range(arr.ndim)]
        pid = _pickle_tuple([_pickle_str("storage"), f"ctorch\n{stype}\n".encode(), _pickle_str(key),
                             _pickle_str("cpu"), _pickle_int(int(arr.size))]) + b"Q"
        args = _pickle_tuple([pid, _pickle_int(0), _pickle_tuple([_pickle_int(int(d)) for d in arr.shape]),
                              _pickle_tuple([_pickle_int(s) for s in strides]), b"\x89",
                              b"ccollections\nOrderedDict\n)R"])
        body.append(_pickle_str(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R")
    body.append(b"u.")
    root = os.path.splitext(os.path.basename(path))[0] or "archive"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", b"".join(body))
        z.writestr(f"{root}/byteorder", "little")
        for key, data in storages.items():
            z.writestr(f"{root}/data/{key}", data)
        z.writestr(f"{root}/version", "3\n")


# ----------------------------------------------------------------------------------------

def read_native(path: Union[str, os.PathLike]) -> dict:
    """``{native name: array}`` from a framework's checkpoint file (format by extension),
    nested dicts flattened with dots. No framework is imported and no pickled code runs.

    Raises:
        UnsafeCheckpointError: a pickle asks for anything but arrays and plain containers.
        InvalidArgumentError: an unreadable or unknown file.
    """
    p = os.fspath(path)
    fmt = format_of(p)
    if fmt is None:
        raise InvalidArgumentError(f"{p}: unknown checkpoint extension; known: {', '.join(sorted(FORMATS))}, .npz")
    if not os.path.isfile(p):
        raise InvalidArgumentError(f"{p}: no such file")
    if fmt == "paddle":
        with open(p, "rb") as f:
            return _read_pickle(f.read(), p)
    if fmt == "torch":
        return _read_torch(p)
    if fmt == "safetensors":
        return _read_safetensors(p)
    return _read_ckpt(p)


def write_native(path: Union[str, os.PathLike], weights: Mapping[str, np.ndarray]) -> None:
    """Write ``{native name: array}`` in the format the extension names (``.pdparams``,
    ``.pt``/``.pth``/``.bin``, ``.safetensors``, ``.ckpt``), loadable by that framework."""
    p = os.fspath(path)
    fmt = format_of(p)
    writer = {"paddle": _write_pdparams, "torch": _write_torch, "safetensors": _write_safetensors,
              "mindspore": _write_ckpt}.get(fmt)
    if writer is None:
        raise InvalidArgumentError(f"{p}: unknown checkpoint extension; known: {', '.join(sorted(FORMATS))}")
    writer(p, weights)
