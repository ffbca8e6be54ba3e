"""Open a checkpoint (file or folder) and unwrap it: the tensors as stored, plus what was beside
them (safetensors metadata, config.json). Knows no family: ``families.read_checkpoint`` turns
the result into the canonical form."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.tensors import FileSlice, TorchSource, read_safetensors_header
from ..errors import BadInputError

WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin", "model.pth", "model.pt")
META_SPEC = "swin_convert.spec"


@dataclass
class RawCheckpoint:
    """Tensors of a file as stored (after unwrapping), plus what was beside them."""

    path: Path
    format: str                                  # "safetensors" | "pth"
    tensors: dict                                # key -> source
    metadata: dict = field(default_factory=dict)
    config: dict | None = None
    notes: list = field(default_factory=list)


def weights_file(path: Path) -> Path:
    """The weights file of ``path`` (itself, or the one file a folder holds)."""
    if not path.exists():
        raise BadInputError(f"'{path}' does not exist.", "Check the path, or give a Hub repo id (org/name).")
    if path.is_file():
        return path
    for name in WEIGHT_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".pth", ".pt", ".bin"))
    if len(found) == 1:
        return found[0]
    raise BadInputError(f"'{path}' holds {len(found)} weight files, not exactly one.",
                        "Pass the file itself, or a folder with model.safetensors or pytorch_model.bin.")


def open_raw(path: str | Path, *, ema: bool | None = None) -> RawCheckpoint:
    """``ema``: which weights of a file holding both ``state_dict`` and ``state_dict_ema``
    (None or True: the EMA ones, False: the plain ones); the choice is noted."""
    path = Path(path)
    wfile = weights_file(path)
    config = _read_config(wfile.parent / "config.json")
    if is_safetensors(wfile):
        metadata, tensors = read_safetensors_header(wfile)
        return RawCheckpoint(wfile, "safetensors", tensors, metadata, config)
    raw = RawCheckpoint(wfile, "pth", {}, {}, config)
    state = _unwrap(_load_pth(wfile), raw.notes, ema)
    raw.tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, (FileSlice, TorchSource))}
    if not raw.tensors:
        raise BadInputError(f"'{wfile}' holds no tensors.", "Is this a model checkpoint?")
    return raw


def _load_pth(path: Path):
    """Tensors as file ranges when the zip format allows (no torch); else torch.load(weights_only)."""
    from .pth import Unsupported, read_pth
    try:
        return read_pth(str(path))
    except Unsupported:
        from ..core.torch_io import load_pth, as_sources
        return as_sources(load_pth(path))


def is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _read_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BadInputError(f"'{path}' is not valid JSON.", "Fix or remove the config.json beside the weights.") from None
    return cfg if isinstance(cfg, dict) else None


def _unwrap(obj, notes: list, ema: bool | None = None) -> dict:
    """Take the state dict out of {'model': ...} / {'state_dict': ...} / {'state_dict_ema': ...}
    and drop a 'module.' prefix. With both 'state_dict' and 'state_dict_ema' (timm-style training
    savers, CSWin), ``ema`` chooses (default: EMA)."""
    if not isinstance(obj, dict):
        raise BadInputError(f"The checkpoint holds a {type(obj).__name__}, not a state dict.",
                            "Save the model's state_dict() rather than the model object.")
    if isinstance(obj.get("state_dict_ema"), dict):
        plain = isinstance(obj.get("state_dict"), dict)
        if plain and ema is False:
            notes.append("the file holds plain ('state_dict') and EMA ('state_dict_ema') weights; "
                         "using the plain ones (--no-ema)")
            obj = obj["state_dict"]
        else:
            notes.append("the file holds plain ('state_dict') and EMA ('state_dict_ema') weights; using the EMA "
                         "ones (default; --no-ema for the plain ones)" if plain else
                         "unwrapped ['state_dict_ema'] (EMA weights; the file holds no plain ones)")
            obj = obj["state_dict_ema"]
        return _strip_module(obj, notes)
    for key in ("model", "state_dict", "model_state_dict", "module"):
        if isinstance(obj.get(key), dict):
            notes.append(f"unwrapped ['{key}']")
            obj = obj[key]
            break
    return _strip_module(obj, notes)


def _strip_module(obj: dict, notes: list) -> dict:
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        notes.append("stripped 'module.' prefix")
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def relative_to_cwd(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)
