"""What the OpenMMLab Swin layouts (mmpretrain, mmdet, mmseg) share: their key table, the
per-stage output norms, whole-model checkpoints (backbone beside neck and heads) and the
``{'state_dict': ..., 'meta': {...}}`` container.

Facts (../shared/reference/layouts.md §1.9, §1.9a, §2.7): ``patch_embed.projection``,
``stages.i.blocks.j.attn.w_msa.*``, ``ffn.layers.0.0`` / ``ffn.layers.1``; patch merging is an
``nn.Unfold``, so its ``reduction.weight`` and the V1 ``downsample.norm`` (before the reduction)
carry the Unfold channel order (``core.ops.UNFOLD_ORDER``); the V2 merge sits at the start of the
next stage and its post-norm is not permuted. The backbone has an output norm ``norm{i}`` per
``out_indices``: official ``norm`` is ``norm{S-1}``; ``norm0..norm{S-2}`` have no official
counterpart.
"""
from __future__ import annotations

import re

from ..._version import __version__
from ...core.ops import UNFOLD_ORDER
from ...core.schema import buffer, rule
from ...errors import LayoutError

P = "layers.{s}.blocks.{b}"
M = "stages.{s}.blocks.{b}"
BACKBONE = "backbone."

RULES = (
    rule("patch_embed.proj.{w}", "patch_embed.projection.{w}"),
    rule("patch_embed.norm.{w}", "patch_embed.norm.{w}"),
    rule("absolute_pos_embed", "absolute_pos_embed"),
    rule(P + ".attn.{*}", M + ".attn.w_msa.{*}"),
    rule(P + ".mlp.fc1.{w}", M + ".ffn.layers.0.0.{w}"),
    rule(P + ".mlp.fc2.{w}", M + ".ffn.layers.1.{w}"),
    rule(P + ".norm1.{w}", M + ".norm1.{w}"),
    rule(P + ".norm2.{w}", M + ".norm2.{w}"),
    # V1: merge at the end of stage s, LayerNorm(4C) before the reduction: both in Unfold order
    rule("layers.{s}.downsample.reduction.weight", "stages.{s}.downsample.reduction.weight", versions=(1,),
         op=UNFOLD_ORDER),
    rule("layers.{s}.downsample.norm.{w}", "stages.{s}.downsample.norm.{w}", versions=(1,), op=UNFOLD_ORDER),
    # V2: merge at the start of stage s+1, LayerNorm(2C) after the reduction: the norm keeps its order
    rule("layers.{s}.downsample.reduction.weight", "stages.{s+1}.downsample.reduction.weight", versions=(2,),
         op=UNFOLD_ORDER),
    rule("layers.{s}.downsample.norm.{w}", "stages.{s+1}.downsample.norm.{w}", versions=(2,)),
    rule("norm.{w}", "norm.{w}"),        # norm{S-1} in the file: renamed by on_read / on_write
)
HEAD = rule("head.{w}", "head.fc.{w}", prefixed=False)      # mmpretrain's LinearClsHead

BUFFERS = (
    buffer("relative_position_index", M + ".attn.w_msa.relative_position_index"),
    buffer("relative_coords_table", M + ".attn.w_msa.relative_coords_table", versions=(2,)),
)

_NORM = re.compile(r"^norm(\d+)\.(weight|bias)$")
OTHER_GROUPS = re.compile(r"^([A-Za-z_]+)")


def make_on_read(name: str, has_head: bool, stage_word: str = "stages", strip: bool = False,
                 require_norm: bool = True):
    """Split an OpenMMLab file into the backbone (+ mmpretrain head) and the rest; norm{S-1} -> norm.

    ``stage_word``/``strip``: an official detection checkpoint (official names under ``backbone.``)
    is read with ``layers`` and the prefix removed.
    """
    stage_rx = re.compile(rf"(?:^|\.){stage_word}\.(\d+)\.")

    def on_read(tensors: dict, notes: list):
        prefixed = any(k.startswith(BACKBONE + "patch_embed.") for k in tensors)
        if not require_norm and not prefixed:
            return tensors, {}
        prefix = BACKBONE if prefixed else ""
        own, other = {}, {}
        for key, src in tensors.items():
            if prefixed and not key.startswith(prefix) and not (has_head and key.startswith("head.fc.")):
                other[key] = src                        # neck.*, rpn_head.*, decode_head.*, ...
            else:
                own[key] = src
        found = {int(m.group(1)) for k in own for m in [stage_rx.search(k)] if m}
        stages = max(found) + 1 if found else 0
        last = stages - 1
        out, extra_norms = {}, []
        for key, src in own.items():
            bare = key[len(prefix):] if prefix and key.startswith(prefix) else key
            m = _NORM.match(bare)
            if strip:
                key = bare
            if m and int(m.group(1)) == last:
                out[("" if strip else prefix) + f"norm.{m.group(2)}"] = src
            elif m:
                other[BACKBONE + bare] = src            # an output norm of an earlier stage
                extra_norms.append(f"norm{m.group(1)}")
            else:
                out[key] = src
        if stages and ("" if strip else prefix) + "norm.weight" not in out:
            raise LayoutError(f"The {name} checkpoint has no norm{last}.weight (the last stage's output norm, "
                              "official `norm`).",
                              f"The file is incomplete, or was saved with out_indices that leave out stage {last}.")
        if strip and prefixed:
            notes.append("official backbone under 'backbone.' (a detection/segmentation release)")
        if extra_norms:
            names = sorted(set(extra_norms))
            notes.append(f"{', '.join(names)}: output norms of earlier stages (for a detection/segmentation neck); "
                         "official has no counterpart: kept only when the target is an OpenMMLab layout")
        rest = [k for k in other if not k.startswith(BACKBONE)]
        if rest:
            notes.append(f"whole-model checkpoint: {len(rest)} tensors beside the backbone "
                         f"({describe_groups(rest)})")
        return out, other
    return on_read


