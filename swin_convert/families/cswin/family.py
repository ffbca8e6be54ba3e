"""CSWin's hooks for the registry: read (containers are unwrapped by io.reading), write, the
reference forward, the resolution transfer (stripe widths, no tensor changes), what ``check
--against`` compares, the model card's facts and what ``inspect`` prints."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...core.checkpoint import Assumptions, CanonicalCheckpoint
from ...core.keymap import from_canonical, to_canonical
from ...core.tensors import ArraySource
from ...core.values import parse_ints, square_size
from ...errors import BadInputError, IncompatibleSpecError, LayoutError, UsageError
from . import geometry
from .convert import seg_shapes
from .shapes import canonical_shapes, infer_spec
from .spec import CSWinSpec

METADATA_KEY = "swin_convert.cswin_spec"
SEG_PREFIX = "backbone."
STAGE_NORMS = tuple(f"norm{s}.{w}" for s in (1, 2, 3) for w in ("weight", "bias"))

CITATION = """@misc{dong2021cswin,
  title={CSWin Transformer: A General Vision Transformer Backbone with Cross-Shaped Windows},
  author={Xiaoyi Dong and Jianmin Bao and Dongdong Chen and Weiming Zhang and Nenghai Yu and Lu Yuan and Dong Chen and Baining Guo},
  year={2021},
  eprint={2107.00652},
  archivePrefix={arXiv},
  primaryClass={cs.CV}
}"""


def detect_version(keys) -> int:
    return 1


# ----------------------------------------------------------------------------------------
# read
# ----------------------------------------------------------------------------------------
def _backbone(tensors: dict, notes: list) -> dict:
    """An mmseg checkpoint's ``backbone.*`` keys without the prefix; the rest dropped, noted."""
    if not any(k.startswith(SEG_PREFIX) for k in tensors):
        return dict(tensors)
    out, outside = {}, {}
    for k, v in tensors.items():
        if k.startswith(SEG_PREFIX):
            out[k[len(SEG_PREFIX):]] = v
        else:
            top = k.split(".")[0]
            outside[top] = outside.get(top, 0) + 1
    notes.append(f"took the '{SEG_PREFIX}' keys of an mmseg checkpoint" + (
        "; dropped " + ", ".join(f"{t}.* ({n} tensors)" for t, n in sorted(outside.items())) if outside else ""))
    return out


def _recorded(raw) -> tuple[CSWinSpec | None, str]:
    text = (raw.metadata or {}).get(METADATA_KEY)
    if text:
        return CSWinSpec.from_json(text), "the file's metadata"
    from .layouts import LAYOUTS
    for lay in LAYOUTS:
        spec = lay.read_hints(raw.config) if raw.config else None
        if spec is not None:
            return spec, "config.json"
    return None, ""


def _flag_hints(flags: dict) -> dict:
    hints = {}
    if flags.get("img_size") is not None:
        hints["img_size"] = square_size(flags["img_size"], "--img-size", "CSWin")
    if flags.get("split") is not None:
        hints["split_size"] = geometry.parse_split(flags["split"])
    if flags.get("heads") is None and flags.get("num_heads") is not None:
        flags = {**flags, "heads": flags["num_heads"]}
    if flags.get("heads") is not None:
        heads = parse_ints(flags["heads"], "--heads")
        if heads is None or len(heads) != geometry.NUM_STAGES:
            raise UsageError(f"--heads must be four integers (one per stage), got {flags['heads']!r}.",
                             "E.g. --heads 2,4,8,16.", option="--heads")
        hints["num_heads"] = tuple(heads)
    return hints


def read(raw, layout, version: int, flags: dict, notes: Assumptions):
    """(spec, canonical tensors in official order) of a raw CSWin checkpoint in ``layout``."""
    tensors = dict(raw.tensors)
    if layout.name == "seg":
        tensors = _backbone(tensors, raw.notes)
    parsed = to_canonical(layout, 1, tensors)
    if parsed.unexpected:
        raise LayoutError(f"{len(parsed.unexpected)} keys are not CSWin {layout.name} names "
                          f"(e.g. {parsed.unexpected[0]}).", "Pass FROM explicitly (official | seg) or auto.",
                          unexpected=parsed.unexpected, layout=layout.name)
    shapes = {k: tuple(v.shape) for k, v in parsed.tensors.items()}
    if layout.name == "seg":
        for s in range(1, 4):
            w = shapes.get(f"merge{s}.conv.weight")
            if w is not None and w[0] != 2 * w[1]:
                raise IncompatibleSpecError(
                    f"merge{s} of this seg backbone maps {w[1]} to {w[0]} channels; the CSWin classification "
                    f"model doubles them, so the canonical form cannot hold it.",
                    "Only seg backbones whose heads double at every stage (tiny/small/base) convert.")
    recorded, where = _recorded(raw)
    hints = {}
    if recorded is not None:
        hints = {"num_heads": recorded.num_heads, "img_size": recorded.img_size, "split_size": recorded.split_size}
    given = _flag_hints(flags)
    if "img_size" in given and recorded is not None and given["img_size"] != recorded.img_size:
        hints.pop("split_size")   # the recorded split belongs to the recorded size
    hints.update(given)
    spec, assumed = infer_spec(shapes, hints)
    for note in assumed:   # printed after "assumed": drop the word inside the note
        notes.add(note.replace(" assumed (", " (", 1).replace(" assumed from ", " from ", 1)
                  .replace(" assumed as ", " as ", 1))
    if recorded is not None and not given:
        raw.notes.append(f"geometry ({spec.img_size} px, split {list(spec.split_size)}) and heads read from {where}")
    return spec, {k: parsed.tensors[k] for k in canonical_shapes(spec)}


