"""Casting floating tensors while they stream to the output (numpy only, no torch).

    src = cast(source, "BF16")     # a lazy source: its bytes are made chunk by chunk when written

Only floating tensors (F64, F32, F16, BF16) are cast; integer and bool tensors (an index
buffer, a counter) and fp8 tensors are returned unchanged, as is a tensor already in the
target dtype (so a renamed tensor stays a byte copy). Conversions are bit-exact with torch's
``Tensor.to`` on the CPU:

* fp32 -> fp16: numpy's IEEE cast (round to nearest even, subnormals kept, overflow to inf);
  a NaN gets its quiet bit, as the F16C instruction torch uses sets it.
* fp32 -> bf16: ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the bits, c10's
  ``round_to_nearest_even`` (overflow rounds to inf); a NaN becomes 0xFFFF, the NaN torch's
  vectorised CPU kernels write (its scalar path writes 0x7FC0: either way NaN stays NaN).
* fp16 -> fp32 and bf16 -> fp32 are exact; fp16 <-> bf16 and fp64 -> anything go through
  fp32, as torch's casts do (fp16 -> fp32 is exact, so that is one rounding).

A cast reads its source ``CAST_CHUNK`` elements at a time (a file range is read piece by piece,
a torch tensor sliced), so a 1 GB tensor costs a few MB of memory, never itself plus copies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .tensors import DTYPES, ArraySource, Concat, FileSlice, TorchSource

FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
CAST_CHUNK = 1 << 20            # elements per step (4 MB of fp32)
NAMES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16"}       # user-facing name -> safetensors name
ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
TORCH_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def parse_dtype(name: str) -> str:
    """``fp32 | fp16 | bf16`` (or torch's names) -> the safetensors dtype name; a UsageError otherwise."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in NAMES:
        raise UsageError(f"Unknown --dtype '{name}'.", "Use fp32, fp16 or bf16.")
    return NAMES[key]


def short_name(dtype: str) -> str:
    """F32 -> fp32 (the name the CLI takes); other dtypes as they are."""
    return {v: k for k, v in NAMES.items()}.get(dtype, {"F64": "fp64"}.get(dtype, dtype))


def castable(source, dtype: str) -> bool:
    """Whether ``cast(source, dtype)`` changes the source (a floating tensor of another dtype)."""
    return source.dtype in FLOAT_DTYPES and source.dtype != dtype


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
        """The converted bytes, in order, as numpy arrays of ``CAST_CHUNK`` elements or fewer."""
        src_dtype = self.source.dtype
        for raw in raw_chunks(self.source, CAST_CHUNK):
            yield convert(raw, src_dtype, self.dtype)

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


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


# ----------------------------------------------------------------------------------------
# reading a source a piece at a time
# ----------------------------------------------------------------------------------------
def raw_chunks(source, elems: int):
    """The source's elements as unsigned integers of their width, ``elems`` at a time (a file
    range and a torch tensor are read piece by piece; a computed tensor is made once)."""
    width = DTYPES[source.dtype][0]
    kind = _UINT[width]
    if isinstance(source, FileSlice):
        yield from _file_chunks(source, elems * width, kind)
    elif isinstance(source, CastSource):
        yield from source.chunks()
    elif isinstance(source, Concat):
        for part in source.parts:
            yield from raw_chunks(part, elems)
    elif isinstance(source, TorchSource):
        from .torch_io import tensor_bytes    # torch is loaded already: the tensor is one
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


def _file_chunks(source: FileSlice, chunk_bytes: int, kind):
    from ..errors import BadInputError
    left = source.nbytes
    with open(source.path, "rb") as f:
        f.seek(source.offset)
        while left > 0:
            buf = bytearray(min(chunk_bytes, left))
            n = f.readinto(buf)
            if n != len(buf):
                raise BadInputError(f"'{source.path}' ended early while reading a tensor.",
                                    "The file is truncated; download it again.")
            left -= n
            yield np.frombuffer(buf, dtype=kind)


# ----------------------------------------------------------------------------------------
# the conversions, on raw bits
# ----------------------------------------------------------------------------------------
def convert(raw: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Raw elements of dtype ``src`` (unsigned ints of its width) -> raw elements of ``dst``."""
    if src == dst:
        return raw
    if src == "F16" and dst == "F32":
        return raw.view(np.float16).astype(np.float32).view(np.uint32)
    if src == "BF16" and dst == "F32":
        return raw.astype(np.uint32) << 16
    f32 = convert(raw, src, "F32") if src != "F64" else _f64_to_f32(raw)
    if dst == "F32":
        return f32
    return f32_to_bf16(f32) if dst == "BF16" else f32_to_f16(f32)


def _f64_to_f32(raw: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return raw.view(np.float64).astype(np.float32).view(np.uint32)


def f32_to_bf16(u: np.ndarray) -> np.ndarray:
    """fp32 bits -> bf16 bits, round to nearest even (c10's ``round_to_nearest_even``)."""
    t = u >> 16
    t &= 1
    t += 0x7FFF
    t += u            # wraps only for NaN bit patterns, replaced below
    t >>= 16
    out = t.astype(np.uint16)
    nan = np.isnan(u.view(np.float32))
    if nan.any():
        out[nan] = 0xFFFF
    return out


def f32_to_f16(u: np.ndarray) -> np.ndarray:
    """fp32 bits -> fp16 bits (IEEE round to nearest even, overflow to inf, NaN quieted)."""
    f = u.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out = f.astype(np.float16).view(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        out[nan] |= 0x0200
    return out


__all__ = ["CastSource", "cast", "castable", "parse_dtype", "short_name", "convert", "raw_chunks",
           "FLOAT_DTYPES", "NAMES", "TORCH_NAMES"]
