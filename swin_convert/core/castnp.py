"""The casts of core/cast.py with numpy: what runs when the compiled kernels (``_castc``) are not
built, and for every source that is not a file range (a torch tensor, a computed array, a cast of
a cast). The same bits as ``_castc`` (tests/test_dtype.py holds both to torch and to each other).

numpy is imported here only, when something is cast: a remap that casts nothing never loads it,
nor one that casts file ranges with ``_castc``.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .tensors import DTYPES, ArraySource, Concat, FileSlice, Files, TorchSource, tensor_bytes
from .dtypes import TORCH_NAMES

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def cast_chunks(source, dtype: str, elems: int):
    """``source``'s elements as ``dtype`` (raw bits, unsigned ints of its width), ``elems`` at a
    time; each chunk is valid until the next is asked for (the scratch arrays are reused)."""
    if isinstance(source, TorchSource):     # torch is loaded already (the tensor is one): its own cast
        yield from torch_cast_chunks(source.tensor, dtype, elems)
        return
    with _scratch() as work:
        for raw in raw_chunks(source, elems, work):
            yield convert(raw, source.dtype, dtype, work)


def torch_cast_chunks(t, dtype: str, elems: int):
    """``t``'s elements cast to the safetensors ``dtype`` by torch itself, ``elems`` at a time, as
    numpy arrays of unsigned integers of the new width (torch is loaded already: ``t`` is a tensor)."""
    import torch
    flat = t.detach().reshape(-1)
    target = getattr(torch, TORCH_NAMES[dtype])
    for i in range(0, flat.numel(), elems):
        part = flat[i:i + elems].to(target).contiguous()
        yield part.view(torch.int16 if part.element_size() == 2 else torch.int32).numpy().view(
            "u2" if part.element_size() == 2 else "u4")



# ----------------------------------------------------------------------------------------
# reading a source a piece at a time
# ----------------------------------------------------------------------------------------
def raw_chunks(source, elems: int, work: "Work | None" = None):
    """The source's elements as unsigned integers of their width, ``elems`` at a time (a file
    range and a torch tensor are read piece by piece; a computed tensor is made once). A chunk
    read from a file is valid until the next one is asked for (one buffer is reused)."""
    width = DTYPES[source.dtype][0]
    kind = _UINT[width]
    if isinstance(source, FileSlice):
        yield from _file_chunks(source, elems * width, kind, work or Work())
    elif hasattr(source, "chunks"):          # a CastSource: a cast of a cast
        yield from source.chunks()
    elif isinstance(source, Concat):
        for part in source.parts:
            yield from raw_chunks(part, elems, work)
    elif isinstance(source, TorchSource):
        flat = source.tensor.detach().reshape(-1)
        for i in range(0, flat.numel(), elems):
            yield np.frombuffer(tensor_bytes(flat[i:i + elems]), dtype=kind)
    else:
        if isinstance(source, ArraySource):
            arr = np.ascontiguousarray(source.array).reshape(-1).view(kind)
        else:
            arr = np.frombuffer(source.tobytes(), dtype=kind)
        for i in range(0, arr.size, elems):
            yield arr[i:i + elems]


def _file_chunks(source: FileSlice, chunk_bytes: int, kind, work: "Work"):
    left, at = source.nbytes, source.offset
    buf = work.get("read", np.uint8, min(chunk_bytes, left))
    files = Files()                   # the read (and its "ended early" error) the pieces use
    try:
        while left > 0:
            view = buf[:min(chunk_bytes, left)]
            files.pread_into(source.path, view, at)
            at += view.size
            left -= view.size
            yield view.view(kind)
    finally:
        files.close()


# ----------------------------------------------------------------------------------------
# the conversions, on raw bits
# ----------------------------------------------------------------------------------------
class Work:
    """Scratch arrays reused from chunk to chunk (fresh multi-MB arrays would each be page-faulted
    in again); a result is valid until the next conversion with the same ``Work``."""

    def __init__(self):
        self._bufs: dict = {}

    def get(self, name: str, dtype, n: int) -> np.ndarray:
        """``n`` elements of ``dtype`` (the same bytes whatever dtype asks for them)."""
        size = n * np.dtype(dtype).itemsize
        buf = self._bufs.get(name)
        if buf is None or buf.size < size:
            buf = self._bufs[name] = np.empty(max(size, 8), dtype=np.uint8)
        return buf[:size].view(dtype)


_POOL = threading.local()


@contextlib.contextmanager
def _scratch():
    """A Work of this thread's pool: reused by the tensors written one after the other; a cast
    nested in another (a cast of a cast) takes its own."""
    free = _POOL.__dict__.setdefault("free", [])
    work = free.pop() if free else Work()
    try:
        yield work
    finally:
        free.append(work)


def convert(raw: np.ndarray, src: str, dst: str, work: Work | None = None) -> np.ndarray:
    """Raw elements of dtype ``src`` (unsigned ints of its width) -> raw elements of ``dst``."""
    work = work or Work()
    if src == dst:
        return raw
    if src == "F16" and dst == "F32":
        out = work.get("f32", np.float32, raw.size)
        np.copyto(out, raw.view(np.float16), casting="unsafe")
        return out.view(np.uint32)
    if src == "BF16" and dst == "F32":
        out = work.get("f32", np.uint32, raw.size)
        np.left_shift(raw, 16, out=out, dtype=np.uint32, casting="unsafe")
        return out
    f32 = convert(raw, src, "F32", work) if src != "F64" else _f64_to_f32(raw, work)
    if dst == "F32":
        return f32
    return f32_to_bf16(f32, work) if dst == "BF16" else f32_to_f16(f32, work)


def _f64_to_f32(raw: np.ndarray, work: Work) -> np.ndarray:
    out = work.get("f32", np.float32, raw.size)
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out, raw.view(np.float64), casting="unsafe")
    return out.view(np.uint32)


def f32_to_bf16(u: np.ndarray, work: Work | None = None) -> np.ndarray:
    """fp32 bits -> bf16 bits, round to nearest even (c10's ``round_to_nearest_even``):
    ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16``; a NaN becomes 0xFFFF."""
    work = work or Work()
    t = work.get("t", np.uint32, u.size)
    np.right_shift(u, 16, out=t)
    np.bitwise_and(t, 1, out=t)
    np.add(t, 0x7FFF, out=t)
    np.add(t, u, out=t)            # wraps only for NaN bit patterns, replaced below
    out = work.get("out16", np.uint16, u.size)
    np.right_shift(t, 16, out=t)   # shift + narrowing copy: 45 us a chunk, a strided copy of the high halves 75
    np.copyto(out, t, casting="unsafe")
    _fix_nan(u, out, work, lambda o, nan, u: o.__setitem__(nan, 0xFFFF))
    return out


def f32_to_f16(u: np.ndarray, work: Work | None = None) -> np.ndarray:
    """fp32 bits -> fp16 bits (IEEE round to nearest even, overflow to inf, NaN quieted)."""
    work = work or Work()
    out = work.get("out16", np.uint16, u.size)
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out.view(np.float16), u.view(np.float32), casting="unsafe")
    _fix_nan(u, out, work, _f16_nan)
    return out


def _f16_nan(out: np.ndarray, nan: np.ndarray, u: np.ndarray) -> None:
    """A NaN as fp16: sign | 0x7E00 | its top 9 payload bits (quiet), what F16C writes, whatever
    path numpy's own cast took (its scalar loop keeps a signalling NaN signalling)."""
    bits = u[nan]
    out[nan] = ((bits >> 16) & 0x8000) | 0x7E00 | ((bits >> 13) & 0x3FF)


def _fix_nan(u: np.ndarray, out: np.ndarray, work: Work, fix) -> None:
    f = u.view(np.float32)
    if not f.size:
        return
    top = np.maximum.reduce(f)        # NaN iff an element is (maximum propagates NaNs): one pass, no buffer
    if top == top:
        return
    nan = work.get("nan", np.bool_, u.size)
    np.isnan(f, out=nan)
    fix(out, nan, u)
