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
``torch.load(weights_only=True)``, which applies torch's own safety rules. A file that is
inside the format but wrong (a negative storage offset, a tensor past its storage, nesting
deeper than any checkpoint) raises :class:`~swin_convert.errors.BadInputError`.

Memory stays in proportion to the file: the pickle is read by Python's pure-Python
unpickler, whose memo is a dict (the C unpickler sizes its memo array by the largest index
a ``LONG_BINPUT`` names, so a 139-byte file could ask for gigabytes), and ``data.pkl`` may
not expand to more than a bounded multiple of its stored size.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass

from ..core.tensors import DTYPES, FileSlice
from ..errors import BadInputError

MAX_DEPTH = 64            # containers nested deeper than this are not a checkpoint
MAX_PICKLE_RATIO = 50     # a compressed data.pkl may expand at most this much
PICKLE_IN_MEMORY = 1 << 24  # a data.pkl up to 16 MB is read whole (a Swin-L's is ~40 KB), a larger one streamed

_STORAGE_DTYPES = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
}


class Unsupported(Exception):
    """The file is outside what this reader handles; use torch.load(weights_only=True)."""


def _malformed(path: str, what: str) -> BadInputError:
    return BadInputError(f"'{path}' is a malformed PyTorch checkpoint: {what}.",
                         "The file is corrupt or was crafted; download it again from a source you trust.", path=path)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str


@dataclass(frozen=True)
class _StorageType:
    dtype: str


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list)) and len(size) == len(stride)
            and all(_is_int(v) for v in (offset, *size, *stride))):
        raise Unsupported("tensor with non-integer offset, size or stride")
    if offset < 0 or any(v < 0 for v in (*size, *stride)):
        raise _Negative()
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


class _Negative(Exception):
    """A negative storage offset, size or stride (torch.load refuses these too)."""


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Unpickler(pickle._Unpickler):   # the pure-Python one: a dict memo, no index-sized array
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
    """The unpickled object with tensors replaced by FileSlices (raises Unsupported or BadInputError)."""
    try:
        return _read_pth(path)
    except (Unsupported, BadInputError):
        raise
    except Exception as e:   # a damaged zip (bad CRC, odd names...): torch.load reports it properly
        raise Unsupported(f"{type(e).__name__}: {e}") from None


def _read_pth(path: str) -> dict:
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
        info = zf.getinfo(pkl)
        if info.flag_bits & 0x1:
            raise _malformed(path, "its data.pkl is encrypted")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_PICKLE_RATIO * max(info.compress_size, 1024):
            raise _malformed(path, f"its data.pkl expands {info.compress_size} bytes to {info.file_size}")
        try:
            if info.file_size <= PICKLE_IN_MEMORY:   # one read: the unpickler's ~20,000 small reads through
                obj = _Unpickler(io.BytesIO(zf.read(pkl)), prefix).load()   # zipfile cost 30 ms of a Swin-L
            else:
                with zf.open(pkl) as f:
                    obj = _Unpickler(f, prefix).load()
        except (Unsupported, BadInputError):
            raise
        except _Negative:
            raise _malformed(path, "a tensor has a negative storage offset, size or stride") from None
        except Exception as e:  # a malformed pickle: torch.load reports it properly
            raise Unsupported(f"{type(e).__name__}: {e}") from None
        offsets = {i.filename: i for i in zf.infolist()}
        with open(path, "rb") as raw:
            return _Materialiser(lambda key: _member_start(raw, offsets, prefix + "data/" + key), path).walk(obj)


def _member_start(raw, infos: dict, name: str) -> tuple[int, int]:
    info = infos.get(name)
    if info is None or info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        raise Unsupported(f"storage {name} missing, compressed or encrypted")
    raw.seek(info.header_offset)
    header = raw.read(30)
    if header[:4] != b"PK\x03\x04":
        raise Unsupported("bad zip local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


class _Materialiser:
    """Replace recorded tensors by FileSlices; shared objects are walked once, cycles and
    absurd nesting are refused (so time and memory follow the pickle's size)."""

    def __init__(self, start_of, path: str):
        self.start_of, self.path = start_of, path
        self.done: dict[int, object] = {}
        self.active: set[int] = set()

    def walk(self, obj, depth: int = 0):
        if not isinstance(obj, (dict, list, tuple)):
            return obj
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise _malformed(self.path, "a container holds itself")
        if depth > MAX_DEPTH:
            raise _malformed(self.path, f"containers are nested more than {MAX_DEPTH} deep")
        self.active.add(key)
        try:
            out = self._walk(obj, depth)
        finally:
            self.active.discard(key)
        self.done[key] = out
        return out

    def _walk(self, obj, depth: int):
        if isinstance(obj, tuple) and len(obj) == 4 and obj[0] == "tensor" and isinstance(obj[1], _Storage):
            _, storage, offset, size = obj
            start, length = self.start_of(storage.key)
            src = FileSlice(self.path, start + offset * DTYPES[storage.dtype][0], storage.dtype, size)
            if src.offset + src.nbytes > start + length:
                raise _malformed(self.path, f"a tensor extends past the end of its storage '{storage.key}'")
            return src
        if isinstance(obj, dict):
            return {k: self.walk(v, depth + 1) for k, v in obj.items()}
        return type(obj)(self.walk(v, depth + 1) for v in obj)
