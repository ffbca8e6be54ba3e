"""CSWin layouts as data: official classification (canonical) <-> official segmentation backbone,
and the containers official files come in. Pure functions on ``dict[str, Any]``: values are
passed through untouched (lazy tensors stay lazy); only tensors the target needs and the source
lacks are created (identity LayerNorms, a zero qkv bias), each with a note.

Segmentation backbone (segmentation/backbone/cswin_transformer.py @ f111ae2) versus classification:

* same names for stem, blocks and merges; no ``norm``/``head``; per-stage output norms
  ``norm1..norm4`` (top level, not the blocks' ``stageS.B.norm1``); ``qkv`` always has a bias;
  merge widths ``dim * heads[i+1] // heads[i]`` (classification: ``2 * dim``); no one-branch flip
  where a stage map equals its split (only the last stage has one branch);
* mmseg checkpoints hold it under ``backbone.`` next to ``decode_head.*`` / ``auxiliary_head.*``.

The official seg loader does not map ``norm`` to ``norm4``; here it is explicit and noted.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from swin_convert.errors import BadInputError, IncompatibleSpecError

from .shapes import STEM_CONV, canonical_shapes
from .spec import CSWinSpec

SEG_PREFIX = "backbone."
STAGE_NORMS = tuple(f"norm{s}" for s in range(1, 5))
_STAGE_NORM_RE = re.compile(r"^norm([1-4])\.(weight|bias)$")
_HEAD_RE = re.compile(r"^head\.(weight|bias)$")

# ---------------------------------------------------------------------------------------------
# name relation


def cls_to_seg_name(name: str) -> str | None:
    """Canonical (classification) name -> seg backbone name (no prefix); None: no home there."""
    if name.startswith("norm."):
        return "norm4." + name[len("norm."):]
    if _HEAD_RE.match(name):
        return None
    return name


def seg_to_cls_name(name: str) -> str | None:
    """Seg backbone name (no prefix) -> canonical name; None: no home in classification."""
    m = _STAGE_NORM_RE.match(name)
    if m:
        return f"norm.{m.group(2)}" if m.group(1) == "4" else None
    return name


def seg_shapes(spec: CSWinSpec) -> dict[str, tuple[int, ...]]:
    """The seg backbone's keys and shapes for ``spec`` (after :func:`check_seg_compatible`)."""
    check_seg_compatible(spec)
    out: dict[str, tuple[int, ...]] = {}
    for k, shape in canonical_shapes(spec).items():
        if k == f"{STEM_CONV}.weight":
            out[k] = shape
            continue
        seg = cls_to_seg_name(k)
        if seg is None or seg.startswith("norm4."):
            continue
        out[k] = shape
        if k.endswith(".qkv.weight"):
            out[k[:-len("weight")] + "bias"] = (shape[0],)
    # module order of the seg backbone: stem, norm1, stage1, merge1, norm2, stage2, merge2, norm3, ...
    ordered: dict[str, tuple[int, ...]] = {}
    keys = list(out)
    for k in keys:
        if k.startswith("stage1_conv_embed."):
            ordered[k] = out[k]
    ordered["norm1.weight"] = ordered["norm1.bias"] = (spec.dims[0],)
    for s in range(1, 5):
        if s > 1:
            for k in keys:
                if k.startswith(f"merge{s - 1}."):
                    ordered[k] = out[k]
            if s < 4:
                ordered[f"norm{s}.weight"] = ordered[f"norm{s}.bias"] = (spec.dims[s - 1],)
        for k in keys:
            if k.startswith(f"stage{s}."):
                ordered[k] = out[k]
    ordered["norm4.weight"] = ordered["norm4.bias"] = (spec.dims[3],)
    return ordered


