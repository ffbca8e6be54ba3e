"""Lazy tensor sources and a streaming safetensors reader/writer (no torch needed).

A checkpoint is held as ``{name: TensorSource}``. A source knows its dtype and shape and
produces its bytes only when the writer asks, one tensor at a time, so peak memory stays
near the largest tensor. A tensor read from a safetensors file and only renamed, or a
contiguous row block of one (a q/k/v split), stays a :class:`FileSlice` and reaches the
output as a byte copy (``os.copy_file_range``), never through a tensor op.
"""
from __future__ import annotations

import json
import math
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

from ..errors import BadInputError

# safetensors dtype -> (bytes per element, numpy dtype name or None). Names, not numpy types:
# a remap of file ranges never imports numpy (np_dtype resolves a name when one is needed).
DTYPES = {
    "F64": (8, "float64"), "F32": (4, "float32"), "F16": (2, "float16"), "BF16": (2, None),
    "I64": (8, "int64"), "I32": (4, "int32"), "I16": (2, "int16"), "I8": (1, "int8"),
    "U8": (1, "uint8"), "U16": (2, "uint16"), "U32": (4, "uint32"), "U64": (8, "uint64"),
    "BOOL": (1, "bool"), "F8_E4M3": (1, None), "F8_E5M2": (1, None),
}
_NP_NAME_TO_ST = {v: k for k, (_, v) in DTYPES.items() if v is not None}
MAX_HEADER = 100 * 1024 * 1024
COPY_CHUNK = 64 * 1024 * 1024
FILLERS = 2        # threads (the caller's included) that make Pieces; the writes serialise on the file's lock


class TensorSource(Protocol):
    dtype: str                 # safetensors dtype name
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int: ...
    def write_to(self, out) -> None: ...
    def tobytes(self) -> bytes: ...


def np_dtype(dtype: str):
    """The numpy dtype of a safetensors dtype name (None: numpy has none, e.g. BF16)."""
    name = DTYPES[dtype][1]
    if name is None:
        return None
    import numpy as np
    return np.dtype(name)


def st_dtype(np_dtype) -> str:
    """The safetensors name of a numpy dtype (native or little-endian byte order only)."""
    if np_dtype.byteorder not in "=|<" or np_dtype.name not in _NP_NAME_TO_ST:
        raise KeyError(np_dtype)
    return _NP_NAME_TO_ST[np_dtype.name]


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


@dataclass(frozen=True)
class FileSlice:
    """``nbytes`` bytes at ``offset`` of a file: a tensor (or row block) of a safetensors file."""

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * DTYPES[self.dtype][0]

    def write_to(self, out) -> None:
        with open(self.path, "rb") as src:
            _copy_range(src, out, self.offset, self.nbytes)

    def tobytes(self) -> bytes:
        with open(self.path, "rb") as src:
            src.seek(self.offset)
            return src.read(self.nbytes)


def _copy_range(src, out, offset: int, nbytes: int, dst: int | None = None) -> None:
    """``nbytes`` of ``src`` from ``offset`` into ``out`` at ``dst`` (default: its position); ``out`` is
    left positioned after them, as a sequential write would leave it."""
    out.flush()
    if dst is None:
        dst = out.tell()
    done = 0
    try:
        while done < nbytes:  # kernel-side copy, like cp
            n = os.copy_file_range(src.fileno(), out.fileno(), nbytes - done, offset + done, dst + done)
            if n <= 0:
                break
            done += n
    except (AttributeError, OSError):
        pass
    src.seek(offset + done)
    out.seek(dst + done)
    while done < nbytes:
        chunk = src.read(min(COPY_CHUNK, nbytes - done))
        if not chunk:
            raise BadInputError(f"'{src.name}' ended early while copying a tensor.",
                                "The file is truncated; download it again.", path=src.name)
        out.write(chunk)
        done += len(chunk)
    out.seek(dst + nbytes)


