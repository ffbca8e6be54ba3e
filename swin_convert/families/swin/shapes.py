"""Swin's canonical tensors: official names (without buffers), and the key list of a spec."""
from __future__ import annotations

from ...core.checkpoint import CanonicalCheckpoint  # noqa: F401  (re-exported)
from .spec import CPB_HIDDEN, SwinSpec


def canonical_shapes(spec: SwinSpec) -> dict[str, tuple]:
    """Every canonical tensor of ``spec`` with its shape, in module order."""
    e, out = spec.embed_dim, {}
    if spec.ape:  # a parameter of the model itself: listed before submodules, as state_dict() does
        out["absolute_pos_embed"] = (1, (spec.img_size // spec.patch_size) ** 2, e)
    out["patch_embed.proj.weight"] = (e, spec.in_chans, spec.patch_size, spec.patch_size)
    out["patch_embed.proj.bias"] = (e,)
    if spec.patch_norm:
        out["patch_embed.norm.weight"] = out["patch_embed.norm.bias"] = (e,)
    for s in range(spec.num_stages):
        for b in range(spec.depths[s]):
            out.update(_block_shapes(spec, s, f"layers.{s}.blocks.{b}."))
        if s < spec.num_stages - 1:
            d = spec.dims[s]
            out[f"layers.{s}.downsample.reduction.weight"] = (2 * d, 4 * d)
            norm = 4 * d if spec.version == 1 else 2 * d
            out[f"layers.{s}.downsample.norm.weight"] = out[f"layers.{s}.downsample.norm.bias"] = (norm,)
    out["norm.weight"] = out["norm.bias"] = (spec.num_features,)
    if spec.num_classes:
        out["head.weight"], out["head.bias"] = (spec.num_classes, spec.num_features), (spec.num_classes,)
    return out


def _block_shapes(spec: SwinSpec, s: int, p: str) -> dict:
    d, h, w, hid = spec.dims[s], spec.num_heads[s], spec.window_size[s], spec.hidden_dims[s]
    out = {p + "norm1.weight": (d,), p + "norm1.bias": (d,)}
    if spec.version == 1:
        out[p + "attn.relative_position_bias_table"] = ((2 * w - 1) ** 2, h)
        out[p + "attn.qkv.weight"] = (3 * d, d)
        if spec.qkv_bias:
            out[p + "attn.qkv.bias"] = (3 * d,)
    else:
        out[p + "attn.logit_scale"] = (h, 1, 1)
        if spec.qkv_bias:
            out[p + "attn.q_bias"] = out[p + "attn.v_bias"] = (d,)
        if spec.cpb_baked:
            out[p + "attn.relative_position_bias_table"] = ((2 * w - 1) ** 2, h)
        else:
            out[p + "attn.cpb_mlp.0.weight"], out[p + "attn.cpb_mlp.0.bias"] = (CPB_HIDDEN, 2), (CPB_HIDDEN,)
            out[p + "attn.cpb_mlp.2.weight"] = (h, CPB_HIDDEN)
        out[p + "attn.qkv.weight"] = (3 * d, d)
    out[p + "attn.proj.weight"], out[p + "attn.proj.bias"] = (d, d), (d,)
    out[p + "norm2.weight"] = out[p + "norm2.bias"] = (d,)
    out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = (hid, d), (hid,)
    out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = (d, hid), (d,)
    return out


def order_like_spec(spec: SwinSpec, tensors: dict) -> dict:
    return {k: tensors[k] for k in canonical_shapes(spec) if k in tensors}