def check_seg_compatible(spec: CSWinSpec) -> None:
    """Refuse a spec the official seg backbone cannot hold with the classification weights."""
    h = spec.num_heads
    if any(h[i + 1] != 2 * h[i] for i in range(len(h) - 1)):
        widths = [spec.embed_dim]
        for i in range(len(h) - 1):
            widths.append(widths[-1] * (h[i + 1] // h[i]))
        raise IncompatibleSpecError(
            f"The CSWin segmentation backbone derives its widths from the heads {list(h)}: {widths}, "
            f"but the classification weights have {list(spec.dims)}.",
            "Only models whose heads double at every stage (tiny/small/base) convert to the seg backbone.")
    one = [s + 1 for s in range(3) if spec.branches[s] == 1]
    if one:
        raise IncompatibleSpecError(
            f"Stage(s) {one} have one attention branch (split == map); the seg backbone always builds two there.",
            "Convert weights trained with a split smaller than the stage map.")


def _torch_maker(like=None) -> Callable:
    def make(kind: str, shape):
        import torch
        dtype = getattr(like, "dtype", None)
        dtype = dtype if isinstance(dtype, torch.dtype) else torch.float32
        return (torch.ones if kind == "ones" else torch.zeros)(tuple(shape), dtype=dtype)
    return make


def cls_to_seg(sd: Mapping[str, Any], spec: CSWinSpec, *, prefix: str = "", stage_norms: Mapping | None = None,
               make: Callable | None = None):
    """Canonical state dict -> seg backbone state dict; returns ``(seg_sd, notes)``.

    ``norm`` becomes ``norm4`` (the function is kept: seg features of stage 4 = classification's
    normalised tokens). ``head`` is dropped. ``norm1..3`` are taken from ``stage_norms`` (name ->
    value, e.g. from a previous seg file) else created as identity (ones / zeros). A missing
    ``qkv.bias`` (qkv_bias False) is created as zeros (same function). ``prefix`` e.g.
    ``"backbone."``. ``make(kind, shape)`` builds new tensors (default: torch, fp32).
    """
    check_seg_compatible(spec)
    make = make or _torch_maker(sd.get(f"{STEM_CONV}.weight"))
    stage_norms = dict(stage_norms or {})
    notes: list[str] = []
    out: dict[str, Any] = {}
    want = seg_shapes(spec)
    made_norms, made_bias = [], 0
    for seg in want:
        cls = seg_to_cls_name(seg)
        if cls is not None and cls in sd:
            out[prefix + seg] = sd[cls]
        elif cls is None:  # norm1..3
            if seg in stage_norms:
                out[prefix + seg] = stage_norms[seg]
            else:
                stage = int(seg[4]) - 1
                out[prefix + seg] = make("ones" if seg.endswith("weight") else "zeros", (spec.dims[stage],))
                made_norms.append(seg.split(".")[0])
        elif seg.endswith(".qkv.bias"):
            out[prefix + seg] = make("zeros", want[seg])
            made_bias += 1
        else:
            raise BadInputError(f"Canonical CSWin weights lack {cls}.", "Read the file with the cswin layout first.")
    notes.append("norm -> norm4 (the classification model's final norm is the seg backbone's stage-4 norm).")
    if "head.weight" in sd:
        notes.append("head dropped (the seg backbone has no classifier).")
    made = sorted(set(made_norms))
    if made:
        notes.append(f"{', '.join(made)} created as identity LayerNorms (the classification model has no "
                     "stage-output norms; a seg model fine-tunes them).")
    if made_bias:
        notes.append(f"{made_bias} qkv biases created as zeros (the seg backbone always has them; same function).")
    return out, notes


def detect_seg_prefix(names) -> str | None:
    """``"backbone."`` or ``""`` when ``names`` hold a CSWin seg backbone; None when they do not."""
    names = list(names)
    for prefix in (SEG_PREFIX, ""):
        if f"{prefix}{STEM_CONV}.weight" in names and f"{prefix}norm4.weight" in names:
            return prefix
    return None


def seg_to_cls(sd: Mapping[str, Any], *, prefix: str | None = None, shape_of: Callable | None = None):
    """Seg backbone state dict (optionally under ``backbone.`` with heads beside) -> canonical;
    returns ``(cls_sd, notes)``. ``norm4`` becomes ``norm``; ``norm1..3`` and everything outside
    the backbone (``decode_head.*``, ``auxiliary_head.*``) are dropped with a note. Refuses when a
    merge does not double the width (the classification model cannot hold it).
    ``shape_of(value)`` gives a value's shape (default: ``value.shape``).
    """
    shape_of = shape_of or (lambda v: tuple(v.shape))
    if prefix is None:
        prefix = detect_seg_prefix(sd.keys())
        if prefix is None:
            raise BadInputError("No CSWin segmentation backbone found (no stage1_conv_embed / norm4 keys).",
                                "Give a checkpoint of microsoft/CSWin-Transformer's segmentation backbone.")
    notes: list[str] = []
    out: dict[str, Any] = {}
    outside: dict[str, int] = {}
    dropped = []
    for k, v in sd.items():
        if not k.startswith(prefix):
            top = k.split(".")[0]
            outside[top] = outside.get(top, 0) + 1
            continue
        name = k[len(prefix):]
        cls = seg_to_cls_name(name)
        if cls is None:
            dropped.append(name.split(".")[0])
            continue
        out[cls] = v
    for s in range(1, 4):
        w = out.get(f"merge{s}.conv.weight")
        if w is not None:
            shp = shape_of(w)
            if shp[0] != 2 * shp[1]:
                raise IncompatibleSpecError(
                    f"merge{s} maps {shp[1]} to {shp[0]} channels; the classification model doubles them.",
                    "This seg backbone (heads that do not double) has no classification counterpart.")
    if outside:
        notes.append("dropped keys outside the backbone: " +
                     ", ".join(f"{t}.* ({n})" for t, n in sorted(outside.items())) + ".")
    if dropped:
        notes.append(f"{', '.join(sorted(set(dropped)))} dropped (stage-output norms have no home in the "
                     "classification model).")
    notes.append("norm4 -> norm; no head (num_classes 0).")
    return out, notes


# ---------------------------------------------------------------------------------------------
# containers

CONTAINER_KEYS = ("state_dict_ema", "state_dict", "model")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) for k in obj) and \
        not any(isinstance(v, Mapping) for v in obj.values())


