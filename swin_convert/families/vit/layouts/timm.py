"""timm >= 0.9 VisionTransformer / VisionTransformerDistilled (canonical names, no renames).

Written as a ``save_for_hf`` folder (model.safetensors + config.json with ``model_args``)
that ``timm.create_model('local-dir:OUT', pretrained=True)`` rebuilds. timm 1.0 has no
representation layer: its checkpoint filter silently drops ``pre_logits.*``, so it is refused.
"""
from __future__ import annotations

import re

from .._schema import EPS, Layout, Runtime, Signature, eps_caveat, rule, single_variant
from ..shapes import TEMPLATES
from ..spec import ViTSpec


def limits(spec: ViTSpec) -> str | None:
    if spec.representation_size:
        return ("timm >= 0.9 has no representation layer (pre_logits) and would drop it silently; "
                "use the torchvision or deit layout")
    return None


caveats = eps_caveat("timm's")
variant = variant_of_keys = single_variant


def detect(keys) -> bool:
    keys = set(keys)
    return ("patch_embed.proj.weight" in keys and "pos_embed" in keys
            and any(k.startswith("blocks.0.attn.qkv.") for k in keys))


def architecture(spec: ViTSpec) -> str:
    """A registered timm entry point of the right class; model_args set every hyper-parameter."""
    return "deit_tiny_distilled_patch16_224" if spec.distilled else "vit_tiny_patch16_224"


def model_args(spec: ViTSpec) -> dict:
    args = {"img_size": list(spec.img_size), "patch_size": list(spec.patch_size), "in_chans": spec.in_chans,
            "num_classes": spec.num_classes, "embed_dim": spec.embed_dim, "depth": spec.depth,
            "num_heads": spec.num_heads, "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias,
            "class_token": spec.class_token, "reg_tokens": spec.reg_tokens,
            "no_embed_class": spec.no_embed_class, "global_pool": spec.global_pool, "fc_norm": spec.fc_norm,
            "pre_norm": spec.pre_norm, "final_norm": spec.final_norm}
    if spec.layer_scale:
        args["init_values"] = 1e-5   # only switches LayerScale on; the gammas are loaded
    return args


def config_json(spec: ViTSpec, data: dict | None = None, label_names=None) -> dict:
    """timm ``config.json``; ``data`` may carry mean/std/interpolation/crop_pct."""
    data = data or {}
    pre = {"tag": "swin_convert", "custom_load": False, "input_size": [spec.in_chans, *spec.img_size],
           "fixed_input_size": True, "interpolation": data.get("interpolation", "bicubic"),
           "crop_pct": data.get("crop_pct", 0.9), "crop_mode": "center",
           "mean": list(data.get("mean", (0.485, 0.456, 0.406))), "std": list(data.get("std", (0.229, 0.224, 0.225))),
           "num_classes": spec.num_classes, "pool_size": None, "first_conv": "patch_embed.proj",
           "classifier": ["head", "head_dist"] if spec.distilled else "head"}
    if label_names:
        pre["label_names"] = list(label_names)
    cfg = {"architecture": architecture(spec), "num_classes": spec.num_classes,
           "num_features": spec.embed_dim, "model_args": model_args(spec), "pretrained_cfg": pre}
    if spec.global_pool:
        cfg["global_pool"] = spec.global_pool
    return cfg


_NAME = re.compile(r"patch(\d+)_(\d+)")


def read_hints(config: dict | None) -> dict:
    """Spec fields a timm config.json states (model_args first, then pretrained_cfg, then the name)."""
    config = config or {}
    args = dict(config.get("model_args") or {})
    pre = config.get("pretrained_cfg") or {}
    hints = {"layer_norm_eps": EPS}
    for key in ("num_heads", "img_size", "patch_size", "global_pool", "no_embed_class"):
        if args.get(key) is not None:
            hints[key] = args[key]
    if "img_size" not in hints and pre.get("input_size"):
        hints["img_size"] = list(pre["input_size"][1:])
    name = config.get("architecture", "")
    m = _NAME.search(name)
    if m:
        hints.setdefault("patch_size", int(m.group(1)))
        hints.setdefault("img_size", int(m.group(2)))
    if "global_pool" not in hints and isinstance(config.get("global_pool"), str):
        hints["global_pool"] = config["global_pool"]
    if "no_embed_class" not in hints and "deit3" in name:
        hints["no_embed_class"] = True
    return hints


def extra_tensors(spec: ViTSpec) -> dict:
    return {}


def config_hints(config: dict) -> dict | None:
    """read_hints for a config.json that is timm's (has ``architecture``), else None."""
    if not isinstance(config, dict) or "architecture" not in config:
        return None
    return read_hints(config)


def configs(ckpt) -> dict:
    from ....core.preprocess import label_names
    return {"config.json": config_json(ckpt.spec, _data(ckpt), label_names(ckpt))}


def _data(ckpt) -> dict:
    from ....core.preprocess import data_config
    return data_config(ckpt)


# ----------------------------------------------------------------------------------------
# runtime (check): timm's own class, weights loaded strictly
# ----------------------------------------------------------------------------------------
def create(spec: ViTSpec, **extra):
    import timm
    return timm.create_model(architecture(spec), pretrained=False, **model_args(spec), **extra)


def build(ckpt, output: str = "logits", workdir=None):
    from ....core.runtime import forward_module, load_strict, torch_state
    from .. import convert
    model = create(ckpt.spec)
    load_strict(model, torch_state(convert.to_layout(LAYOUT, ckpt.spec, ckpt.tensors)), "timm")
    if output == "features" and ckpt.spec.num_classes:
        return forward_module(model, lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True))
    return forward_module(model, lambda m, x: m(x))


LAYOUT = Layout(
    name="timm",
    title="timm >= 0.9 (VisionTransformer, VisionTransformerDistilled)",
    rules=tuple(rule(t, t) for t in TEMPLATES if not t.startswith("pre_logits")),
    limits=limits,
    loads_with="timm.create_model('local-dir:OUT', pretrained=True)",
    # timm's names; DeiT / timm < 0.9 markers (pre_logits, gamma_1) belong to the deit layout
    signature=Signature(required=(r"^patch_embed\.proj\.weight$", r"^pos_embed$", r"^blocks\.\d+\.attn\.qkv\.weight$"),
                        preferred=(r"^head\.weight$", r"^cls_token$", r"^norm\.weight$"),
                        excluded=(r"^pre_logits\.", r"\.gamma_[12]$")),
    configs=configs,
    read_hints=config_hints,
    wrap=None,
    runtime=Runtime("timm", "timm", "pip install 'swin-convert[timm]'", build),
    library_name="timm",
)