@dataclass(frozen=True)
class ArraySource:
    """A numpy array (synthesised buffers, small transformed tensors)."""

    array: "np.ndarray"

    @property
    def dtype(self) -> str:
        return st_dtype(self.array.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def write_to(self, out) -> None:
        import numpy as np
        out.write(memoryview(np.ascontiguousarray(self.array)).cast("B"))

    def tobytes(self) -> bytes:
        import numpy as np
        return np.ascontiguousarray(self.array).tobytes()


@dataclass(frozen=True)
class TorchSource:
    """A torch tensor (from a .pth, possibly memory-mapped); its bytes are taken on demand."""

    tensor: object

    @property
    def dtype(self) -> str:
        return TORCH_DTYPE_NAMES[str(self.tensor.dtype).removeprefix("torch.")]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def nbytes(self) -> int:
        return self.tensor.numel() * self.tensor.element_size()

    def write_to(self, out) -> None:
        out.write(self.tobytes())

    def tobytes(self) -> bytes:
        return tensor_bytes(self.tensor)


# torch's dtype names -> safetensors' (torch itself is imported only by whoever made the tensor)
TORCH_DTYPE_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                     "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL", "uint16": "U16",
                     "uint32": "U32", "uint64": "U64", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2"}


def tensor_bytes(t) -> bytes:
    """A torch tensor's raw bytes (C order); bf16 and fp8 too (viewed as uint8, numpy has no such dtypes)."""
    import torch    # loaded already: ``t`` is a torch tensor
    t = t.detach().contiguous().reshape(-1)   # reshape: a (L, 1) view can be "contiguous" with stride != 1
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


@dataclass(frozen=True)
class RowSlice:
    """Rows [start, stop) of a source (dim 0): a byte range, because rows are contiguous."""

    source: object
    start: int
    stop: int

    @property
    def dtype(self) -> str:
        return self.source.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stop - self.start,) + tuple(self.source.shape[1:])

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * DTYPES[self.dtype][0]

    def _row_bytes(self) -> int:
        return _numel(self.source.shape[1:]) * DTYPES[self.dtype][0]

    def write_to(self, out) -> None:
        out.write(self.tobytes())

    def tobytes(self) -> bytes:
        rb = self._row_bytes()
        return self.source.tobytes()[self.start * rb:self.stop * rb]


@dataclass(frozen=True)
class Concat:
    """Sources concatenated along dim 0 (all with the same trailing shape and dtype)."""

    parts: tuple

    @property
    def dtype(self) -> str:
        return self.parts[0].dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return (sum(p.shape[0] for p in self.parts),) + tuple(self.parts[0].shape[1:])

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def write_to(self, out) -> None:
        for p in self.parts:
            p.write_to(out)

    def tobytes(self) -> bytes:
        return b"".join(p.tobytes() for p in self.parts)


class Deferred:
    """A tensor whose dtype and shape are known now and whose values are made when first needed.

    The writer makes such sources after its byte copies, and calls ``prepare`` (if given) just
    before it starts them: a ``prepare`` that starts a torch import in a thread lets that import
    run while the kernel copies (the copies hold no GIL; started earlier, the import would slow
    the writer's own Python work instead). ``make`` returns a source of exactly this dtype and shape.
    """

    def __init__(self, dtype: str, shape: tuple[int, ...], make, label: str = "", prepare=None):
        self.dtype, self.shape, self.label = dtype, tuple(shape), label
        self._make, self._made, self.prepare = make, None, prepare

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * DTYPES[self.dtype][0]

    def resolve(self):
        if self._made is None:
            made = self._make()
            if made.dtype != self.dtype or tuple(made.shape) != self.shape:
                raise RuntimeError(f"{self.label or 'a deferred tensor'} came out {made.dtype} {list(made.shape)}, "
                                   f"not the {self.dtype} {list(self.shape)} announced")
            self._made = made
        return self._made

    def write_to(self, out) -> None:
        self.resolve().write_to(out)

    def tobytes(self) -> bytes:
        return self.resolve().tobytes()

    def __repr__(self) -> str:
        return f"Deferred({self.label or '?'}, {self.dtype}, {list(self.shape)})"


class DataUnavailable(Exception):
    """The tensor's bytes are not here (only its header was read, e.g. from the Hub)."""


