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
        raise BadInputError(f"'{path}' does not exist.", "Check the path, or give a Hub repo id (org/name).", path=path)
    if path.is_file():
        return path
    for name in WEIGHT_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".pth", ".pt", ".bin"))
    if len(found) == 1:
        return found[0]
    raise BadInputError(f"'{path}' holds {len(found)} weight files, not exactly one.",
                        "Pass the file itself, or a folder with model.safetensors or pytorch_model.bin.", path=path)


def open_raw(path: str | Path, ema: bool | None = None) -> RawCheckpoint:
    """``ema``: which weights of a training file holding both plain and EMA ones (None: EMA, said in notes)."""
    path = Path(path)
    wfile = weights_file(path)
    try:
        return _open_raw(wfile, ema)
    except BadInputError as e:   # every reader's refusal names the file
        if e.path is None:
            e.path = wfile
        raise


def _open_raw(wfile: Path, ema: bool | None) -> RawCheckpoint:
    config = _read_config(wfile.parent / "config.json")
    if is_safetensors(wfile):
        metadata, tensors = read_safetensors_header(wfile)
        return RawCheckpoint(wfile, "safetensors", tensors, metadata, config)
    raw = RawCheckpoint(wfile, "pth", {}, {}, config)
    obj = _load_pth(wfile)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict):   # OpenMMLab's container; ours records the spec there
        raw.metadata.update({k: v for k, v in meta.items() if isinstance(v, str) and k.startswith("swin_convert.")})
    state = _unwrap(obj, raw.notes, ema)
    raw.tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, (FileSlice, TorchSource))}
    if not raw.tensors:
        raise BadInputError(f"'{wfile}' holds no tensors.", "Is this a model checkpoint?", path=wfile)
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
        raise BadInputError(f"'{path}' is not valid JSON.", "Fix or remove the config.json beside the weights.",
                            path=path) from None
    return cfg if isinstance(cfg, dict) else None


PLAIN_KEYS = ("model", "state_dict", "model_state_dict", "module")
EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema")


def _unwrap(obj, notes: list, ema: bool | None = None) -> dict:
    """Take the state dict out of a training file ({'model': ...}, {'state_dict': ...}, timm's
    {'state_dict_ema': ...}, {'model_ema': ...}) and drop a DDP 'module.' prefix.

    With both plain and EMA weights, ``ema`` chooses; None takes the EMA ones (timm's
    ``load_checkpoint`` default) and says so.
    """
    from ..errors import UsageError
    if not isinstance(obj, dict):
        raise BadInputError(f"The checkpoint holds a {type(obj).__name__}, not a state dict.",
                            "Save the model's state_dict() rather than the model object.")
    plain = next((k for k in PLAIN_KEYS if isinstance(obj.get(k), dict) and obj[k]), None)
    averaged = next((k for k in EMA_KEYS if isinstance(obj.get(k), dict) and obj[k]), None)
    if ema is True and averaged is None:
        raise UsageError("--ema: the file holds no EMA weights (no " + ", ".join(EMA_KEYS) + ").",
                         "Drop --ema." if plain else "Drop --ema; the file is a bare state dict.", option="--ema")
    if ema is False and plain is None and averaged is not None:
        raise UsageError(f"--no-ema: the file holds only EMA weights ['{averaged}'].", "Drop --no-ema.",
                         option="--no-ema")
    if plain and averaged:
        if ema is False:
            key = plain
            notes.append(f"took the plain weights ['{plain}'] (--no-ema); the file also holds EMA weights "
                         f"['{averaged}']")
        else:
            key = averaged
            how = "--ema" if ema else "default, as timm's load_checkpoint; --no-ema for the plain ones"
            notes.append(f"took the EMA weights ['{averaged}'] ({how}); the file also holds ['{plain}']")
    else:
        key = averaged or plain
        if key:
            notes.append(f"unwrapped ['{key}']")
    if key:
        obj = obj[key]
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        notes.append("stripped 'module.' prefix (DDP)")
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def relative_to_cwd(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)
