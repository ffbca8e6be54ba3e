"""Casting floating tensors while they stream to the output (numpy only, no torch).

    src = cast(source, "BF16")     # a lazy source: its bytes are made chunk by chunk when written

Only floating tensors (F64, F32, F16, BF16) are cast; integer and bool tensors (an index
buffer, a counter) and fp8 tensors are returned unchanged, as is a tensor already in the
target dtype (so a renamed tensor stays a byte copy). Float buffers that runtimes regenerate
(shift masks, V2 coordinate tables) are cast like the weights, as ``model.to(dtype)`` does. Conversions are bit-exact with torch's
``Tensor.to`` on the CPU:

* fp32 -> fp16: numpy's IEEE cast (round to nearest even, subnormals kept, overflow to inf);
  a NaN gets its quiet bit, as the F16C instruction torch uses sets it.
* fp32 -> bf16: ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the bits, c10's
  ``round_to_nearest_even`` (overflow rounds to inf); a NaN becomes 0xFFFF, the NaN torch's
  vectorised CPU kernels write (its scalar path writes 0x7FC0: either way NaN stays NaN).
* fp16 -> fp32 and bf16 -> fp32 are exact; fp16 <-> bf16 and fp64 -> anything go through
  fp32, as torch's casts do (fp16 -> fp32 is exact, so that is one rounding).

A cast reads its source ``CAST_CHUNK`` elements at a time (a file range is read piece by piece
into one buffer, a torch tensor from a .pth sliced and cast by torch itself), so a 1 GB tensor
costs a few MB of memory, never itself plus copies.
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from .tensors import DTYPES, ArraySource, Concat, FileSlice, TorchSource, tensor_bytes
from .dtypes import ALIASES, FLOAT_DTYPES, NAMES, TORCH_NAMES, castable, parse_dtype, short_name  # noqa: F401

CAST_CHUNK = 1 << 18            # elements per step (1 MB of fp32: the scratch arrays stay in cache)
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def cast(source, dtype: str):
    """``source`` as ``dtype`` (a lazy :class:`CastSource`), or ``source`` itself when it is not
    floating or already ``dtype``."""
    if dtype not in FLOAT_DTYPES[1:]:
        raise ValueError(f"cannot cast to {dtype}")
    if not castable(source, dtype):
        return source
    if isinstance(source, CastSource) and source.dtype == "F32" and source.source.dtype in ("F16", "BF16"):
        return cast(source.source, dtype)      # the widening was exact: cast the original instead
    return CastSource(source, dtype)


@dataclass(frozen=True)
class CastSource:
    """A floating source's elements as ``dtype``, converted chunk by chunk as they are written."""

    source: object
    dtype: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * DTYPES[self.dtype][0]

    def chunks(self):
        """The converted bytes, in order, as numpy arrays of ``CAST_CHUNK`` elements or fewer
        (each valid until the next is asked for: the scratch arrays are reused)."""
        if isinstance(self.source, TorchSource):     # torch is loaded already (the tensor is one): its own cast
            yield from _torch_cast_chunks(self.source.tensor, self.dtype, CAST_CHUNK)
            return
        with _scratch() as work:
            for raw in raw_chunks(self.source, CAST_CHUNK, work):
                yield convert(raw, self.source.dtype, self.dtype, work)

    def write_to(self, out) -> None:
        for part in self.chunks():
            out.write(memoryview(part).cast("B"))

    def tobytes(self) -> bytes:
        buf = bytearray(self.nbytes)
        view, at = memoryview(buf), 0
        for part in self.chunks():
            b = memoryview(part).cast("B")
            view[at:at + len(b)] = b
            at += len(b)
        return bytes(buf)


def _torch_cast_chunks(t, dtype: str, elems: int):
    """``t``'s elements cast to the safetensors ``dtype`` by torch itself, ``elems`` at a time, as
    numpy arrays of unsigned integers of the new width (torch is loaded already: ``t`` is a tensor)."""
    import torch
    flat = t.detach().reshape(-1)
    target = getattr(torch, TORCH_NAMES[dtype])
    for i in range(0, flat.numel(), elems):
        part = flat[i:i + elems].to(target).contiguous()
        yield part.view(torch.int16 if part.element_size() == 2 else torch.int32).numpy().view(
            "u2" if part.element_size() == 2 else "u4")


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


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
    elif isinstance(source, CastSource):
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
    from ..errors import BadInputError
    left = source.nbytes
    buf = memoryview(work.get("read", np.uint8, min(chunk_bytes, left)))
    with open(source.path, "rb") as f:
        f.seek(source.offset)
        while left > 0:
            view = buf[:min(chunk_bytes, left)]
            n = f.readinto(view)
            if n != len(view):
                raise BadInputError(f"'{source.path}' ended early while reading a tensor.",
                                    "The file is truncated; download it again.")
            left -= n
            yield np.frombuffer(view, dtype=kind)


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
    _fix_nan(u, out, work, lambda o, nan: o.__setitem__(nan, 0xFFFF))
    return out


def f32_to_f16(u: np.ndarray, work: Work | None = None) -> np.ndarray:
    """fp32 bits -> fp16 bits (IEEE round to nearest even, overflow to inf, NaN quieted)."""
    work = work or Work()
    out = work.get("out16", np.uint16, u.size)
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out.view(np.float16), u.view(np.float32), casting="unsafe")
    _fix_nan(u, out, work, lambda o, nan: o.__setitem__(nan, o[nan] | 0x0200))
    return out


def _fix_nan(u: np.ndarray, out: np.ndarray, work: Work, fix) -> None:
    nan = work.get("nan", np.bool_, u.size)
    np.isnan(u.view(np.float32), out=nan)
    if nan.any():
        fix(out, nan)


__all__ = ["CastSource", "cast", "castable", "parse_dtype", "short_name", "convert", "raw_chunks",
           "FLOAT_DTYPES", "NAMES", "TORCH_NAMES", "Work"]
