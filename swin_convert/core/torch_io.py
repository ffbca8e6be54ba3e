"""The torch side of tensor I/O: .pth loading (weights only), dtype names, materialising sources."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from ..errors import BadInputError
from .cast import CastSource
from .tensors import DTYPES, TORCH_DTYPE_NAMES, ArraySource, Deferred, TorchSource, tensor_bytes  # noqa: F401

_ST_TO_TORCH = {st: getattr(torch, name) for name, st in TORCH_DTYPE_NAMES.items() if hasattr(torch, name)}
_TORCH_TO_ST = {v: k for k, v in _ST_TO_TORCH.items()}


def torch_to_st_dtype(dtype: torch.dtype) -> str:
    return _TORCH_TO_ST[dtype]


def to_torch(source) -> torch.Tensor:
    """Materialise any tensor source as a CPU torch tensor."""
    if isinstance(source, Deferred):
        source = source.resolve()
    if isinstance(source, TorchSource):
        return source.tensor
    if isinstance(source, ArraySource):
        return torch.from_numpy(source.array.copy())
    if isinstance(source, CastSource):      # a .pth written cast: torch's own cast (the same bits)
        return to_torch(source.source).to(_ST_TO_TORCH[source.dtype])
    data = bytearray(source.tobytes())
    if not data:
        return torch.empty(source.shape, dtype=_ST_TO_TORCH[source.dtype])
    return torch.frombuffer(data, dtype=_ST_TO_TORCH[source.dtype]).reshape(source.shape)


def load_pth(path: str | Path) -> dict:
    """torch.load with weights_only=True (never runs pickled code), memory-mapped when possible."""
    path = str(path)
    is_zip = _is_zipfile(path)
    if not is_zip:
        _check_legacy_pickle(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" (it references {found.group(1)})" if found else ""
        raise BadInputError(f"'{path}' contains pickled objects that are not plain weights{what}; refusing to load it.",
                            "Only load checkpoints from sources you trust; re-save it as safetensors.") from None
    except MemoryError:
        raise BadInputError(f"'{path}' asks for more memory than this machine has while loading.",
                            "The file is corrupt or was crafted; download it again from a source you trust.") from None
    except Exception as e:  # whatever torch's reader raises on a damaged file (RuntimeError, KeyError...)
        raise BadInputError(f"'{path}' cannot be read as a PyTorch checkpoint ({type(e).__name__}: "
                            f"{_first_line(e)}).",
                            "The file may be truncated or not a checkpoint; download it again.") from None


def _is_zipfile(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return True    # zip-like but damaged: torch.load's reader says what is wrong


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:120] if text else "no detail"


def _check_legacy_pickle(path: str) -> None:
    with open(path, "rb") as f:
        head = f.read(2)
    if not head or head[0] != 0x80:
        raise BadInputError(f"'{path}' is neither a safetensors file nor a PyTorch checkpoint.",
                            "Pass a .safetensors, .pth/.pt/.bin file or a folder holding one.")


def as_sources(obj, _depth: int = 0):
    """``obj`` with every tensor wrapped as a TorchSource (dicts walked, other values kept)."""
    if isinstance(obj, torch.Tensor):
        return TorchSource(obj)
    if isinstance(obj, dict):
        if _depth > 64:
            raise BadInputError("The checkpoint nests dictionaries more than 64 deep; it is not a state dict.",
                                "The file is corrupt or was crafted; download it again from a source you trust.")
        return {k: as_sources(v, _depth + 1) for k, v in obj.items()}
    return obj


def supported_dtype(dtype: str) -> bool:
    return dtype in _ST_TO_TORCH and dtype in DTYPES
