"""The ViT family's hooks: read (key map + spec inference from shapes and hints), write (key map
+ a layout's extra tensors), transfer (upscale), compare (check --against).

Torch is imported only by ``transfer`` and by ``compare`` when it resamples (a remap never imports it).
"""
from __future__ import annotations

import dataclasses
import json

from ...core.checkpoint import Assumptions, CanonicalCheckpoint
from ...core.keymap import from_canonical, to_canonical
from ...errors import IncompatibleSpecError, LayoutError, UsageError
from .layouts import LAYOUTS
from .shapes import infer_spec
from .spec import ViTSpec, pair

META_KEY = "swin_convert.vit_spec"
# spec fields our own metadata records that the shapes cannot say
RECORDED = ("num_heads", "img_size", "global_pool", "no_embed_class", "layer_norm_eps", "provenance")
FLAGS = ("img_size", "num_heads")


# ----------------------------------------------------------------------------------------
# read
# ----------------------------------------------------------------------------------------
def detect_version(keys) -> int:
    """The key-map variant: 2 = transformers' distilled DeiT (``deit.`` prefix), else 1."""
    return 2 if any(k.endswith("embeddings.distillation_token") for k in keys) else 1


def config_hints(config) -> tuple[dict, str] | tuple[None, None]:
    """(hints, which config) from a config.json beside the weights, whichever layout wrote it."""
    if not isinstance(config, dict):
        return None, None
    for name, mod in LAYOUTS.items():
        hook = getattr(mod, "config_hints", None)
        hints = hook(config) if hook else None
        if hints is not None:
            return hints, f"{name} config.json"
    return None, None


def recorded_spec(metadata: dict) -> ViTSpec | None:
    text = (metadata or {}).get(META_KEY)
    if not text:
        return None
    try:
        return ViTSpec.from_json(text)
    except (ValueError, TypeError, KeyError):
        return None


def read(raw, layout, version: int, flags: dict, notes: Assumptions):
    """(spec, canonical tensors) of a raw checkpoint in ``layout``.

    Hints, weakest first: the layout's own facts (timm / torchvision LayerNorm eps 1e-6, hf's
    token pooling), a config.json beside the weights, the spec our writer recorded in the
    safetensors metadata, then the user's flags. Shapes always win; what is still unknown is
    assumed and said (``notes``).
    """
    flags = flags or {}
    for name in ("window", "pretrained_window"):
        if flags.get(name) is not None:
            flag = f"--{'src-' if name == 'window' else ''}{name.replace('_', '-')}"
            raise UsageError(f"{flag} applies to Swin checkpoints; this is a ViT.",
                             "Drop it (ViT options: --img-size, --num-heads).", option=flag)
    mod = LAYOUTS[layout.name]
    parsed = to_canonical(layout, version, raw.tensors)
    if parsed.unexpected:
        extra = parsed.unexpected
        raise LayoutError(f"{len(extra)} tensors fit no key of the ViT {layout.name} layout "
                          f"(e.g. {', '.join(map(str, extra[:3]))}).",
                          "Is it a plain ViT in this layout? Attention pooling, qk-norm and hybrid stems are not "
                          "supported.", unexpected=map(str, extra), layout=layout.name)
    hints = dict(mod.read_hints(None))
    cfg_hints, _ = config_hints(raw.config)
    if cfg_hints:
        hints.update(cfg_hints)
    elif layout.name == "hf":
        notes.add(f"LayerNorm eps {hints['layer_norm_eps']:g} (transformers' ViTConfig default; "
                  "no config.json says it)")
    rec = recorded_spec(raw.metadata)
    if rec is not None:
        hints.update({k: getattr(rec, k) for k in RECORDED if getattr(rec, k) is not None})
    given = {k: flags[k] for k in FLAGS if flags.get(k) is not None}
    hints.update(given)
    shapes = {k: tuple(v.shape) for k, v in parsed.tensors.items()}
    spec, inferred = infer_spec(shapes, hints)
    if "img_size" in given and spec.img_size != pair(given["img_size"]):
        raise UsageError(f"--img-size {given['img_size']} does not fit this ViT's {shapes['pos_embed'][1]}-row "
                         f"pos_embed (patch {spec.patch_size[0]}x{spec.patch_size[1]}).",
                         f"It is {spec.img_size[0]}x{spec.img_size[1]} px; drop --img-size.", option="--img-size")
    for note in inferred:                 # the renderer says "assumed" itself
        notes.add(note.replace(" assumed", "", 1))
    order = list(spec_order(spec, parsed.tensors))
    return spec, {k: parsed.tensors[k] for k in order}


