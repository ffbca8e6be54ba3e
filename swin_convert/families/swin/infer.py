"""Swin spec inference (shapes, persisted buffers, flags, configs, assumptions) and validation
of a parsed checkpoint."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ...core.checkpoint import Assumptions
from ...core.keymap import Parsed
from ...core.tensors import DataUnavailable, to_numpy
from ...errors import BadInputError, LayoutError
from . import geometry
from .geometry import clamp_windows, expected_buffer_shape, pretrained_per_stage
from .shapes import canonical_shapes
from .spec import SwinSpec


# ----------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------
RECORDED = ("--pretrained-window", "config.json", "config.json model_args", "swin_convert metadata")


@dataclass
class Hints:
    """Geometry facts from outside the weights: flags first, then config.json / metadata."""

    img_size: int | None = None
    window_size: tuple | None = None                 # per stage (configured, clamped later)
    pretrained_window_sizes: tuple | None = None     # per stage, or one value (clamped per stage later)
    pretrained_img_size: int | None = None           # where one pretrained window was used (a timm name's R0)
    mlp_ratio: float | None = None
    source: dict = field(default_factory=dict)       # field -> where it came from


def infer_spec(version: int, parsed: Parsed, flags: Hints, config: Hints, notes: Assumptions) -> SwinSpec:
    """Build the spec from shapes; fill geometry from buffers, then flags, then config, else assume."""
    t = parsed.tensors
    shape = lambda k: tuple(t[k].shape) if k in t else None  # noqa: E731
    proj = shape("patch_embed.proj.weight")
    if proj is None or len(proj) != 4:
        raise LayoutError("The checkpoint has no patch embedding (patch_embed.proj.weight or its equivalent).",
                          "Is this a Swin classification checkpoint? Pass FROM explicitly if detection was wrong.")
    depths = _depths(t)
    heads = tuple(_heads(version, t, s) for s in range(len(depths)))
    e = proj[0]
    hid = shape("layers.0.blocks.0.mlp.fc1.weight")
    mlp_ratio = hid[0] / e if hid else 4.0
    table_windows = _table_windows(version, t, parsed.buffers, len(depths))
    img, windows = _geometry(version, t, parsed, table_windows, flags, config, proj[2], len(depths), notes)
    head = shape("head.weight")
    spec = SwinSpec(
        version=version, embed_dim=e, depths=depths, num_heads=heads, window_size=windows, img_size=img,
        patch_size=proj[2], in_chans=proj[1], mlp_ratio=mlp_ratio,
        qkv_bias=("layers.0.blocks.0.attn.qkv.bias" in t) if version == 1 else ("layers.0.blocks.0.attn.q_bias" in t),
        ape="absolute_pos_embed" in t, patch_norm="patch_embed.norm.weight" in t,
        num_classes=head[0] if head else 0,
        pretrained_window_sizes=_pretrained(version, parsed, windows, img, proj[2], flags, config, notes),
        cpb_baked=version == 2 and "layers.0.blocks.0.attn.relative_position_bias_table" in t,
    )
    return spec.validate()


def _depths(t) -> tuple[int, ...]:
    blocks: dict[int, int] = {}
    for k in t:
        parts = k.split(".")
        if parts[0] == "layers" and len(parts) > 3 and parts[2] == "blocks":
            if not (parts[1].isdecimal() and parts[3].isdecimal() and len(parts[1]) <= 3 and len(parts[3]) <= 4):
                raise LayoutError(f"'{k[:100]}' does not name a stage and block by number.",
                                  "Check that FROM matches the file's layout.")
            s, b = int(parts[1]), int(parts[3])
            blocks[s] = max(blocks.get(s, 0), b + 1)
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise LayoutError("The checkpoint's stages are not numbered 0..S-1 or hold no blocks.",
                          "Check that FROM matches the file's layout.")
    return tuple(blocks[s] for s in range(len(blocks)))


def _heads(version, t, s) -> int:
    key = f"layers.{s}.blocks.0.attn." + ("relative_position_bias_table" if version == 1 else "logit_scale")
    if key not in t:
        raise LayoutError(f"Stage {s} has no {key.rsplit('.', 1)[1]} (needed to count its heads).",
                          "The checkpoint is incomplete or FROM does not match its layout.")
    return t[key].shape[1] if version == 1 else t[key].shape[0]


def _table_windows(version, t, buffers, stages) -> list:
    """Per-stage windows the weights or persisted buffers fix (None where nothing does)."""
    out = []
    for s in range(stages):
        w = None
        table_key = f"layers.{s}.blocks.0.attn.relative_position_bias_table"
        if table_key in t:   # V1, or V2 with a baked CPB
            rows = t[table_key].shape[0]
            w = geometry.windows_from_table_rows(rows)
            if w is None:
                raise LayoutError(f"Stage {s} bias table has {rows} rows, not (2W-1)^2 for any window W.",
                                  "The checkpoint may be corrupt or use non-square windows, which are not supported.")
        else:
            idx = buffers.get(("relative_position_index", s, 0))
            table = buffers.get(("relative_coords_table", s, 0))
            if table is not None:
                w = (table.shape[1] + 1) // 2
            elif idx is not None:  # (N, N), or flattened (N*N,)
                n = idx.shape[0] if len(idx.shape) == 2 else math.isqrt(idx.shape[0])
                w = math.isqrt(n)
        out.append(w)
    return out


def _geometry(version, t, parsed, table_windows, flags, config, patch, stages, notes):
    """(img_size, per-stage clamped windows)."""
    img = _img_size(t, parsed.buffers, table_windows, flags, config, patch, stages)
    if any(w is None for w in table_windows):            # V2 without persisted buffers
        configured = flags.window_size or config.window_size
        if configured is None:
            configured = (8,) * stages
            notes.add("window size: not in the checkpoint or a config; assumed 8 (pass --window)")
        elif flags.window_size is None and config.source.get("window_size") not in RECORDED:
            # a recorded config is a fact; a window from a model name or timm's table is worth showing
            notes.add(f"window size {list(configured)}: from {config.source['window_size']}")
        table_windows = [w if w is not None else c for w, c in zip(table_windows, configured)]
    if img is None:
        img = geometry.assumed_img_size(table_windows, patch)
        notes.add(f"image size: not in the checkpoint or a config; assumed {img} "
                  "(last stage map = its window; pass --img-size)")
    res = [img // patch // 2 ** i for i in range(stages)]
    return img, clamp_windows(res, table_windows)


def _img_size(t, buffers, windows, flags, config, patch, stages) -> int | None:
    if flags.img_size:
        return flags.img_size
    for s in range(stages):
        mask = buffers.get(("attn_mask", s, 1))
        if mask is not None and windows[s]:
            return int(round(math.sqrt(mask.shape[0]))) * windows[s] * patch * 2 ** s
    if "absolute_pos_embed" in t:
        return int(round(math.sqrt(t["absolute_pos_embed"].shape[1]))) * patch
    return config.img_size


def _pretrained(version, parsed, windows, img, patch, flags, config, notes) -> tuple:
    if version == 1:
        return ()
    if flags.pretrained_window_sizes is not None:
        return _spread(flags, windows, img, patch, "--pretrained-window", "--pretrained-window", notes)
    found = []
    for s, w in enumerate(windows):
        table = parsed.buffers.get(("relative_coords_table", s, 0))
        try:
            found.append(None if table is None or (table.shape[1] + 1) // 2 != w
                         else geometry.infer_pretrained_window(to_numpy(table), w))
        except DataUnavailable:   # header-only read: the table's values are not here
            found.append(None)
    if all(f is not None for f in found):
        return tuple(found)
    if config.pretrained_window_sizes is not None:
        where = config.source.get("pretrained_window_sizes", "config.json")
        return _spread(config, windows, img, patch, "pretrained_window_sizes", where, notes)
    notes.add("pretrained windows: none recorded; assumed 0 (coordinates normalised by each stage's own window)")
    return (0,) * len(windows)


def _spread(h: Hints, windows, img, patch, flag: str, where: str, notes: Assumptions) -> tuple:
    """Per-stage pretrained windows of a hint; says where they came from unless the user gave them per stage."""
    values, how = pretrained_per_stage(h.pretrained_window_sizes, img_size=img, patch_size=patch, windows=windows,
                                       pretrain_img=h.pretrained_img_size, flag=flag)
    if how is not None:
        notes.add(f"pretrained windows {list(values)}: one window {h.pretrained_window_sizes[0]} from {where}, "
                  f"clamped per stage {how}")
    elif where not in RECORDED:   # a table or a name, not written beside these weights: worth showing
        notes.add(f"pretrained windows {list(values)}: from {where}")
    return values




# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------
def validate_tensors(spec: SwinSpec, parsed: Parsed, layout_name: str) -> None:
    """Every expected tensor present with its shape, nothing left over; buffers consistent."""
    want = canonical_shapes(spec)
    got = parsed.tensors
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want] + parsed.unexpected
    shaped = [(k, tuple(want[k]), tuple(got[k].shape)) for k in want if k in got and tuple(got[k].shape) != want[k]]
    wrong = [f"{k} {have} != {exp}" for k, exp, have in shaped]
    for what, items in (("missing", missing), ("unexpected", extra), ("wrongly shaped", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            raise LayoutError(f"{len(items)} {what} tensor(s) for a {layout_name} Swin V{spec.version} "
                              f"checkpoint: {', '.join(items[:3])}{more}.",
                              "Check FROM (or use auto), or pass --img-size/--window if the geometry was guessed.",
                              missing=missing, unexpected=extra, mismatched=shaped, layout=layout_name)
    for (kind, s, _), src in parsed.buffers.items():
        if s < 0 or s >= spec.num_stages:
            raise LayoutError(f"A persisted {kind} names stage {s}, which the model does not have.")
        exp = expected_buffer_shape(kind, spec, s)
        shape = tuple(src.shape)
        if shape != exp and not (kind == "relative_position_index" and shape == (exp[0] * exp[1],)):
            raise LayoutError(f"Persisted {kind} of stage {s} has shape {shape}, expected {exp} for "
                              f"window {spec.window_size[s]} at {spec.img_size} px.",
                              "Pass the right --img-size/--window, or check the file.")


# ----------------------------------------------------------------------------------------
# hints from outside the weights
# ----------------------------------------------------------------------------------------
META_SPEC = "swin_convert.spec"


def flag_hints(flags: dict) -> Hints:
    """The user's flags (img_size, window, pretrained_window) as hints."""
    from ...core.values import parse_ints, square_size
    return Hints(img_size=square_size(flags.get("img_size"), "--img-size", "Swin"), window_size=parse_ints(flags.get("window"), "--window"),
                 pretrained_window_sizes=parse_ints(flags.get("pretrained_window"), "--pretrained-window"))


