"""Canonical (timm) tensor names and shapes of a ViT, and the spec inferred back from shapes.

``canonical_shapes(spec)`` lists every tensor of the canonical form in state-dict order.
``infer_spec(shapes, hints)`` reads the architecture back from ``{canonical name: shape}``;
what the shapes cannot say (heads, pooling, eps, a non-square grid) comes from ``hints``
(a layout's config reader) or is assumed, and every assumption is returned as a note.
"""
from __future__ import annotations

import re

from swin_convert.errors import LayoutError

from .geometry import grid_of, square_side
from .spec import ViTSpec, pair

# every canonical key, as templates ({b}: block index, {w}: weight/bias)
TEMPLATES = (
    "cls_token", "dist_token", "reg_token", "pos_embed", "patch_embed.proj.{w}", "norm_pre.{w}",
    "blocks.{b}.norm1.{w}", "blocks.{b}.attn.qkv.{w}", "blocks.{b}.attn.proj.{w}", "blocks.{b}.ls1.gamma",
    "blocks.{b}.norm2.{w}", "blocks.{b}.mlp.fc1.{w}", "blocks.{b}.mlp.fc2.{w}", "blocks.{b}.ls2.gamma",
    "norm.{w}", "fc_norm.{w}", "pre_logits.fc.{w}", "head.{w}", "head_dist.{w}",
)

# head counts of the released ViT widths whose head dim is not 64
KNOWN_HEADS = {1152: 16, 1280: 16, 1408: 16, 1664: 16}   # SigLIP so400m, ViT-H, ViT-g, ViT-G


def canonical_shapes(spec: ViTSpec) -> dict[str, tuple]:
    """{canonical name: shape} for ``spec``, in the order timm's state_dict lists them."""
    d, c = spec.embed_dim, spec.in_chans
    ph, pw = spec.patch_size
    out: dict[str, tuple] = {}
    if spec.class_token:
        out["cls_token"] = (1, 1, d)
    if spec.distilled:
        out["dist_token"] = (1, 1, d)
    if spec.reg_tokens:
        out["reg_token"] = (1, spec.reg_tokens, d)
    out["pos_embed"] = (1, spec.pos_embed_len, d)
    out["patch_embed.proj.weight"] = (d, c, ph, pw)
    if not spec.pre_norm:
        out["patch_embed.proj.bias"] = (d,)
    else:
        out["norm_pre.weight"] = out["norm_pre.bias"] = (d,)
    h = spec.mlp_hidden
    for b in range(spec.depth):
        p = f"blocks.{b}."
        out[p + "norm1.weight"] = out[p + "norm1.bias"] = (d,)
        out[p + "attn.qkv.weight"] = (3 * d, d)
        if spec.qkv_bias:
            out[p + "attn.qkv.bias"] = (3 * d,)
        out[p + "attn.proj.weight"], out[p + "attn.proj.bias"] = (d, d), (d,)
        if spec.layer_scale:
            out[p + "ls1.gamma"] = (d,)
        out[p + "norm2.weight"] = out[p + "norm2.bias"] = (d,)
        out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = (h, d), (h,)
        out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = (d, h), (d,)
        if spec.layer_scale:
            out[p + "ls2.gamma"] = (d,)
    if spec.uses_norm:
        out["norm.weight"] = out["norm.bias"] = (d,)
    if spec.uses_fc_norm:
        out["fc_norm.weight"] = out["fc_norm.bias"] = (d,)
    feat = d
    if spec.representation_size:
        feat = spec.representation_size
        out["pre_logits.fc.weight"], out["pre_logits.fc.bias"] = (feat, d), (feat,)
    if spec.num_classes:
        out["head.weight"], out["head.bias"] = (spec.num_classes, feat), (spec.num_classes,)
        if spec.distilled:
            out["head_dist.weight"], out["head_dist.bias"] = (spec.num_classes, d), (spec.num_classes,)
    return out


def _need(shapes, name):
    if name not in shapes:
        raise LayoutError(f"This ViT has no '{name}' tensor.", "Is it a ViT checkpoint in this layout?", missing=[name])
    return tuple(shapes[name])