def spec_order(spec: ViTSpec, tensors: dict):
    from .shapes import canonical_shapes
    return [k for k in canonical_shapes(spec) if k in tensors]


# ----------------------------------------------------------------------------------------
# write
# ----------------------------------------------------------------------------------------
def to_layout(layout, spec: ViTSpec, tensors: dict) -> dict:
    """Canonical tensors -> ``layout``'s keys, plus the tensors the layout needs that the canonical
    form does not hold (torchvision's zero ``in_proj_bias`` of a bias-free qkv)."""
    from ...core.ops import Zeros
    mod = LAYOUTS[layout.name]
    out = from_canonical(layout, mod.variant(spec), tensors)
    extra = mod.extra_tensors(spec)
    if extra:
        dtype = tensors["blocks.0.attn.qkv.weight"].dtype
        for key, arr in extra.items():
            out[key] = Zeros(dtype, tuple(arr.shape))
    return out


# ----------------------------------------------------------------------------------------
# transfer (upscale)
# ----------------------------------------------------------------------------------------
TRANSFER_OPTIONS = ("res", "method", "patch_size", "target_layout")

RUNTIME_OF_METHOD = {
    "timm": "timm >= 0.9 resample_abs_pos_embed (bicubic, antialias, fp32)",
    "hf": "transformers >= 4.45 interpolate_pos_encoding, DeiT --finetune, timm 0.5-0.8 (bicubic, no antialias)",
    "hf-legacy": "transformers <= 4.44 interpolate_pos_encoding (bicubic by scale factor (n + 0.1) / old)",
    "torchvision": "torchvision interpolate_embeddings (bicubic, align_corners=True)",
    "bilinear": "timm's .npz loader and timm <= 0.4 (bilinear)",
}


@dataclasses.dataclass
class TransferResult:
    """The moved checkpoint plus what the CLI prints and records about the move."""

    checkpoint: CanonicalCheckpoint
    source_spec: ViTSpec
    summary: list
    card_info: dict
    metadata: dict
    suggested_name: str = ""


