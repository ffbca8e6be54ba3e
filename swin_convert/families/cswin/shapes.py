"""Canonical CSWin keys (official classification names) and spec inference from shapes.

Canonical names are the official ``CSWinTransformer.state_dict()`` keys, in its order::

    stage1_conv_embed.{0,2}.{weight,bias}                    stem conv, stem LayerNorm
    stage{S}.{B}.{qkv,norm1,proj}.*                          per block
    stage{S}.{B}.attns.{0,1}.get_v.{weight,bias}             LePE depthwise 3x3 (attns.1 only with 2 branches)
    stage{S}.{B}.mlp.{fc1,fc2}.*  stage{S}.{B}.norm2.*
    merge{K}.{conv,norm}.*                                   K = 1..3, between stages K and K+1
    norm.*  head.*                                           final LayerNorm, classifier (absent if num_classes 0)

No buffers, no position tensors.
"""
from __future__ import annotations

from swin_convert.errors import BadInputError, LayoutError, UsageError

from . import geometry
from .spec import OFFICIAL_MODELS, CSWinSpec

STEM_CONV = "stage1_conv_embed.0"
STEM_NORM = "stage1_conv_embed.2"


def canonical_shapes(spec: CSWinSpec) -> dict[str, tuple[int, ...]]:
    """Every canonical key of ``spec`` with its shape, in official state_dict order."""
    out: dict[str, tuple[int, ...]] = {}
    c0 = spec.embed_dim
    out[f"{STEM_CONV}.weight"] = (c0, spec.in_chans, geometry.STEM_KERNEL, geometry.STEM_KERNEL)
    out[f"{STEM_CONV}.bias"] = (c0,)
    out[f"{STEM_NORM}.weight"] = (c0,)
    out[f"{STEM_NORM}.bias"] = (c0,)
    for s in range(spec.num_stages):
        dim, br, hid = spec.dims[s], spec.branches[s], spec.mlp_hidden(s)
        if s > 0:
            m = f"merge{s}"
            out[f"{m}.conv.weight"] = (dim, dim // 2, geometry.MERGE_KERNEL, geometry.MERGE_KERNEL)
            out[f"{m}.conv.bias"] = (dim,)
            out[f"{m}.norm.weight"] = (dim,)
            out[f"{m}.norm.bias"] = (dim,)
        for b in range(spec.depths[s]):
            p = f"stage{s + 1}.{b}"
            out[f"{p}.qkv.weight"] = (3 * dim, dim)
            if spec.qkv_bias:
                out[f"{p}.qkv.bias"] = (3 * dim,)
            out[f"{p}.norm1.weight"] = (dim,)
            out[f"{p}.norm1.bias"] = (dim,)
            out[f"{p}.proj.weight"] = (dim, dim)
            out[f"{p}.proj.bias"] = (dim,)
            for a in range(br):
                out[f"{p}.attns.{a}.get_v.weight"] = (dim // br, 1, 3, 3)
                out[f"{p}.attns.{a}.get_v.bias"] = (dim // br,)
            out[f"{p}.mlp.fc1.weight"] = (hid, dim)
            out[f"{p}.mlp.fc1.bias"] = (hid,)
            out[f"{p}.mlp.fc2.weight"] = (dim, hid)
            out[f"{p}.mlp.fc2.bias"] = (dim,)
            out[f"{p}.norm2.weight"] = (dim,)
            out[f"{p}.norm2.bias"] = (dim,)
    out["norm.weight"] = (spec.dims[-1],)
    out["norm.bias"] = (spec.dims[-1],)
    if spec.stage_norms:  # the seg backbone's stage-output norms, kept through a seg -> seg remap
        for s in range(1, spec.num_stages):
            out[f"norm{s}.weight"] = (spec.dims[s - 1],)
            out[f"norm{s}.bias"] = (spec.dims[s - 1],)
    if spec.num_classes > 0:
        out["head.weight"] = (spec.num_classes, spec.dims[-1])
        out["head.bias"] = (spec.num_classes,)
    return out


def canonical_keys(spec: CSWinSpec) -> list[str]:
    return list(canonical_shapes(spec))


def looks_like_cswin(names) -> bool:
    """Cheap test on key names: an official CSWin classification state dict (or its backbone)."""
    names = set(names)
    return f"{STEM_CONV}.weight" in names and any(n.startswith("stage1.0.attns.0.get_v.") for n in names)


def _shape(shapes, key):
    v = shapes.get(key)
    return None if v is None else tuple(int(d) for d in v)


def _bad(msg: str) -> BadInputError:
    return BadInputError(msg, "The file does not hold official CSWin classification weights in canonical names.")


def infer_spec(shapes: dict, hints: dict | None = None):
    """Spec from canonical-name shapes; returns ``(spec, notes)``.

    Shapes decide embed_dim, depths, mlp_ratio, qkv_bias, num_classes, in_chans and the branch
    count per stage. ``hints`` may give ``num_heads``, ``img_size``, ``split_size`` (e.g. from
    file metadata or the user); otherwise the official model with the same embed_dim and depths
    (else the same embed_dim) supplies them, and each assumption is recorded in ``notes``.
    Raises BadInputError when the shapes are not a CSWin, UsageError when hints contradict them.
    """
    hints = dict(hints or {})
    notes: list[str] = []
    w = _shape(shapes, f"{STEM_CONV}.weight")
    if w is None or len(w) != 4 or w[2:] != (geometry.STEM_KERNEL,) * 2:
        raise _bad(f"No CSWin stem ({STEM_CONV}.weight of shape (C, in, 7, 7)) found.")
    embed_dim, in_chans = w[0], w[1]
    depths = []
    for s in range(geometry.NUM_STAGES):
        b = 0
        while f"stage{s + 1}.{b}.qkv.weight" in shapes:
            b += 1
        if b == 0:
            raise _bad(f"Stage {s + 1} has no blocks (stage{s + 1}.0.qkv.weight missing).")
        depths.append(b)
    dims = [embed_dim * 2 ** s for s in range(geometry.NUM_STAGES)]
    for s in range(1, geometry.NUM_STAGES):
        mw = _shape(shapes, f"merge{s}.conv.weight")
        if mw is None or mw[:2] != (dims[s], dims[s - 1]):
            raise _bad(f"merge{s}.conv.weight is {mw}, expected ({dims[s]}, {dims[s - 1]}, 3, 3): "
                       "channels must double at every merge.")
    branches = []
    for s in range(geometry.NUM_STAGES):
        gv = _shape(shapes, f"stage{s + 1}.0.attns.0.get_v.weight")
        two = f"stage{s + 1}.0.attns.1.get_v.weight" in shapes
        br = 2 if two else 1
        if gv is None or gv[0] != dims[s] // br:
            raise _bad(f"stage{s + 1}.0.attns.0.get_v.weight is {gv}, expected {dims[s] // br} channels.")
        branches.append(br)
    if branches[-1] != 1:
        raise _bad("The last stage has two attention branches; official CSWin has one there.")
    fc1 = _shape(shapes, "stage1.0.mlp.fc1.weight")
    if fc1 is None:
        raise _bad("stage1.0.mlp.fc1.weight missing.")
    mlp_ratio = fc1[0] / embed_dim
    qkv_bias = "stage1.0.qkv.bias" in shapes
    hw = _shape(shapes, "head.weight")
    num_classes = 0 if hw is None else hw[0]

    # Geometry and heads: not in the weights.
    base = _named_default(embed_dim, tuple(depths))
    name = base[0] if base else None
    if "num_heads" in hints and hints["num_heads"] is not None:
        num_heads = tuple(int(h) for h in hints["num_heads"])
    elif base:
        num_heads = base[1].num_heads
        notes.append(f"num_heads {list(num_heads)} assumed from {name} (heads are not in the weights).")
    elif all(d % 32 == 0 for d in dims):
        num_heads = tuple(d // 32 for d in dims)
        notes.append(f"num_heads {list(num_heads)} assumed as head_dim 32 (heads are not in the weights).")
    else:
        raise UsageError("The number of heads is not recorded in CSWin weights and no official model matches "
                         f"embed_dim {embed_dim}.", "Give num_heads, e.g. --heads 2,4,8,16.")
    if hints.get("img_size") is not None:
        img_size = int(hints["img_size"])
    else:
        img_size = base[1].img_size if base else 224
        notes.append(f"img_size {img_size} assumed ({name or 'official default'}; not in the weights).")
    if hints.get("split_size") is not None:
        split, more = geometry.check_split(img_size, hints["split_size"], branches)
        notes += more
    else:
        if base and base[1].img_size == img_size:
            src = base[1].split_size
            split, more = geometry.check_split(img_size, src[:3] + (geometry.stage_maps(img_size)[3],))
        else:
            src_img = 224
            split, more = geometry.default_split(src_img, (1, 2, 7, 7), img_size, source_branches=branches)
        notes += more
        maps = geometry.stage_maps(img_size)
        # one-branch stages force split == map
        split = tuple(maps[s] if branches[s] == 1 else split[s] for s in range(geometry.NUM_STAGES))
        notes.append(f"split_size {list(split)} assumed ({name or 'official default'} geometry at "
                     f"{img_size} px; not in the weights).")
        geometry.check_split(img_size, split, branches)
    spec = CSWinSpec(embed_dim=embed_dim, depths=tuple(depths), num_heads=num_heads, split_size=split,
                     img_size=img_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, num_classes=num_classes,
                     in_chans=in_chans, stage_norms="norm1.weight" in shapes)
    spec.validate()
    if spec.branches != tuple(branches):
        raise UsageError(f"Split {list(split)} at {img_size} px gives branches {list(spec.branches)}, "
                         f"the weights have {branches}.", "Choose a split that keeps the weights' shapes.")
    check_shapes(shapes, spec)
    return spec, notes


def _named_default(embed_dim: int, depths: tuple[int, ...]):
    exact = [(n, s) for n, s in OFFICIAL_MODELS.items() if s.embed_dim == embed_dim and s.depths == depths]
    if exact:
        return exact[0]
    same_dim = [(n, s) for n, s in OFFICIAL_MODELS.items() if s.embed_dim == embed_dim]
    return same_dim[0] if same_dim else None


def check_shapes(shapes: dict, spec: CSWinSpec) -> None:
    """Every canonical key present with its shape, nothing else (LayoutError, a BadInputError: one line)."""
    want = canonical_shapes(spec)
    missing = [k for k in want if k not in shapes]
    extra = [k for k in shapes if k not in want]
    wrong = [k for k in want if k in shapes and tuple(shapes[k]) != want[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with other shapes (e.g. {k}: {tuple(shapes[k])} vs {want[k]})")
        raise LayoutError("CSWin weights do not fit the spec: " + "; ".join(parts) + ".",
                          "Check the model size and geometry (num_heads, split_size) given.", missing=missing,
                          unexpected=extra, mismatched=[(k, tuple(want[k]), tuple(shapes[k])) for k in wrong])
