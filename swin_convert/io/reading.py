"""Open a checkpoint (file or folder) and unwrap it: the tensors as stored, plus what was beside
them (safetensors metadata, config.json). Knows no family: ``families.read_checkpoint`` turns
the result into the canonical form."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.tensors import FileSlice, TorchSource, read_safetensors_header
from ..errors import BadInputError
from .shards import is_index, read_index, read_sharded, shard_names

# transformers' order: one file before an index of shards, safetensors before pickles
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "model.pth", "model.pt")
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
    shards: list = field(default_factory=list)   # the files a shard index (``path``) names


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
    shards = [p for p in found if re.search(r"-\d{5}-of-(?!00001)\d{5}$", p.stem)]
    if shards and len(shards) == len(found):
        raise BadInputError(f"'{path}' holds {len(found)} shard files but no shard index "
                            "(model.safetensors.index.json).", "Put the index that came with the shards beside them.")
    if len(found) == 1:
        return found[0]
    raise BadInputError(f"'{path}' holds {len(found)} weight files, not exactly one.",
                        "Pass the file itself, or a folder with model.safetensors, pytorch_model.bin or a shard index.", path=path)


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
    if is_index(wfile):
        return _open_sharded(wfile, config)
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


def _open_sharded(index: Path, config: dict | None) -> RawCheckpoint:
    """A folder of shards and their index; every shard read as strictly as a single file."""
    if index.name.endswith(".safetensors.index.json"):
        fmt, reader = "safetensors", read_safetensors_header
    else:
        fmt, reader = "pth", _read_bin_shard
    metadata, tensors, paths = read_sharded(index, reader)
    raw = RawCheckpoint(index, fmt, tensors, metadata, config, shards=paths)
    raw.notes.append(f"read {len(paths)} shards listed in {index.name}")
    return raw


def _read_bin_shard(path: Path) -> tuple[dict, dict]:
    """One ``pytorch_model-0000k-of-0000n.bin``: a bare state dict of tensors."""
    if is_safetensors(path):
        raise BadInputError(f"'{path}' is a safetensors file, but its index is a pytorch_model.bin one.",
                            "Check the folder; a safetensors index is named model.safetensors.index.json.")
    obj = _load_pth(path)
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, (FileSlice, TorchSource))
                                            for k, v in obj.items()):
        raise BadInputError(f"'{path}' is not a shard: a shard holds a flat state dict of tensors.",
                            "Check the file; transformers writes each .bin shard as a bare state dict.")
    return {}, obj


def stored_format(path: Path) -> tuple[str, int]:
    """("safetensors" | "pth", bytes on disk) of a weights file or of a shard index's shards."""
    if is_index(path):
        names = shard_names(read_index(path))
        fmt = "safetensors" if path.name.endswith(".safetensors.index.json") else "pth"
        return fmt, sum((path.parent / n).stat().st_size for n in names)
    return ("safetensors" if is_safetensors(path) else "pth"), path.stat().st_size


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