# ----------------------------------------------------------------------------------------
# write
# ----------------------------------------------------------------------------------------
def _np_dtype(tensors: dict):
    import numpy as np
    stem = tensors.get("stage1_conv_embed.0.weight")
    return {"F16": np.float16, "F64": np.float64}.get(getattr(stem, "dtype", "F32"), np.float32)


def to_layout(layout, spec: CSWinSpec, tensors: dict) -> dict:
    """Canonical tensors -> ``layout``'s keys; seg: head dropped, norm1..3 / qkv biases created where
    missing (identity / zeros); official: norm1..3 dropped (see :func:`write_notes`)."""
    if layout.name != "seg":
        return from_canonical(layout, 1, {k: v for k, v in tensors.items() if k not in STAGE_NORMS})
    import numpy as np
    dtype = _np_dtype(tensors)
    have = {k: v for k, v in tensors.items() if not k.startswith("head.")}
    for k in STAGE_NORMS:
        if k not in have:
            dim = spec.dims[int(k[4]) - 1]
            have[k] = ArraySource((np.ones if k.endswith("weight") else np.zeros)(dim, dtype=dtype))
    for k, shape in canonical_shapes(spec.replace(qkv_bias=True)).items():
        if k.endswith(".qkv.bias") and k not in have:
            have[k] = ArraySource(np.zeros(shape, dtype=dtype))
    out = from_canonical(layout, 1, have)
    order = list(seg_shapes(spec))
    return {k: out[k] for k in order}


def write_notes(layout, spec: CSWinSpec, tensors: dict) -> list[str]:
    notes = []
    has_norms = all(k in tensors for k in STAGE_NORMS)
    if layout.name == "seg":
        notes.append("norm -> norm4 (the classification model's final norm is the seg backbone's stage-4 norm)")
        if any(k.startswith("head.") for k in tensors):
            notes.append("head dropped (the seg backbone has no classifier)")
        if not has_norms:
            notes.append("norm1..norm3 created as identity LayerNorms (ones/zeros: the classification model has "
                         "no stage-output norms; a seg model fine-tunes them)")
        if not spec.qkv_bias:
            notes.append("qkv biases created as zeros (the seg backbone always has them; same function)")
    elif has_norms:
        notes.append("norm1..norm3 (the seg backbone's stage-output norms) dropped: the classification model "
                     "has none; norm4 -> norm")
    return notes


def reference(spec: CSWinSpec):
    from .reference import CSWinReference
    return CSWinReference(spec)


# ----------------------------------------------------------------------------------------
# transfer (upscale)
# ----------------------------------------------------------------------------------------
TRANSFER_OPTIONS = ("res", "split", "target_layout")


@dataclass
class TransferResult:
    checkpoint: CanonicalCheckpoint
    source_spec: CSWinSpec
    summary: list = field(default_factory=list)
    card_info: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    suggested_name: str = ""


def _refuse_swin_options(options: dict) -> None:
    unknown = sorted(k for k, v in options.items() if k not in TRANSFER_OPTIONS and v not in (None, False)
                     and not (k == "method" and v == "bicubic"))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"CSWin upscale takes no {flags} (CSWin has no windows, bias tables or head edits here).",
                         "CSWin's transfer options: --res N and --split a,b,c,d.")


def transfer(ckpt: CanonicalCheckpoint, options: dict) -> TransferResult:
    """Move a CSWin checkpoint to a new image size and/or stripe widths: no tensor changes."""
    _refuse_swin_options(options)
    src: CSWinSpec = ckpt.spec
    res = square_size(options.get("res"), "--res", "CSWin") or src.img_size
    geometry.check_img_size(res)
    summary = []
    if options.get("split") is not None:
        split, notes = geometry.check_split(res, options["split"], src.branches)
        how = "as given"
    else:
        split, notes = geometry.default_split(src.img_size, src.split_size, res, src.branches)
        split, more = geometry.check_split(res, split, src.branches)
        notes += more
        how = "default: each stage keeps its stripe/map ratio"
    new = src.with_geometry(res, split).validate()
    if new.branches != src.branches:   # check_split refuses this; belt and braces
        raise UsageError(f"Split {list(split)} at {res} px changes the branch count {list(src.branches)} -> "
                         f"{list(new.branches)}.", "Choose a split below each stage map.")
    moved = CanonicalCheckpoint(new, dict(ckpt.tensors), ckpt.source, ckpt.source_layout, ckpt.assumptions,
                                ckpt.metadata, None, ckpt.origin, list(ckpt.notes), list(ckpt.input_paths),
                                family="cswin")
    summary.append(f"split {list(src.split_size)} -> {list(split)} ({how})")
    summary.extend(notes)
    summary.append(f"no tensor changes: all {len(ckpt.tensors)} tensors copied byte for byte; the image size "
                   "and splits are recorded in the output (metadata, config.json, card)")
    summary.append("a new split is a different function by design: logits before and after are not comparable")
    card = {"img_size_before": src.img_size, "img_size_after": res, "windows_before": None, "windows_after": None,
            "split_before": list(src.split_size), "split_after": list(split)}
    meta = {"transfer": f"{src.img_size}px split {list(src.split_size)} -> {res}px split {list(split)}"}
    return TransferResult(moved, src, summary, card, meta, f"cswin-{res}")


