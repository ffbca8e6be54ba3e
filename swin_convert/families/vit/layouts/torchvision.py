"""torchvision.models.VisionTransformer (vit_b_16 & co.): a plain state_dict.

Fused q/k/v as ``in_proj_weight`` / ``in_proj_bias`` (timm's row order), ``mlp.0`` / ``mlp.3``
(legacy ``mlp.linear_1`` / ``mlp.linear_2``, as torchvision's released weights, read only),
``heads.pre_logits`` (+ Tanh) holds a representation layer. Square images and patches, class
token and token pooling only; LayerNorm eps 1e-6; ``in_proj_bias`` always exists (zeros
are written for a bias-free qkv).
"""
from __future__ import annotations

from .._schema import EPS, Layout, Runtime, Signature, eps_caveat, rule, single_variant
from ..spec import ViTSpec

E = "encoder.layers.encoder_layer_{b}"
C = "blocks.{b}"


def limits(spec: ViTSpec) -> str | None:
    refuse = [(spec.img_size[0] != spec.img_size[1], f"a non-square image ({spec.img_size[0]}x{spec.img_size[1]})"),
              (spec.patch_size[0] != spec.patch_size[1], "a non-square patch"),
              (spec.reg_tokens, "register tokens"), (spec.no_embed_class, "no_embed_class"),
              (not spec.class_token, "a model without class token"), (spec.distilled, "a distillation token"),
              (spec.global_pool != "token", f"'{spec.global_pool or 'no'}' pooling"), (spec.fc_norm, "fc_norm"),
              (not spec.final_norm, "a model without final norm"), (spec.layer_scale, "layer scale"),
              (spec.pre_norm, "pre-norm"), (not spec.num_classes, "a model without head")]
    what = [w for bad, w in refuse if bad]
    if what:
        return f"torchvision's VisionTransformer cannot hold {', '.join(what)}"
    return None


caveats = eps_caveat("torchvision's")
variant = variant_of_keys = single_variant


def detect(keys) -> bool:
    keys = set(keys)
    return "conv_proj.weight" in keys and "encoder.pos_embedding" in keys


def constructor_args(spec: ViTSpec) -> dict:
    """Keyword arguments of ``torchvision.models.VisionTransformer`` for this spec."""
    return {"image_size": spec.img_size[0], "patch_size": spec.patch_size[0], "num_layers": spec.depth,
            "num_heads": spec.num_heads, "hidden_dim": spec.embed_dim, "mlp_dim": spec.mlp_hidden,
            "num_classes": spec.num_classes, "representation_size": spec.representation_size or None}


def config_json(spec: ViTSpec, **_) -> dict:
    """torchvision has no config file; this sidecar names the constructor call."""
    return {"model": "torchvision.models.VisionTransformer", "kwargs": constructor_args(spec)}


def read_hints(config: dict | None) -> dict:
    hints = {"layer_norm_eps": EPS, "no_embed_class": False, "global_pool": "token"}
    kw = (config or {}).get("kwargs") or {}
    if kw.get("num_heads"):
        hints["num_heads"] = kw["num_heads"]
    if kw.get("image_size"):
        hints["img_size"] = kw["image_size"]
    return hints


def config_hints(config: dict) -> dict | None:
    """read_hints for our torchvision sidecar config.json, else None."""
    if not isinstance(config, dict) or config.get("model") != "torchvision.models.VisionTransformer":
        return None
    return read_hints(config)


def configs(ckpt) -> dict:
    return {"config.json": config_json(ckpt.spec)}


def build(ckpt, output: str = "logits", workdir=None):
    from torchvision.models import VisionTransformer

    from ....core.runtime import forward_module, load_strict, torch_state
    from .. import convert
    model = VisionTransformer(**constructor_args(ckpt.spec))
    load_strict(model, torch_state(convert.to_layout(LAYOUT, ckpt.spec, ckpt.tensors)), "torchvision")
    if output == "features":
        import torch

        def pooled(m, x):
            x = m._process_input(x)
            x = m.encoder(torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1))[:, 0]
            return m.heads.act(m.heads.pre_logits(x)) if hasattr(m.heads, "pre_logits") else x
        return forward_module(model, pooled)
    return forward_module(model, lambda m, x: m(x))


def extra_tensors(spec: ViTSpec) -> dict:
    """torchvision always has in_proj_bias: zeros (float32 numpy) where the canonical qkv has no bias."""
    if spec.qkv_bias:
        return {}
    import numpy as np
    return {f"encoder.layers.encoder_layer_{b}.self_attention.in_proj_bias": np.zeros(3 * spec.embed_dim, np.float32)
            for b in range(spec.depth)}


LAYOUT = Layout(
    name="torchvision",
    title="torchvision.models.VisionTransformer",
    rules=(
        rule("cls_token", "class_token"),
        rule("pos_embed", "encoder.pos_embedding"),
        rule("patch_embed.proj.{w}", "conv_proj.{w}"),
        rule(C + ".norm1.{w}", E + ".ln_1.{w}"),
        rule(C + ".attn.qkv.weight", E + ".self_attention.in_proj_weight"),
        rule(C + ".attn.qkv.bias", E + ".self_attention.in_proj_bias"),
        rule(C + ".attn.proj.{w}", E + ".self_attention.out_proj.{w}"),
        rule(C + ".norm2.{w}", E + ".ln_2.{w}"),
        rule(C + ".mlp.fc1.{w}", E + ".mlp.0.{w}"),
        rule(C + ".mlp.fc2.{w}", E + ".mlp.3.{w}"),
        rule("norm.{w}", "encoder.ln.{w}"),
        rule("pre_logits.fc.{w}", "heads.pre_logits.{w}"),
        rule("head.{w}", "heads.head.{w}"),
        # read only: torchvision < 0.13 MLPBlock names (its released ViT weights)
        rule(C + ".mlp.fc1.{w}", E + ".mlp.linear_1.{w}"),
        rule(C + ".mlp.fc2.{w}", E + ".mlp.linear_2.{w}"),
    ),
    limits=limits,
    loads_with="torchvision.models.VisionTransformer(**kwargs).load_state_dict(sd, strict=True)",
    signature=Signature(required=(r"^conv_proj\.weight$", r"^encoder\.pos_embedding$"),
                        preferred=(r"^encoder\.layers\.encoder_layer_\d+\.", r"^heads\.head\.", r"^class_token$")),
    configs=configs,
    read_hints=config_hints,
    wrap=None,
    runtime=Runtime("torchvision", "torchvision", "pip install torchvision", build),
    library_name="swin-convert",
)