def strip_module_prefix(sd: Mapping[str, Any]):
    """Remove a DataParallel/DDP ``module.`` prefix carried by every key; ``(sd, notes)``."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}, ["stripped the 'module.' prefix of every key."]
    return dict(sd), []


def unwrap_container(obj: Any, *, prefer: str = "ema"):
    """The state dict inside an official CSWin file; returns ``(sd, source, notes)``.

    Accepts ``{'state_dict_ema': ...}`` (release files), the training saver's dict with both
    ``state_dict`` and ``state_dict_ema`` (choose with ``prefer``: ``"ema"`` default - the weights
    the official evaluation reports - or ``"plain"``), ``{'state_dict': ...}`` (also mmseg files),
    ``{'model': ...}`` and a bare state dict. ``module.`` prefixes are stripped. ``source`` names
    the entry used (``""`` for a bare dict).
    """
    if prefer not in ("ema", "plain"):
        raise ValueError(f"prefer must be 'ema' or 'plain', not {prefer!r}")
    if not isinstance(obj, Mapping):
        raise BadInputError(f"The checkpoint holds a {type(obj).__name__}, not a dict of weights.",
                            "Give a CSWin .pth/.safetensors file saved as a state dict.")
    notes: list[str] = []
    present = [k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)]
    if "state_dict_ema" in present and "state_dict" in present and _same_weights(obj["state_dict"],
                                                                                 obj["state_dict_ema"]):
        source = "state_dict_ema"  # one set of weights under both names (what wrap_official writes)
    elif "state_dict_ema" in present and "state_dict" in present:
        source = "state_dict_ema" if prefer == "ema" else "state_dict"
        other = "state_dict" if source == "state_dict_ema" else "state_dict_ema"
        notes.append(f"the file holds both 'state_dict' and 'state_dict_ema'; using '{source}' "
                     f"({'EMA weights, what the official evaluation reports' if prefer == 'ema' else 'as asked'}); "
                     f"the other one ('{other}') is not converted.")
    elif present:
        source = present[0]
        if prefer == "plain" and source == "state_dict_ema":
            notes.append("the file holds only 'state_dict_ema'; using it (no plain weights present).")
    elif _is_state_dict(obj):
        source = ""
    else:
        keys = ", ".join(sorted(str(k) for k in obj)[:8])
        raise BadInputError(f"No state dict found in the checkpoint (top-level keys: {keys}).",
                            "Expected 'state_dict_ema', 'state_dict', 'model' or a bare state dict.")
    sd = obj[source] if source else obj
    if not _is_state_dict(sd):
        raise BadInputError(f"The checkpoint's '{source}' entry is not a flat dict of tensors.",
                            "Give a CSWin checkpoint saved by the official code or swin-convert.")
    sd, more = strip_module_prefix(sd)
    return sd, source, notes + more


def _same_weights(a: Mapping, b: Mapping) -> bool:
    if a is b:
        return True
    if list(a) != list(b):
        return False
    return all(a[k] is b[k] for k in a)


def wrap_official(sd: Mapping[str, Any]) -> dict:
    """The container to write an official classification .pth: one state dict under both
    ``state_dict`` and ``state_dict_ema`` (the same object, so torch.save stores it once).

    finetune.py reads ``state_dict`` without ``--ema-finetune`` and silently loads nothing from a
    file holding only ``state_dict_ema``; mmcv_custom (seg) prefers ``state_dict``; release-style
    loaders read ``state_dict_ema``. With both, every official loader finds the weights.
    """
    sd = dict(sd)
    return {"state_dict": sd, "state_dict_ema": sd}


def detect_layout(names) -> str | None:
    """``"cswin"`` (classification), ``"cswin-seg"`` (backbone, any prefix) or None."""
    names = set(names)
    if detect_seg_prefix(names) is not None:
        return "cswin-seg"
    if f"{STEM_CONV}.weight" in names and "stage1.0.attns.0.get_v.weight" in names:
        return "cswin"
    return None