def transfer(ckpt: CanonicalCheckpoint, options: dict) -> TransferResult:
    """``upscale`` of a ViT: a new image size (``res``) and/or patch size (``patch_size``), the
    position embedding resampled by ``method`` (default: the target runtime's own).

    Only ``pos_embed`` (and, for a new patch size, the patch kernel) change, and they are made
    when the writer reaches them, after the byte copies of every other tensor: torch, which the
    resample needs, is imported in a thread started as the copies begin (they run in the kernel,
    without the GIL), so an upscale costs about an ``import torch`` rather than that plus the copy.
    """
    from ...core.tensors import Deferred
    from .geometry import parse_size
    from .shapes import canonical_shapes
    from .transfer import plan
    unknown = sorted(k for k, v in options.items() if k not in TRANSFER_OPTIONS and v not in (None, False))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"ViT upscale takes no {flags} (a Swin option).",
                         "ViT options: --res, --method (timm|hf|hf-legacy|torchvision|bilinear), --patch-size.")
    res, patch = options.get("res"), options.get("patch_size")
    if isinstance(res, str):
        res = parse_size(res)
    if isinstance(patch, str):
        patch = parse_size(patch)
    if res is None and patch is None:
        raise UsageError("A ViT upscale needs --res and/or --patch-size.", "E.g. --res 384.", option="--res")
    target = options.get("target_layout") or ckpt.source_layout
    target_layout = _family_layout(target)
    before = ckpt.spec
    new, notes = plan(before, img_size=res, patch_size=patch, method=options.get("method"), target_layout=target,
                      target_limits=target_layout.limits)
    method = new.provenance.resampled[-1].method if new.grid != before.grid else None
    names = (["pos_embed"] if new.grid != before.grid else []) + \
        (["patch_embed.proj.weight"] if new.patch_size != before.patch_size else [])
    shapes, changed = canonical_shapes(new), {}

    def make(name: str):
        if not changed:
            changed.update(_resampled(before, new, {k: ckpt.tensors[k] for k in names}, method))
        return changed[name]

    tensors = dict(ckpt.tensors)
    tensors.update({k: Deferred(ckpt.tensors[k].dtype, shapes[k], lambda k=k: make(k), label=k,
                                prepare=lambda: _import_in_background("torch")) for k in names})
    moved = dataclasses.replace(ckpt, spec=new, tensors=tensors)
    summary = list(notes)
    if new.grid != before.grid and not (before.provenance and before.provenance.trained_grid):
        summary.append(f"nothing recorded the source's training grid: its {before.grid[0]}x{before.grid[1]} grid is "
                       "recorded as the trained one")
    if method:
        summary.append(f"{method}: {RUNTIME_OF_METHOD[method]}")
    for extra in LAYOUTS[target_layout.name].caveats(new):
        summary.append(extra)
    info = {"img_size_before": list(before.img_size), "img_size_after": list(new.img_size), "method": method,
            "method_line": _method_line(before, new, method)}
    meta = {"pos_embed_method": method or "unchanged", "pos_embed_from_grid": "x".join(map(str, before.grid)),
            "pos_embed_to_grid": "x".join(map(str, new.grid))}
    if new.patch_size != before.patch_size:
        meta["patch_size_from"] = "x".join(map(str, before.patch_size))
    name = f"vit-{new.img_size[0]}" if new.img_size[0] == new.img_size[1] else f"vit-{new.img_size[0]}x{new.img_size[1]}"
    return TransferResult(moved, before, summary, info, meta, name)


def _resampled(before: ViTSpec, new: ViTSpec, sources: dict, method) -> dict:
    """{name: TorchSource} of the tensors :func:`transfer.apply` changes."""
    import torch

    from ...core.tensors import TorchSource
    from ...core.torch_io import to_torch
    from .transfer import apply
    with torch.no_grad():
        out = apply(before, new, {k: to_torch(v) for k, v in sources.items()}, method)
    return {k: TorchSource(v.contiguous()) for k, v in out.items()}


def _import_in_background(name: str) -> None:
    """Start importing ``name`` in a daemon thread; whoever imports it next waits for that import
    (Python's module lock) and gets its error, if any, then."""
    import importlib
    import sys
    import threading
    if name in sys.modules:
        return

    def run():
        try:
            importlib.import_module(name)
        except BaseException:    # noqa: BLE001 - re-raised where the module is needed
            pass
    threading.Thread(target=run, name=f"import {name}", daemon=True).start()


def _family_layout(name: str):
    """A ViT layout by name or alias (the registry already resolved it for the CLI)."""
    key = name.lower()
    for mod in LAYOUTS.values():
        if key == mod.LAYOUT.name or key in mod.LAYOUT.aliases:
            return mod.LAYOUT
    raise UsageError(f"Unknown ViT layout '{name}'.", f"Use one of: {', '.join(LAYOUTS)}.")


def _method_line(before: ViTSpec, after: ViTSpec, method) -> str:
    parts = []
    if before.grid != after.grid:
        parts.append(f"position embedding grid {before.grid[0]}x{before.grid[1]} -> {after.grid[0]}x{after.grid[1]}, "
                     f"`{method}` resampler ({RUNTIME_OF_METHOD[method]})")
    if before.patch_size != after.patch_size:
        parts.append(f"patch kernel {before.patch_size[0]}x{before.patch_size[1]} -> "
                     f"{after.patch_size[0]}x{after.patch_size[1]} (FlexiViT pseudo-inverse, as timm)")
    return "Position embedding: " + ("; ".join(parts) if parts else "copied unchanged (plain key remap)")


