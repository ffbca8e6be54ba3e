"""Crafted hostile inputs, built in the test that uses them (nothing is shipped)."""
from __future__ import annotations

import collections
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import torch


class _Storage:
    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class FakeTensor:
    """Pickles as torch's ``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` with any arguments."""

    def __init__(self, key: str, numel: int, offset, size, stride=None):
        if stride is None:
            stride, step = [], 1
            for d in reversed(size):
                stride.insert(0, step)
                step *= d
        self.args = (_Storage(key, numel), offset, tuple(size), tuple(stride))

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args + (False, collections.OrderedDict())


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def pth_with_pickle(folder: Path, name: str, pkl: bytes, storage: torch.Tensor | None = None) -> Path:
    """A torch.save zip whose data.pkl is ``pkl`` (storage '0' holds ``storage``, default 8 floats)."""
    base = folder / f"{name}.base.pth"
    torch.save({"w": torch.arange(8.0) if storage is None else storage}, base)
    out = folder / f"{name}.pth"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, pkl if info.filename.endswith("data.pkl") else zin.read(info.filename))
    base.unlink()
    return out


def nested_dicts_pickle(depth: int) -> bytes:
    """{'a': {'a': ... {}}} ``depth`` deep, written opcode by opcode (pickle.dumps would recurse)."""
    key = b"X\x01\x00\x00\x00a"
    return b"\x80\x02}" + (key + b"}") * depth + b"s" * depth + b"."


def memo_index_pickle(index: int) -> bytes:
    """An empty dict stored at memo slot ``index`` (LONG_BINPUT): the C unpickler sizes its memo by it."""
    return b"\x80\x02}r" + struct.pack("<I", index) + b"."


def shared_reference_pickle(levels: int) -> bytes:
    """A list of two references to a list of two references ... ``levels`` deep (2**levels paths)."""
    out = b"\x80\x02]q\x00"                           # level 0: []
    for i in range(1, levels + 1):
        out += b"]" + b"(" + b"h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"e" + b"q" + bytes([i])
    return out + b"."


def safetensors_with_header(path: Path, header_text: str | bytes, data: bytes = b"\0" * 64) -> Path:
    blob = header_text.encode() if isinstance(header_text, str) else header_text
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


def one_tensor_header(**entry) -> str:
    base = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    base.update(entry)
    return json.dumps({"w": base})


def set_zip_flag(path: Path, member_suffix: str, flag: int) -> None:
    """OR ``flag`` into a member's general-purpose flags (local and central headers)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    data[info.header_offset + 6] |= flag
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + name_len].decode().endswith(member_suffix):
            data[pos + 8] |= flag
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


def set_zip_crc(path: Path, member_suffix: str) -> None:
    """Give a member a wrong CRC-32 in its central directory entry."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + name_len].decode().endswith(member_suffix):
            data[pos + 16] ^= 0xFF
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))