def infer_spec(shapes: dict, hints: dict | None = None) -> tuple[ViTSpec, list[str]]:
    """(spec, notes) from ``{canonical name: shape}``; ``hints`` holds spec fields read from a config.

    Hints win over assumptions but never over shapes: a hint the shapes contradict is refused.
    """
    shapes = {k: tuple(v) for k, v in shapes.items()}
    hints = dict(hints or {})
    notes: list[str] = []
    known = [re.compile(t.replace(".", r"\.").replace("{b}", r"\d+").replace("{w}", r"(weight|bias)") + r"\Z")
             for t in TEMPLATES]
    stray = [k for k in shapes if not any(p.match(k) for p in known)]
    if stray:
        raise LayoutError(f"{len(stray)} tensors are not part of a plain ViT (e.g. {', '.join(stray[:3])}).",
                          "Attention pooling, qk-norm and hybrid stems are not supported.", unexpected=stray)
    d, c, ph, pw = _need(shapes, "patch_embed.proj.weight")
    depth = 1 + max((int(k.split(".")[1]) for k in shapes if k.startswith("blocks.")), default=-1)
    if depth == 0:
        raise LayoutError("This ViT has no transformer blocks.")
    hidden = _need(shapes, "blocks.0.mlp.fc1.weight")[0]
    class_token = "cls_token" in shapes
    distilled = "dist_token" in shapes
    reg = shapes.get("reg_token", (1, 0, d))[1]
    prefix = int(class_token) + int(distilled) + reg
    rows = _need(shapes, "pos_embed")[1]

    # heads: not in any shape
    heads = hints.pop("num_heads", None)
    if heads is None:
        heads = KNOWN_HEADS.get(d, max(1, d // 64))
        notes.append(f"num_heads {heads} assumed (head dim {d // heads}; no config says it)")

    # grid, and whether prefix tokens carry a position embedding
    img_hint = hints.pop("img_size", None)
    nec_hint = hints.pop("no_embed_class", None)
    patch_hint = hints.pop("patch_size", None)
    if patch_hint is not None and pair(patch_hint) != (ph, pw):
        notes.append(f"config patch size {list(pair(patch_hint))} ignored: the patch kernel is {ph}x{pw}")
    no_embed_class, grid = _grid(rows, prefix, (ph, pw), img_hint, nec_hint, notes)
    img = (grid[0] * ph, grid[1] * pw)

    fc_norm_present, norm_present = "fc_norm.weight" in shapes, "norm.weight" in shapes
    pool = hints.pop("global_pool", None)
    if pool is None:
        pool = "avg" if (fc_norm_present or not class_token) else "token"
        if fc_norm_present or not class_token:
            notes.append(f"global_pool '{pool}' assumed ({'fc_norm present' if fc_norm_present else 'no class token'})")
    hints.pop("fc_norm", None)
    rep = shapes["pre_logits.fc.weight"][0] if "pre_logits.fc.weight" in shapes else 0
    head = shapes.get("head.weight")
    eps = hints.pop("layer_norm_eps", None)
    if eps is None:
        eps = 1e-6
        notes.append("LayerNorm eps 1e-6 assumed (timm, torchvision and the JAX originals use it)")
    spec = ViTSpec(
        embed_dim=d, depth=depth, num_heads=int(heads), img_size=img, patch_size=(ph, pw), in_chans=c,
        mlp_ratio=hidden / d, qkv_bias="blocks.0.attn.qkv.bias" in shapes, class_token=class_token,
        reg_tokens=reg, no_embed_class=no_embed_class, global_pool=pool, fc_norm=fc_norm_present,
        pre_norm="norm_pre.weight" in shapes, final_norm=fc_norm_present or norm_present,
        layer_scale="blocks.0.ls1.gamma" in shapes, distilled=distilled, representation_size=rep,
        layer_norm_eps=float(eps), num_classes=head[0] if head else 0,
        provenance=hints.pop("provenance", None))
    from .geometry import check_spec
    bad = check_spec(spec)
    if bad:
        raise LayoutError(f"The tensors describe a ViT that cannot be built: {bad[0]}", bad[1])
    want = canonical_shapes(spec)
    wrong = [k for k in want if k in shapes and shapes[k] != want[k]]
    missing = [k for k in want if k not in shapes]
    if wrong:
        k = wrong[0]
        raise LayoutError(f"Tensor '{k}' has shape {list(shapes[k])}, expected {list(want[k])} "
                          f"({len(wrong)} tensors disagree).", "The checkpoint is inconsistent or not a plain ViT.",
                          missing=missing, mismatched=[(w, tuple(want[w]), tuple(shapes[w])) for w in wrong])
    if missing:
        raise LayoutError(f"{len(missing)} tensors are missing (e.g. {', '.join(missing[:3])}).",
                          "The checkpoint is incomplete.", missing=missing)
    return spec, notes


def _grid(rows, prefix, patch, img_hint, nec_hint, notes):
    """(no_embed_class, grid) from the pos-embed length."""
    options = []
    for nec in (False, True):
        n = rows - (0 if nec else prefix)
        if n > 0:
            options.append((nec, n))
    if nec_hint is not None:
        options = [o for o in options if o[0] == bool(nec_hint)]
    if img_hint is not None:
        g, bad = grid_of(img_hint, patch)
        if bad is None:
            fits = [o for o in options if o[1] == g[0] * g[1]]
            if fits:
                return fits[0][0], g
        notes.append(f"config image size {list(pair(img_hint))} does not fit the {rows}-row pos_embed; ignored")
    squares = [(nec, square_side(n)) for nec, n in options if square_side(n)]
    if not squares:
        raise LayoutError(f"pos_embed has {rows} rows ({prefix} prefix tokens), which is no square grid.",
                          "Give the image size (e.g. --img-size H,W) for a non-square grid.")
    nec, side = squares[0]
    if prefix and len(squares) > 1:
        notes.append(f"pos_embed rows fit both {'with' if not nec else 'without'} and "
                     f"{'without' if not nec else 'with'} prefix rows; chose a {side}x{side} grid")
    if img_hint is None:
        notes.append(f"square {side}x{side} patch grid assumed from {rows} pos_embed rows")
    return nec, (side, side)


__all__ = ["TEMPLATES", "canonical_shapes", "infer_spec", "KNOWN_HEADS"]
