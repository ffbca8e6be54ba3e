"""Open a checkpoint (file or folder), unwrap it, and turn it into the canonical form."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .canonical import CanonicalCheckpoint, Hints, infer_spec, order_like_spec, validate_tensors
from .errors import BadInputError, LayoutError
from .keymap import to_canonical
from .layouts import Layout, detect_layout, get_layout
from .spec import Assumptions, SwinSpec
from .tensors import FileSlice, TorchSource, read_safetensors_header

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


def open_raw(path: str | Path) -> RawCheckpoint:
    path = Path(path)
    wfile = weights_file(path)
    config = _read_config(wfile.parent / "config.json")
    if is_safetensors(wfile):
        metadata, tensors = read_safetensors_header(wfile)
        return RawCheckpoint(wfile, "safetensors", tensors, metadata, config)
    raw = RawCheckpoint(wfile, "pth", {}, {}, config)
    state = _unwrap(_load_pth(wfile), raw.notes)
    raw.tensors = {k: v for k, v in state.items() if isinstance(v, (FileSlice, TorchSource))}
    if not raw.tensors:
        raise BadInputError(f"'{wfile}' holds no tensors.", "Is this a model checkpoint?")
    return raw


def _load_pth(path: Path):
    """Tensors as file ranges when the zip format allows (no torch); else torch.load(weights_only)."""
    from .pth_reader import Unsupported, read_pth
    try:
        return read_pth(str(path))
    except Unsupported:
        from .torch_io import load_pth, as_sources
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


def _unwrap(obj, notes: list) -> dict:
    """Take the state dict out of {'model': ...} / {'state_dict': ...} and drop a 'module.' prefix."""
    if not isinstance(obj, dict):
        raise BadInputError(f"The checkpoint holds a {type(obj).__name__}, not a state dict.",
                            "Save the model's state_dict() rather than the model object.")
    for key in ("model", "state_dict", "model_state_dict", "module"):
        if isinstance(obj.get(key), dict):
            notes.append(f"unwrapped ['{key}']")
            obj = obj[key]
            break
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        notes.append("stripped 'module.' prefix")
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------------------
# configs -> geometry hints
# ----------------------------------------------------------------------------------------
def hints_from(raw: RawCheckpoint) -> Hints:
    """Geometry recorded beside the weights: our own metadata, a transformers or a timm config."""
    if META_SPEC in raw.metadata:
        spec = SwinSpec.from_json(raw.metadata[META_SPEC])
        return Hints(spec.img_size, spec.window_size, spec.pretrained_window_sizes or None,
                     source={"window_size": "swin_convert metadata"})
    cfg = raw.config or {}
    if cfg.get("model_type") in ("swin", "swinv2"):
        return Hints(_int(cfg.get("image_size")), _tuple(cfg.get("window_size")),
                     _tuple(cfg.get("pretrained_window_sizes")), source={"window_size": "config.json"})
    if "architecture" in cfg:
        return _timm_hints(cfg)
    return Hints()


def _timm_hints(cfg: dict) -> Hints:
    args = cfg.get("model_args") or {}
    pre = cfg.get("pretrained_cfg") or {}
    img = _int(args.get("img_size")) or _int((pre.get("input_size") or [None, None])[-1])
    window = _tuple(args.get("window_size"))
    pretrained = _tuple(args.get("pretrained_window_sizes"))
    source = "config.json model_args"
    m = re.search(r"window(\d+)(?:to(\d+))?_(\d+)(?:to(\d+))?", cfg.get("architecture", ""))
    if window is None and m:   # timm's registered names spell the window out: ..._window12to24_192to384
        window, source = (int(m.group(2) or m.group(1)),), f"timm architecture name '{cfg['architecture']}'"
        if pretrained is None and m.group(2):
            pretrained = (int(m.group(1)),)
        img = img or int(m.group(4) or m.group(3))
    return Hints(img, window, pretrained, source={"window_size": source})


def _int(v) -> int | None:
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else None
    return int(v) if isinstance(v, (int, float)) else None


def _tuple(v) -> tuple | None:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return (int(v),)
    out = []
    for x in v:
        out.append(int(x[0]) if isinstance(x, (list, tuple)) else int(x))
    return tuple(out)


# ----------------------------------------------------------------------------------------
# the canonical form
# ----------------------------------------------------------------------------------------
def load_canonical(path: str | Path, layout: str = "auto", flags: Hints | None = None,
                   display: str | None = None) -> CanonicalCheckpoint:
    """Read ``path`` (any supported layout) into a validated CanonicalCheckpoint."""
    raw = open_raw(path)
    return canonical_from_raw(raw, layout, flags or Hints(), display or str(path))


def canonical_from_raw(raw: RawCheckpoint, layout: str, flags: Hints, display: str) -> CanonicalCheckpoint:
    detected, version = detect_layout(raw.tensors)
    chosen = detected if layout == "auto" else get_layout(layout)
    if chosen is not detected and layout != "auto":
        _check_claimed(chosen, detected, raw)
    notes = Assumptions()
    parsed = to_canonical(chosen, version, raw.tensors)
    _widen_window_hint(flags, len({k.split('.')[1] for k in parsed.tensors if k.startswith("layers.")}))
    config = hints_from(raw)
    _widen_window_hint(config, len({k.split('.')[1] for k in parsed.tensors if k.startswith("layers.")}))
    spec = infer_spec(version, parsed, flags, config, notes)
    validate_tensors(spec, parsed, chosen.name)
    return CanonicalCheckpoint(spec, order_like_spec(spec, parsed.tensors), display, chosen.name, notes,
                               raw.metadata, raw.config, notes=list(raw.notes), input_paths=[raw.path])


def _widen_window_hint(h: Hints, stages: int) -> None:
    if h.window_size is not None and len(h.window_size) == 1 and stages > 1:
        h.window_size = h.window_size * stages
    if h.pretrained_window_sizes is not None and len(h.pretrained_window_sizes) == 1 and stages > 1:
        h.pretrained_window_sizes = h.pretrained_window_sizes * stages


def _check_claimed(chosen: Layout, detected: Layout, raw: RawCheckpoint) -> None:
    """FROM given explicitly but the keys say otherwise: say so before anything else fails."""
    if {chosen.name, detected.name} <= {"official", "timm"} and not any(".downsample." in k for k in raw.tensors):
        return  # one-stage models name every key alike in both
    raise LayoutError(f"'{raw.path.name}' looks like a {detected.name} checkpoint, not {chosen.name}.",
                      f"Use FROM={detected.name} or auto.")


def relative_to_cwd(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)