def recorded_hints(metadata: dict, config: dict | None, layouts, path=None) -> Hints:
    """Geometry recorded beside the weights: our own metadata, else a layout's config.json."""
    if META_SPEC in metadata:
        spec = _metadata_spec(metadata[META_SPEC], path)
        return Hints(spec.img_size, spec.window_size, spec.pretrained_window_sizes or None,
                     source={"window_size": "swin_convert metadata", "pretrained_window_sizes": "swin_convert metadata"})
    try:
        for layout in layouts:
            found = layout.read_hints(config or {}) if layout.read_hints else None
            if found is not None:
                return found
    except (TypeError, ValueError, OverflowError, AttributeError) as e:
        where = path.parent / "config.json" if path is not None else "config.json"
        raise BadInputError(f"'{where}' records geometry that is not a number or list of numbers "
                            f"({type(e).__name__}: {str(e)[:80]}).",
                            "Fix or remove the config.json beside the weights, or pass --img-size/--src-window.",
                            path=where) from None
    return Hints()


def _metadata_spec(text, path) -> SwinSpec:
    """Our own spec record; a damaged one is a bad file, not a crash."""
    bad = BadInputError(f"'{path}' has a '{META_SPEC}' metadata entry that is not a valid spec.",
                        "The file was edited or damaged; re-convert it from its source.", path=path)
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        raise bad from None
    if not isinstance(d, dict):
        raise bad
    ints = ("version", "embed_dim", "img_size", "patch_size", "in_chans", "num_classes")
    seqs = ("depths", "num_heads", "window_size", "pretrained_window_sizes")
    if (not all(_is_int(d[k]) for k in ints if k in d)
            or not all(isinstance(d[k], list) and all(_is_int(v) for v in d[k]) for k in seqs if k in d)
            or not all(k in d for k in ("version", "embed_dim", "depths", "num_heads", "window_size", "img_size"))
            or ("mlp_ratio" in d and not isinstance(d["mlp_ratio"], (int, float)))):
        raise bad
    try:
        return SwinSpec.from_dict(d)
    except (TypeError, ValueError):
        raise bad from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def widen(h: Hints, stages: int) -> None:
    """One configured window for every stage (each is clamped at its map later). A single
    pretrained window is left as it is: it is clamped at the pretraining maps (_spread)."""
    if h.window_size is not None and len(h.window_size) == 1 and stages > 1:
        h.window_size = h.window_size * stages


def config_int(v) -> int | None:
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v)


def config_ints(v) -> tuple | None:
    """A window entry: 7, [7, 7, 7, 7] or [[7, 7], ...]; anything else raises ValueError."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (int(v),)
    if not isinstance(v, (list, tuple)) or not v or len(v) > 64:
        raise ValueError(f"window entry {str(v)[:40]!r}")
    out = []
    for x in v:
        x = x[0] if isinstance(x, (list, tuple)) and x else x
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"window entry {str(v)[:40]!r}")
        out.append(int(x))
    return tuple(out)