# ----------------------------------------------------------------------------------------
# compare (check --against)
# ----------------------------------------------------------------------------------------
ARCH_FIELDS = ("embed_dim", "depth", "num_heads", "in_chans", "mlp_ratio", "qkv_bias", "class_token", "reg_tokens",
               "no_embed_class", "global_pool", "fc_norm", "pre_norm", "final_norm", "layer_scale", "distilled",
               "representation_size")
# methods whose resampling a runtime also does on the fly at any input size (same function)
ON_THE_FLY = {"timm": "timm's dynamic_img_size=True", "hf": "transformers' interpolate_pos_encoding=True"}


def compare(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> tuple:
    """(truth checkpoint, gated, description, notes) for ``check --against``."""
    if not isinstance(src.spec, ViTSpec):
        raise IncompatibleSpecError("The candidate is a ViT and the source is not.",
                                    "Pass the checkpoint the candidate was converted from as --against.")
    c, s = cand.spec, src.spec
    for name in ARCH_FIELDS:
        if getattr(c, name) != getattr(s, name):
            raise IncompatibleSpecError(
                f"The candidate and the source are different architectures ({name} {getattr(c, name)} vs "
                f"{getattr(s, name)}).", "Pass the checkpoint the candidate was converted from as --against.")
    notes = []
    if c.layer_norm_eps != s.layer_norm_eps:
        notes.append(f"LayerNorm eps differs (candidate {c.layer_norm_eps:g}, source {s.layer_norm_eps:g}): "
                     "outputs move by ~1e-6")
    if (c.img_size, c.patch_size) == (s.img_size, s.patch_size):
        return src, True, "candidate vs the source (reference forward, fp32, CPU) at the same geometry", notes
    change = (f"{s.img_size[0]}x{s.img_size[1]} px patch {s.patch_size[0]} -> "
              f"{c.img_size[0]}x{c.img_size[1]} px patch {c.patch_size[0]}")
    last = c.provenance.resampled[-1] if c.provenance and c.provenance.resampled else None
    if c.patch_size == s.patch_size and last is not None and last.method in ON_THE_FLY \
            and last.from_grid == s.grid and last.to_grid == c.grid:
        import torch

        from ...core.tensors import TorchSource
        from ...core.torch_io import to_torch
        from .resample import resample_pos_embed
        with torch.no_grad():
            pos = resample_pos_embed(to_torch(src.tensors["pos_embed"]), s.grid, c.grid, s.pos_prefix_rows,
                                     last.method)
        tensors = dict(src.tensors)
        tensors["pos_embed"] = TorchSource(pos.contiguous())
        truth = dataclasses.replace(src, spec=s.replace(img_size=c.img_size, provenance=c.provenance),
                                    tensors=tensors)
        return truth, True, (f"geometry changed ({change}): the source run at the candidate's size with its "
                             f"pos_embed resampled on the fly as {ON_THE_FLY[last.method]} does (the same "
                             f"'{last.method}' function, computed here in the reference forward): an exact "
                             "comparison"), notes
    why = (f"the '{last.method}' resampler has no on-the-fly equivalent in a runtime" if last is not None
           and c.patch_size == s.patch_size else "the patch kernel was resampled" if c.patch_size != s.patch_size
           else "the candidate records no resampling of the source's grid")
    return src, False, (f"geometry changed ({change}) and {why}, so outputs cannot match exactly: agreement "
                        f"only (not gated); the source ran at its own {s.img_size[0]}x{s.img_size[1]} px on "
                        "resized inputs"), notes


# ----------------------------------------------------------------------------------------
# inspect, cards
# ----------------------------------------------------------------------------------------
def describe(spec: ViTSpec, before: ViTSpec | None = None) -> dict:
    label = "DeiT (distilled ViT)" if spec.distilled else "ViT"
    detail = "".join(f", {t}" for t, on in ((f"{spec.reg_tokens} registers", spec.reg_tokens),
                                              ("layer scale", spec.layer_scale), ("no_embed_class", spec.no_embed_class),
                                              ("pre-norm", spec.pre_norm),
                                              (f"representation {spec.representation_size}", spec.representation_size))
                     if on)
    size = _size(spec.img_size)
    summary = (f"{size}  patch {_size(spec.patch_size)}  embed {spec.embed_dim}  depth {spec.depth}  heads "
               f"{spec.num_heads}  mlp_ratio {spec.mlp_ratio:g}  classes {spec.num_classes}  pool "
               f"{spec.global_pool or 'none'}  eps {spec.layer_norm_eps:g}")
    grid = f"{spec.grid[0]}x{spec.grid[1]}"
    if before is not None and before.grid != spec.grid:
        grid = f"{before.grid[0]}x{before.grid[1]} -> {grid}"
    rows = [["patch grid", grid], ["prefix tokens", f"{spec.num_prefix_tokens} ({spec.pos_prefix_rows} with a "
                                                    "position embedding)"],
            ["pos_embed rows", str(spec.pos_embed_len)]]
    prov = spec.provenance
    trained = f"{spec.trained_grid[0]}x{spec.trained_grid[1]}" + ("" if prov and prov.trained_grid else
                                                                   " (assumed: nothing records it)")
    rows.append(["trained grid", trained])
    for r in (prov.resampled if prov else ()):
        rows.append(["resampled", f"{r.from_grid[0]}x{r.from_grid[1]} -> {r.to_grid[0]}x{r.to_grid[1]} ({r.method})"])
    return {"label": label, "detail": detail, "summary": summary, "columns": ("geometry", "value"), "rows": rows}


def _size(p) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


CITATIONS = {
    "vit": """@inproceedings{dosovitskiy2021image,
  title={An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale},
  author={Dosovitskiy, Alexey and Beyer, Lucas and Kolesnikov, Alexander and Weissenborn, Dirk and Zhai, Xiaohua and Unterthiner, Thomas and Dehghani, Mostafa and Minderer, Matthias and Heigold, Georg and Gelly, Sylvain and Uszkoreit, Jakob and Houlsby, Neil},
  booktitle={International Conference on Learning Representations (ICLR)},
  year={2021}
}""",
    "deit": """@inproceedings{touvron2021training,
  title={Training data-efficient image transformers \\& distillation through attention},
  author={Touvron, Hugo and Cord, Matthieu and Douze, Matthijs and Massa, Francisco and Sablayrolles, Alexandre and J{\\'e}gou, Herv{\\'e}},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2021}
}""",
}


def card_facts(spec: ViTSpec) -> dict:
    deit = spec.distilled
    prov = spec.provenance
    line = (f"ViT: embed {spec.embed_dim}, depth {spec.depth}, {spec.num_heads} heads, patch "
            f"{_size(spec.patch_size)}, {spec.num_prefix_tokens} prefix token(s)")
    if prov and prov.resampled:
        line += "; position embedding trained at grid " + "x".join(map(str, spec.trained_grid)) + ", resampled " + \
            ", ".join(f"{r.method} {'x'.join(map(str, r.from_grid))}->{'x'.join(map(str, r.to_grid))}"
                      for r in prov.resampled)
    return {"version": 1, "family_tag": "deit" if deit else "vit", "family_line": line,
            "family_title": "Converted DeiT checkpoint" if deit else "Converted Vision Transformer checkpoint",
            "citation": CITATIONS["vit"] + ("\n\n" + CITATIONS["deit"] if deit else ""),
            "method_line": "Position embedding: copied unchanged (plain key remap)",
            "windows_before": None, "windows_after": None, "pretrained_window_sizes": None,
            "img_size_before": list(spec.img_size), "img_size_after": list(spec.img_size)}


def spec_json(spec: ViTSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)