@dataclass(frozen=True)
class RemoteTensor:
    """Dtype and shape of a tensor whose data was not downloaded (inspect of a Hub repo)."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * DTYPES[self.dtype][0]

    def write_to(self, out) -> None:
        raise DataUnavailable("remote tensor")

    def tobytes(self) -> bytes:
        raise DataUnavailable("remote tensor")


def row_slice(source, start: int, stop: int):
    """Rows of ``source``; a file-backed source stays a file range (byte copy)."""
    if isinstance(source, FileSlice):
        row = _numel(source.shape[1:]) * DTYPES[source.dtype][0]
        return FileSlice(source.path, source.offset + start * row, source.dtype,
                         (stop - start,) + tuple(source.shape[1:]))
    if isinstance(source, TorchSource):
        return TorchSource(source.tensor[start:stop])
    return RowSlice(source, start, stop)


def concat_rows(parts):
    """Rows of ``parts`` one after the other; adjacent ranges of one file merge back into one."""
    parts = tuple(parts)
    if all(isinstance(p, FileSlice) for p in parts) and len({p.path for p in parts}) == 1:
        if all(a.offset + a.nbytes == b.offset for a, b in zip(parts, parts[1:])):
            return FileSlice(parts[0].path, parts[0].offset, parts[0].dtype,
                             (sum(p.shape[0] for p in parts),) + tuple(parts[0].shape[1:]))
    return Concat(parts)


def to_numpy(source) -> "np.ndarray":
    """Materialise a source as numpy (BF16/F8 need torch: use to_torch)."""
    import numpy as np
    dtype = np_dtype(source.dtype)
    if isinstance(source, ArraySource):
        return source.array
    if dtype is None:
        raise TypeError(f"{source.dtype} has no numpy dtype")
    return np.frombuffer(source.tobytes(), dtype=dtype).reshape(source.shape)


# ----------------------------------------------------------------------------------------
# safetensors files
# ----------------------------------------------------------------------------------------
def read_safetensors_header(path: str | Path) -> tuple[dict, dict[str, FileSlice]]:
    """Validate a safetensors header and return (metadata, {name: FileSlice}) without reading data.

    As strict as the safetensors library: every entry is exactly ``dtype`` (a known name),
    ``shape`` (non-negative integers, not booleans) and ``data_offsets`` (two integers inside
    the file); anything else (floats, huge or nested values, 100,000-deep JSON) is refused as
    malformed rather than failing later.
    """
    path = str(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _bad(path, "is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise _bad(path, "has a corrupt header length (truncated or not safetensors)")
        header = parse_header_json(f.read(n), path)
    metadata, sources = header_sources(header, path, 8 + n, size)
    return metadata, sources


def parse_header_json(blob: bytes, path: str) -> dict:
    """The header's JSON object (numbers kept exact; nesting, NaN and huge numbers refused)."""
    try:
        header = json.loads(blob, parse_float=_no_float, parse_constant=_no_float, parse_int=_bounded_int,
                            object_pairs_hook=unique_keys)
    except _HeaderValueError as e:
        raise _bad(path, f"has a header with {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise _bad(path, "has a header that is not valid JSON") from None
    if not isinstance(header, dict):
        raise _bad(path, "has a header that is not a JSON object")
    return header


def header_sources(header: dict, path: str, data_start: int, size: int) -> tuple[dict, dict[str, FileSlice]]:
    """Check every entry of a parsed header; (metadata, {name: FileSlice})."""
    header = dict(header)
    metadata = header.pop("__metadata__", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "has __metadata__ that is not a string-to-string map")
    sources = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _header_entry(path, name, entry)
        if data_start + end > size:
            raise _bad(path, f"is truncated: its header needs {data_start + end} bytes, the file has {size}")
        sources[name] = FileSlice(path, data_start + begin, dtype, shape)
    _check_extents(path, header, data_start)
    return metadata, sources


class _HeaderValueError(ValueError):
    pass


class DuplicateKey(_HeaderValueError):
    """A JSON object that names ``key`` twice (json.loads would keep the last silently)."""

    def __init__(self, key):
        super().__init__("a name given twice")
        self.key = key


def unique_keys(pairs: list) -> dict:
    """``object_pairs_hook`` for untrusted JSON: a key given twice raises :class:`DuplicateKey`."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def _no_float(text: str):
    raise _HeaderValueError(f"a non-integer number ({text[:20]})")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 20:
        raise _HeaderValueError(f"an integer of {len(text)} digits")
    return int(text)


def _is_uint(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 63


def _header_entry(path: str, name: str, entry) -> tuple[str, tuple[int, ...], int, int]:
    ok = (isinstance(entry, dict) and {"dtype", "shape", "data_offsets"} <= set(entry)
          and isinstance(entry["dtype"], str) and entry["dtype"] in DTYPES
          and isinstance(entry["shape"], list) and len(entry["shape"]) <= 64
          and all(_is_uint(d) for d in entry["shape"])
          and isinstance(entry["data_offsets"], list) and len(entry["data_offsets"]) == 2
          and all(_is_uint(o) for o in entry["data_offsets"])
          and entry["data_offsets"][0] <= entry["data_offsets"][1])
    if not ok:
        raise _bad(path, f"has a malformed header entry for '{name[:100]}'")
    dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
    nbytes = _numel(shape) * DTYPES[dtype][0]
    if end - begin != nbytes:
        raise _bad(path, f"declares {end - begin} bytes for '{name[:100]}' but its shape needs {nbytes}")
    return dtype, shape, begin, end


def _check_extents(path: str, header: dict, data_start: int) -> None:
    spans = sorted(tuple(e["data_offsets"]) for e in header.values())
    for (_, a_end), (b_begin, _) in zip(spans, spans[1:]):
        if b_begin < a_end:
            raise _bad(path, "has overlapping tensors in its header")
def _bad(path: str, what: str) -> BadInputError:
    """One line whatever the file holds: tensor names and paths are shown with control characters escaped."""
    return BadInputError(printable(f"'{path}' {what}."), "Check the file (it may be truncated or corrupt) and download it again.",
                         path=path)


def printable(text: str) -> str:
    """``text`` on one line: control characters (a newline in a tensor name) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


PAGE = 4096


def write_safetensors(path, tensors: Iterable[tuple[str, object]], metadata: dict[str, str]) -> None:
    """Stream ``(name, source)`` pairs into a safetensors file, a path or an open binary file
    (the caller handles atomicity). The data lie in the order given (the order a state dict read
    back lists them).

    File ranges are written first, each with one kernel copy (``copy_file_range``; tensors adjacent
    both in their file and here, such as q/k/v row blocks, make one range), then every other source
    at its place: a Deferred one (a resample waiting for torch) is made only after the copies. The
    header is padded with spaces (safetensors pads it to 8 bytes) so that the largest range keeps its
    offset within a page: an unaligned kernel copy touches two target pages per source page.
    """
    items = list(tensors)
    offsets, offset = [], 0
    for _, src in items:
        offsets.append(offset)
        offset += src.nbytes
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    for (name, src), begin in zip(items, offsets):
        header[name] = {"dtype": src.dtype, "shape": list(src.shape), "data_offsets": [begin, begin + src.nbytes]}
    runs, rest = _data_plan(items, offsets)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * _header_pad(len(blob), runs)
    if hasattr(path, "write"):        # an open binary file (the atomic writer's temp file)
        _write_all(path, blob, items, offsets, runs, rest)
        return
    with open(path, "wb") as out:
        _write_all(out, blob, items, offsets, runs, rest)


@dataclass
class _Run:
    """Tensors adjacent both in one file and in the output: one kernel copy."""

    path: str
    offset: int            # in the source file
    dst: int               # in the output's data section
    nbytes: int


def _data_plan(items, offsets) -> tuple[list[_Run], list[int]]:
    """(runs of file ranges, indices of the other sources)."""
    runs: list[_Run] = []
    rest: list[int] = []
    for i, (_, src) in enumerate(items):
        if not (isinstance(src, FileSlice) and src.nbytes):
            rest.append(i)
            continue
        last = runs[-1] if runs else None
        if (last is not None and last.path == src.path and last.offset + last.nbytes == src.offset
                and last.dst + last.nbytes == offsets[i]):
            last.nbytes += src.nbytes
        else:
            runs.append(_Run(src.path, src.offset, offsets[i], src.nbytes))
    return runs, rest


def _header_pad(blob_len: int, runs: list[_Run]) -> int:
    """Spaces after the header JSON: to 8 bytes, and further (< one page) so that the largest
    run's target offset is its source offset modulo the page size, when 8-byte alignment allows."""
    pad8 = -blob_len % 8
    big = max(runs, key=lambda r: r.nbytes, default=None)
    if big is None or big.nbytes < PAGE:
        return pad8
    pad = (big.offset - (8 + blob_len + big.dst)) % PAGE
    return pad if pad % 8 == pad8 else pad8


def _write_all(out, blob: bytes, items, offsets, runs: list[_Run], rest: list[int]) -> None:
    out.write(struct.pack("<Q", len(blob)) + blob)
    start = 8 + len(blob)
    for i in rest:
        if isinstance(items[i][1], Deferred) and items[i][1].prepare is not None:
            items[i][1].prepare()
    handles: dict[str, object] = {}
    try:
        for run in runs:
            src = handles.get(run.path)
            if src is None:
                src = handles[run.path] = open(run.path, "rb")
            _copy_range(src, out, run.offset, run.nbytes, start + run.dst)
    finally:
        for f in handles.values():
            f.close()
    fd = _positional_fd(out)
    pieces, rest = _split_pieces(items, rest, start, offsets, fd)
    if pieces:
        out.flush()
        fill_pieces(fd, pieces)
    for i in rest:
        out.seek(start + offsets[i])
        items[i][1].write_to(out)
    out.seek(0, os.SEEK_END)
    out.flush()


# ----------------------------------------------------------------------------------------
# sources made in independent pieces by a few threads (a cast of a file range)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """An independent slab of a source's output bytes: ``fill(files, fd, pos)`` writes them at
    ``pos`` of the descriptor ``fd`` (with ``os.pwrite``), reading what it needs through ``files``.
    A source that offers ``pieces()`` (a cast of a file range) is made by :data:`FILLERS` threads at
    once: numpy and the reads and writes release the GIL, and each piece has its own place."""

    at: int                                  # offset in the source's bytes
    fill: Callable[["Files", int, int], None]


class Files:
    """Read descriptors of the source files, shared by the threads filling pieces."""

    def __init__(self):
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._write = threading.Lock()

    def pwrite(self, fd: int, data, pos: int) -> None:
        """All of ``data`` at ``pos`` of ``fd`` (a short write is continued; ENOSPC and EFBIG raise),
        one thread at a time: two writers of one file contend for its inode lock, which spins (a CPU
        each); this lock sleeps, so the other thread reads and converts meanwhile."""
        view, done = memoryview(data).cast("B"), 0
        with self._write:
            while done < len(view):
                done += os.pwrite(fd, view[done:], pos + done)

    def pread_into(self, path: str, buf, offset: int) -> None:
        """Fill ``buf`` (a writable buffer) from ``path`` at ``offset``; a short file is a BadInputError."""
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        view, done = memoryview(buf).cast("B"), 0
        while done < len(view):
            if _PREADV:
                n = os.preadv(fd, [view[done:]], offset + done)
            else:
                got = os.pread(fd, len(view) - done, offset + done)
                n = len(got)
                view[done:done + n] = got
            if n <= 0:
                raise BadInputError(printable(f"'{path}' ended early while reading a tensor."),
                                    "The file is truncated; download it again.", path=path)
            done += n

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


_PREADV = hasattr(os, "preadv")
_POSITIONAL = hasattr(os, "pwrite") and hasattr(os, "pread")


def _positional_fd(out) -> int | None:
    """The descriptor of ``out`` when pieces can be written to it with ``pwrite`` (None: write in order)."""
    if not _POSITIONAL:
        return None
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _split_pieces(items, rest: list[int], start: int, offsets, fd) -> tuple[list, list[int]]:
    """(``(pos, fill)`` of every piece, the indices still to be written in order)."""
    if fd is None:
        return [], rest
    pieces, left = [], []
    for i in rest:
        split = getattr(items[i][1], "pieces", None)
        parts = split() if split is not None else None
        if parts:
            pieces += [(start + offsets[i] + p.at, p.fill) for p in parts]
        else:
            left.append(i)
    return pieces, left


def fill_pieces(fd: int, pieces: list, workers: int | None = None) -> None:
    """Run ``fill(files, fd, pos)`` for every ``(pos, fill)``, on ``workers`` threads (the caller's
    one of them; default: :data:`FILLERS`, at most the CPUs this process may use). The first error
    stops the others after their current piece and is raised here once all have stopped, so that
    nothing writes to ``fd`` after this returns (a signal while waiting included)."""
    workers = max(1, min(workers or FILLERS, _cpus(), len(pieces)))
    files, jobs, lock, stop, failed = Files(), iter(pieces), threading.Lock(), threading.Event(), []

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    job = next(jobs, None)
                if job is None:
                    return
                job[1](files, fd, job[0])
        except BaseException as e:    # noqa: BLE001 -- handed to the caller's thread, raised there
            failed.append(e)
            stop.set()

    helpers = [threading.Thread(target=work, name=f"swin-convert-fill-{k}", daemon=True)
               for k in range(workers - 1)]
    late = None
    try:
        for t in helpers:
            t.start()
        work()
    finally:
        for t in helpers:
            while t.is_alive():
                try:
                    t.join()
                except BaseException as e:    # noqa: BLE001 -- a signal while joining: stop, wait, raise
                    late = late or e
                    stop.set()
        files.close()
    if failed:
        raise failed[0]
    if late is not None:
        raise late


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
