"""The dtype names ``--dtype`` takes and what they mean (no numpy, no torch: a remap that casts
nothing never imports either; the cast itself is ``core/cast.py``)."""
from __future__ import annotations

from ..errors import UsageError

FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
NAMES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16"}       # user-facing name -> safetensors name
ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
TORCH_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def parse_dtype(name: str) -> str:
    """``fp32 | fp16 | bf16`` (or torch's names) -> the safetensors dtype name; a UsageError otherwise."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in NAMES:
        raise UsageError(f"Unknown --dtype '{name}'.", "Use fp32, fp16 or bf16.", option="--dtype")
    return NAMES[key]


def short_name(dtype: str) -> str:
    """F32 -> fp32 (the name the CLI takes); other dtypes as they are."""
    return {v: k for k, v in NAMES.items()}.get(dtype, {"F64": "fp64"}.get(dtype, dtype))


def castable(source, dtype: str) -> bool:
    """Whether ``cast(source, dtype)`` changes the source (a floating tensor of another dtype)."""
    return source.dtype in FLOAT_DTYPES and source.dtype != dtype