def describe_groups(keys) -> str:
    groups: dict[str, int] = {}
    for k in keys:
        g = k.split(".")[0]
        groups[g] = groups.get(g, 0) + 1
    return ", ".join(f"{g}.* x{n}" for g, n in groups.items())


def make_on_write(strip: bool = False):
    """Official ``norm`` -> ``norm{S-1}``; ``strip``: a standalone backbone without ``backbone.`` (mmseg)."""

    def on_write(spec, tensors: dict) -> dict:
        last = spec.num_stages - 1
        out = {}
        for key, src in tensors.items():
            if key in (BACKBONE + "norm.weight", BACKBONE + "norm.bias"):
                key = f"{BACKBONE}norm{last}.{key.rsplit('.', 1)[1]}"
            if strip and key.startswith(BACKBONE):
                key = key[len(BACKBONE):]
            out[key] = src
        return out
    return on_write


def make_whole_model(prefix: str):
    """Put the other tensors (earlier output norms, neck, heads) beside this layout's backbone.

    A standalone backbone without a prefix (mmseg's converter output) gets ``backbone.`` on every
    key as soon as there are tensors that are not the backbone's.
    """

    def whole_model(tensors: dict, other: dict, spec, prefix=prefix) -> dict:
        beside = [k for k in other if not k.startswith(BACKBONE)]
        if not prefix and beside:
            tensors = {(k if k.startswith("head.fc.") else BACKBONE + k): v for k, v in tensors.items()}
            prefix = BACKBONE
        out = dict(tensors)
        for key, src in other.items():
            out[prefix + key[len(BACKBONE):] if key.startswith(BACKBONE) else key] = src
        return out
    return whole_model


def norm_notes(spec, other: dict, runtime_indices: str) -> list[str]:
    """What an OpenMMLab output lacks: the earlier output norms (unless carried from an mm source)."""
    last = spec.num_stages - 1
    missing = [f"norm{i}" for i in range(last) if BACKBONE + f"norm{i}.weight" not in other]
    if not missing:
        return []
    return [f"{', '.join(missing)} (output norms of stages 0..{last - 1}, {runtime_indices}) have no official "
            "counterpart and are not written: the runtime initialises them (LayerNorm weight 1, bias 0)"]


def shift_note(spec, library: str) -> list[str]:
    """mmdet/mmseg always shift odd blocks; official and mmpretrain do not where the map equals the window."""
    same = [s for s, (r, w) in enumerate(zip(spec.resolutions, spec.window_size)) if r == w and spec.depths[s] > 1]
    if not same:
        return []
    stages = ", ".join(str(s) for s in same)
    return [f"{library} shifts the windows of stage {stages} (map {spec.resolutions[same[0]]} = window "
            f"{spec.window_size[same[0]]}), official and mmpretrain do not: same weights, different features there"]


def container(ckpt) -> dict:
    """The ``meta`` OpenMMLab tools write beside ``state_dict`` (ours records the spec)."""
    meta = {"converted_by": f"swin-convert {__version__}", "source": str(ckpt.source),
            "source_layout": ckpt.source_layout, "swin_convert.spec": ckpt.spec.to_json()}
    return {"meta": meta}


def equal_windows_limit(spec, library: str):
    if len(set(spec.window_size)) > 1:
        return (f"{library} has one window for every stage and pads a smaller map instead of clamping the window as "
                f"official does (per-stage windows {list(spec.window_size)} at {spec.img_size} px)")
    return None


def common_limits(spec, library: str):
    if spec.cpb_baked:
        return f"{library} always evaluates the V2 CPB MLP (a baked table needs the official layout)"
    if not spec.patch_norm:
        return f"{library}'s Swin always normalises the patch embedding"
    if not spec.qkv_bias:
        return f"{library}'s Swin always has q/k/v biases"
    return None
