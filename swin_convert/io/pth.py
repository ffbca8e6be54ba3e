"""Read a torch zip checkpoint's tensors as file ranges, without torch and without running code.

``torch.save`` writes a zip whose ``data.pkl`` describes tensors as
``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` and whose ``data/<key>`` members
hold each storage's raw bytes, stored uncompressed. This reader unpickles ``data.pkl`` with
an allow-list of exactly those few globals, each replaced by a recorder of our own, so no
function from the file is ever called; every contiguous tensor becomes a
:class:`~swin_convert.tensors.FileSlice` and a .pth -> safetensors conversion is a byte copy
at near-constant memory (``torch.load(mmap=True)`` maps every page it touches).

Anything outside that narrow format (another global, a non-contiguous view, big-endian
data, a legacy non-zip file) raises :class:`Unsupported`; the caller then falls back to
``torch.load(weights_only=True)``, which applies torch's own safety rules.
"""
from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass

from ..core.tensors import DTYPES, FileSlice

_STORAGE_DTYPES = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
}


class Unsupported(Exception):
    """The file is outside what this reader handles; use torch.load(weights_only=True)."""


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str


@dataclass(frozen=True)
class _StorageType:
    dtype: str


def _rebuild_tensor(storage, offset, size, stride, *_):
    size, stride = tuple(size), tuple(stride)
    expected, step = [], 1
    for dim in reversed(size):
        expected.insert(0, step)
        step *= dim
    if any(d > 1 and s != e for d, s, e in zip(size, stride, expected)):
        raise Unsupported("non-contiguous tensor view")
    return ("tensor", storage, int(offset), size)


def _rebuild_parameter(data, *_):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, prefix: str):
        super().__init__(file)
        self.prefix = prefix

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise Unsupported(f"global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise Unsupported("unknown persistent id")
        return _Storage(str(pid[2]), pid[1].dtype)


def read_pth(path: str) -> dict:
    """The unpickled object with tensors replaced by FileSlices (raises Unsupported)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise Unsupported(str(e)) from None
    with zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise Unsupported("no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        if prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() != b"little":
            raise Unsupported("big-endian checkpoint")
        with zf.open(pkl) as f:
            try:
                obj = _Unpickler(f, prefix).load()
            except Unsupported:
                raise
            except Exception as e:  # a malformed pickle: torch.load reports it properly
                raise Unsupported(f"{type(e).__name__}: {e}") from None
        offsets = {i.filename: i for i in zf.infolist()}
        with open(path, "rb") as raw:
            return _materialise(obj, lambda key: _member_start(raw, offsets, prefix + "data/" + key), path)


def _member_start(raw, infos: dict, name: str) -> int:
    info = infos.get(name)
    if info is None or info.compress_type != zipfile.ZIP_STORED:
        raise Unsupported(f"storage {name} missing or compressed")
    raw.seek(info.header_offset)
    header = raw.read(30)
    if header[:4] != b"PK\x03\x04":
        raise Unsupported("bad zip local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _materialise(obj, start_of, path: str):
    if isinstance(obj, tuple) and len(obj) == 4 and obj[0] == "tensor" and isinstance(obj[1], _Storage):
        _, storage, offset, size = obj
        start, length = start_of(storage.key)
        src = FileSlice(path, start + offset * DTYPES[storage.dtype][0], storage.dtype, size)
        if src.offset + src.nbytes > start + length:
            raise Unsupported("tensor extends past its storage")
        return src
    if isinstance(obj, dict):
        return {k: _materialise(v, start_of, path) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, start_of, path) for v in obj)
    return obj
