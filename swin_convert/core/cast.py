"""Casting floating tensors while they stream to the output (no torch; numpy only where needed).

    src = cast(source, "BF16")     # a lazy source: its bytes are made chunk by chunk when written

Only floating tensors (F64, F32, F16, BF16) are cast; integer and bool tensors (an index
buffer, a counter) and fp8 tensors are returned unchanged, as is a tensor already in the
target dtype (so a renamed tensor stays a byte copy). Float buffers that runtimes regenerate
(shift masks, V2 coordinate tables) are cast like the weights, as ``model.to(dtype)`` does.
Conversions are bit-exact with torch's ``Tensor.to`` on the CPU:

* fp32 -> fp16: IEEE round to nearest even, subnormals kept, overflow to inf; a NaN becomes
  sign | 0x7E00 | its top payload bits, what the F16C instruction torch uses writes.
* fp32 -> bf16: ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the bits, c10's
  ``round_to_nearest_even`` (overflow rounds to inf); a NaN becomes 0xFFFF, the NaN torch's
  vectorised CPU kernels write (its scalar path writes 0x7FC0: either way NaN stays NaN).
* fp16 -> fp32 and bf16 -> fp32 are exact; fp16 <-> bf16 and fp64 -> anything go through
  fp32, as torch's casts do (fp16 -> fp32 is exact, so that is one rounding).

Two implementations make the same bits: the compiled kernels of ``_castc.c`` (one pass, no GIL,
no numpy: built by ``pip install`` where a C compiler is found) cast file ranges; numpy
(``castnp``) casts everything else, and file ranges too where ``_castc`` is not built. When the
output is a file, a cast of a file range is written in independent pieces of ``CAST_CHUNK``
elements (pread, convert, pwrite) by the writer's few threads (``tensors.fill_pieces``).

A cast reads its source ``CAST_CHUNK`` elements at a time (a file range is read piece by piece
into one buffer, a torch tensor from a .pth sliced and cast by torch itself), so a 1 GB tensor
costs a few MB of memory, never itself plus copies.
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from functools import partial

from .tensors import DTYPES, FileSlice, Files, Piece
from .dtypes import ALIASES, FLOAT_DTYPES, NAMES, TORCH_NAMES, castable, parse_dtype, short_name  # noqa: F401


def _load_kernels():
    """``_castc`` where it was built (optional: numpy does the same where it is not). Looked up,
    not guarded by ``except ImportError``: a module that is there but broken must say so."""
    import importlib.util
    if importlib.util.find_spec(f"{__package__}._castc") is None:
        return None
    from . import _castc
    return _castc


_KERNELS = _load_kernels()

CAST_CHUNK = 1 << 18            # elements per step (1 MB of fp32: the scratch buffers stay in cache)


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


def kernels():
    """The compiled kernels (``_castc``), or None where they are not built (numpy casts then)."""
    return _KERNELS


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
        from .castnp import cast_chunks
        yield from cast_chunks(self.source, self.dtype, CAST_CHUNK)

    def _parts(self):
        """The converted bytes as buffers (valid until the next is asked for): the compiled
        kernels for a file range, numpy otherwise."""
        if _KERNELS is None or not isinstance(self.source, FileSlice):
            for part in self.chunks():
                yield memoryview(part).cast("B")
            return
        src, n, files = self.source, _numel(self.shape), Files()
        try:
            with _buffers() as bufs:
                for first in range(0, n, CAST_CHUNK):
                    yield _convert_range(src, self.dtype, first, min(CAST_CHUNK, n - first), files, bufs)
        finally:
            files.close()

    def write_to(self, out) -> None:
        for part in self._parts():
            out.write(part)

    def pieces(self) -> list[Piece] | None:
        """A cast of a file range in independent pieces of ``CAST_CHUNK`` elements, each read
        with ``pread``, converted and written with ``pwrite`` at its place, so that the writer can
        make them on a few threads (None for any other source: it is written in order)."""
        src = self.source
        if not isinstance(src, FileSlice):
            return None
        n, width = _numel(self.shape), DTYPES[self.dtype][0]
        return [Piece(first * width, partial(_fill_piece, src, self.dtype, first, min(CAST_CHUNK, n - first)))
                for first in range(0, n, CAST_CHUNK)]

    def tobytes(self) -> bytes:
        buf = bytearray(self.nbytes)
        view, at = memoryview(buf), 0
        for part in self._parts():
            view[at:at + len(part)] = part
            at += len(part)
        return bytes(buf)


def _fill_piece(src: FileSlice, dtype: str, first: int, count: int, files: Files, fd: int, pos: int) -> None:
    """Elements ``first .. first + count`` of the file range ``src``, cast to ``dtype``, at ``pos`` of ``fd``."""
    if _KERNELS is not None:
        with _buffers() as bufs:
            files.pwrite(fd, _convert_range(src, dtype, first, count, files, bufs), pos)
        return
    import numpy as np
    from .castnp import _UINT, _scratch, convert
    width = DTYPES[src.dtype][0]
    with _scratch() as work:                  # this thread's scratch arrays
        raw = work.get("read", np.uint8, count * width)
        files.pread_into(src.path, raw, src.offset + first * width)
        files.pwrite(fd, convert(raw.view(_UINT[width]), src.dtype, dtype, work), pos)


def _convert_range(src: FileSlice, dtype: str, first: int, count: int, files: Files, bufs: dict) -> memoryview:
    """Elements ``first .. first + count`` of ``src`` as ``dtype`` by the compiled kernels, in
    ``bufs`` (valid until its next use)."""
    width = DTYPES[src.dtype][0]
    raw = _buffer(bufs, "raw", count * width)
    files.pread_into(src.path, raw, src.offset + first * width)
    out = _buffer(bufs, "out", count * DTYPES[dtype][0])
    _KERNELS.convert(raw, src.dtype, out, dtype)
    return out


def _buffer(bufs: dict, name: str, size: int) -> memoryview:
    """``size`` bytes of the reused buffer ``name`` (a new, larger one when it is too small)."""
    view = bufs.get(name)
    if view is None or len(view) < size:
        view = bufs[name] = memoryview(bytearray(max(size, 8)))
    return view[:size]


_POOL = threading.local()


@contextlib.contextmanager
def _buffers():
    """Byte buffers of this thread's pool, reused from piece to piece (a cast nested in another
    takes its own)."""
    free = _POOL.__dict__.setdefault("free", [])
    bufs = free.pop() if free else {}
    try:
        yield bufs
    finally:
        free.append(bufs)


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


__all__ = ["CastSource", "cast", "castable", "kernels", "parse_dtype", "short_name", "FLOAT_DTYPES", "NAMES",
           "TORCH_NAMES", "CAST_CHUNK"]