# ----------------------------------------------------------------------------------------
# check --against
# ----------------------------------------------------------------------------------------
_ARCH_FIELDS = ("embed_dim", "depths", "num_heads", "mlp_ratio", "in_chans")


def _tensor_notes(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> list[str]:
    from ...core.torch_io import to_torch
    import torch
    shared = [k for k in cand.tensors if k in src.tensors]
    differ = [k for k in shared if not torch.equal(to_torch(cand.tensors[k]), to_torch(src.tensors[k]))]
    if differ:
        return [f"{len(differ)} of {len(shared)} shared tensors differ from the source (e.g. {differ[0]})"]
    return [f"all {len(shared)} shared tensors are bit-identical to the source's"]


def compare(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> tuple:
    for name in _ARCH_FIELDS:
        a, b = getattr(cand.spec, name), getattr(src.spec, name)
        if a != b:
            raise IncompatibleSpecError(
                f"The candidate and the source are different CSWin architectures ({name} {a} vs {b}).",
                "Pass the checkpoint the candidate was converted from as --against.")
    c, s = cand.spec, src.spec
    notes = _tensor_notes(cand, src)
    if (c.img_size, c.split_size) == (s.img_size, s.split_size):
        return src, True, (f"candidate vs the source (reference forward, fp32, CPU) at the same geometry "
                           f"({c.img_size} px, split {list(c.split_size)})"), notes
    return src, False, (f"geometry changed ({s.img_size} px split {list(s.split_size)} -> {c.img_size} px split "
                        f"{list(c.split_size)}): a new stripe width is a different function by design, so the "
                        f"logits cannot match: agreement only (not gated); the source ran at its own "
                        f"{s.img_size} px on resized inputs"), notes


# ----------------------------------------------------------------------------------------
# card, inspect
# ----------------------------------------------------------------------------------------
def card_facts(spec: CSWinSpec) -> dict:
    args = (f"img_size={spec.img_size}, split_size={list(spec.split_size)}, embed_dim={spec.embed_dim}, "
            f"depth={list(spec.depths)}, num_heads={list(spec.num_heads)}, num_classes={spec.num_classes}")
    return {"family_tag": "cswin", "family_line": f"CSWin geometry: {spec.img_size} px, split_size "
            f"{list(spec.split_size)}, attention branches {list(spec.branches)}",
            "family_title": "Converted CSWin Transformer checkpoint", "citation": CITATION,
            "bias_text": None,
            "details": [f"Official model: `CSWinTransformer({args})` (models/cswin.py); the image size and "
                        "split are construction arguments no official file records (config.json here has them)",
                        "Official `.pth` (`official` layout) is `{'state_dict_ema': state_dict}`: main.py "
                        "`--eval_checkpoint` reads it (`--model-ema` is on by default); finetune.py needs "
                        "`--ema-finetune` (without it, it finds no `state_dict` and silently loads nothing)",
                        "Segmentation (`seg` layout) `.pth` is `{'state_dict': backbone}`, loaded by the "
                        "backbone's `init_weights(pretrained=...)`"]}


def describe(spec: CSWinSpec, before: CSWinSpec | None = None) -> dict:
    columns = ("stage", "depth", "dim", "heads", "map", "split", "branches")
    rows = []
    for i in range(spec.num_stages):
        m, split = spec.stage_maps[i], str(spec.split_size[i])
        if before is not None and before.split_size[i] != spec.split_size[i]:
            split = f"{before.split_size[i]} -> {split}"
        if before is not None and before.stage_maps[i] != m:
            mtext = f"{before.stage_maps[i]} -> {m}x{m}"
        else:
            mtext = f"{m}x{m}"
        rows.append([str(i + 1), str(spec.depths[i]), str(spec.dims[i]), str(spec.num_heads[i]), mtext, split,
                     str(spec.branches[i])])
    return {"label": "CSWin", "detail": ", seg stage norms" if spec.stage_norms else "",
            "summary": (f"{spec.img_size}  embed {spec.embed_dim}  mlp_ratio {spec.mlp_ratio:g}  classes "
                        f"{spec.num_classes}  qkv_bias {spec.qkv_bias}"),
            "columns": columns, "rows": rows}
