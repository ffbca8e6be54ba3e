"""transformers ViTForImageClassification (variant 1) / DeiTForImageClassificationWithTeacher (variant 2).

Writes the legacy on-disk names (what ``save_pretrained`` writes in 4.x and 5.x; 4.x reads
only these): ``vit.`` / ``deit.`` prefix, ``encoder.layer.N``, q/k/v split by row thirds,
``classifier`` (or ``cls_classifier`` + ``distillation_classifier``) without prefix. Reads
also the transformers 5 in-memory names (``layers.N.attention.{q,k,v,o}_proj``, ``mlp.fc1/2``)
and a ViTModel pooler (dense + tanh on the class token = the JAX representation layer).
The config must say ``layer_norm_eps`` (transformers' default is 1e-12, timm's 1e-6).
"""
from __future__ import annotations

from .._schema import Layout, Runtime, Signature, rule
from ..spec import ViTSpec

C = "blocks.{b}"
L = "encoder.layer.{b}"
N = "layers.{b}"            # transformers >= 5 module names
HF_DEFAULT_EPS = 1e-12      # ViTConfig's default when a config does not say


def limits(spec: ViTSpec) -> str | None:
    refuse = [(spec.reg_tokens, "register tokens"), (spec.no_embed_class, "a patch-only position embedding "
              "(no_embed_class)"), (not spec.class_token, "a model without class token"),
              (spec.global_pool != "token", f"'{spec.global_pool or 'no'}' pooling"),
              (spec.fc_norm, "fc_norm"), (not spec.final_norm, "a model without final norm"),
              (spec.layer_scale, "layer scale"), (spec.pre_norm, "pre-norm (norm_pre, bias-free patch conv)"),
              (spec.representation_size, "a representation layer (pre_logits)"),
              (not spec.num_classes, "a model without classification head")]
    what = [w for bad, w in refuse if bad]
    if what:
        return f"transformers' ViT/DeiT classifiers cannot hold {', '.join(what)}"
    return None


def caveats(spec: ViTSpec) -> list[str]:
    return []


def variant(spec: ViTSpec) -> int:
    return 2 if spec.distilled else 1


def variant_of_keys(keys) -> int:
    return 2 if any(k.endswith("embeddings.distillation_token") for k in keys) else 1


def detect(keys) -> bool:
    keys = list(keys)
    return (any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in keys)
            and any(k.endswith("embeddings.cls_token") for k in keys)
            and not any(".blocks." in k for k in keys))


def config_json(spec: ViTSpec, label_names=None) -> dict:
    names = list(label_names) if label_names else [f"LABEL_{i}" for i in range(spec.num_classes)]
    square = lambda p: p[0] if p[0] == p[1] else list(p)  # noqa: E731
    cfg = {"architectures": ["DeiTForImageClassificationWithTeacher" if spec.distilled
                             else "ViTForImageClassification"],
           "model_type": "deit" if spec.distilled else "vit",
           "hidden_size": spec.embed_dim, "num_hidden_layers": spec.depth, "num_attention_heads": spec.num_heads,
           "intermediate_size": spec.mlp_hidden, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
           "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "layer_norm_eps": spec.layer_norm_eps,
           "image_size": square(spec.img_size), "patch_size": square(spec.patch_size),
           "num_channels": spec.in_chans, "qkv_bias": spec.qkv_bias, "encoder_stride": spec.patch_size[0],
           "id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}
    return cfg


def preprocessor_json(spec: ViTSpec, data: dict | None = None) -> dict:
    """``preprocessor_config.json`` (ViTImageProcessor; resizes straight to the model size)."""
    data = data or {}
    resample = {"bilinear": 2, "bicubic": 3, "nearest": 0}.get(data.get("interpolation", "bicubic"), 3)
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True,
            "size": {"height": spec.img_size[0], "width": spec.img_size[1]}, "resample": resample,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(data.get("mean", (0.5, 0.5, 0.5))), "image_std": list(data.get("std", (0.5, 0.5, 0.5)))}


def read_hints(config: dict | None) -> dict:
    config = config or {}
    hints = {"layer_norm_eps": float(config.get("layer_norm_eps", HF_DEFAULT_EPS))}
    for src, dst in (("num_attention_heads", "num_heads"), ("image_size", "img_size"), ("patch_size", "patch_size")):
        if config.get(src) is not None:
            hints[dst] = config[src]
    hints["no_embed_class"] = False
    hints["global_pool"] = "token"
    return hints


def extra_tensors(spec: ViTSpec) -> dict:
    return {}


def config_hints(config: dict) -> dict | None:
    """read_hints for a transformers ViT / DeiT config.json, else None."""
    if not isinstance(config, dict) or config.get("model_type") not in ("vit", "deit"):
        return None
    return read_hints(config)


def configs(ckpt) -> dict:
    from ....core.preprocess import data_config, label_names
    return {"config.json": config_json(ckpt.spec, label_names(ckpt)),
            "preprocessor_config.json": preprocessor_json(ckpt.spec, data_config(ckpt))}


# ----------------------------------------------------------------------------------------
# runtime (check): from_pretrained of the folder users load
# ----------------------------------------------------------------------------------------
def build(ckpt, output: str = "logits", workdir=None):
    import transformers

    from ....core.runtime import forward_module, fp32_load_kwargs, quiet_transformers, raise_if_incomplete
    from ....errors import RuntimeLoadError
    folder = _folder(ckpt, workdir)
    with quiet_transformers():
        model, info = transformers.AutoModelForImageClassification.from_pretrained(
            str(folder), output_loading_info=True, **fp32_load_kwargs())   # fp32 even for a bf16 config
    raise_if_incomplete("transformers", list(info.get("missing_keys", ())), list(info.get("unexpected_keys", ())),
                        list(info.get("mismatched_keys", ())))
    if info.get("error_msgs"):
        raise RuntimeLoadError(f"transformers could not load the weights: {info['error_msgs'][0]}")
    if output == "features":
        def pooled(m, x):
            h = m.base_model(pixel_values=x).last_hidden_state
            return (h[:, 0] + h[:, 1]) / 2 if ckpt.spec.distilled else h[:, 0]
        return forward_module(model, pooled)
    return forward_module(model, lambda m, x: m(pixel_values=x).logits)


def _folder(ckpt, workdir):
    """The candidate's own folder when it is a transformers ViT folder, else the candidate written as one."""
    import json
    import os
    from pathlib import Path

    from ....core.tensors import write_safetensors
    from ....errors import RuntimeLoadError
    from .. import convert
    paths = getattr(ckpt, "input_paths", None) or []
    cfg = ckpt.config or {}
    if ckpt.source_layout == "hf" and cfg.get("model_type") in ("vit", "deit") and paths \
            and Path(paths[0]).name in ("model.safetensors", "model.safetensors.index.json"):
        return Path(paths[0]).parent
    if workdir is None:
        raise RuntimeLoadError("transformers needs a working folder to write the candidate to.")
    out = Path(workdir) / f"vit-hf-{os.getpid()}-{id(ckpt)}"
    if not out.exists():
        out.mkdir(parents=True)
        write_safetensors(out / "model.safetensors", convert.to_layout(LAYOUT, ckpt.spec, ckpt.tensors).items(),
                          {"format": "pt"})
        for name, content in configs(ckpt).items():
            (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


def _qkv(base: str, names) -> tuple[str, str, str]:
    return tuple(f"{base}.{n}.{{w}}" for n in names)


LAYOUT = Layout(
    name="hf",
    title="transformers ViTForImageClassification / DeiTForImageClassificationWithTeacher",
    rules=(
        rule("cls_token", "embeddings.cls_token"),
        rule("dist_token", "embeddings.distillation_token", versions=(2,)),
        rule("pos_embed", "embeddings.position_embeddings"),
        rule("patch_embed.proj.{w}", "embeddings.patch_embeddings.projection.{w}"),
        rule(C + ".norm1.{w}", L + ".layernorm_before.{w}"),
        rule(C + ".attn.qkv.{w}", _qkv(L + ".attention.attention", ("query", "key", "value"))),
        rule(C + ".attn.proj.{w}", L + ".attention.output.dense.{w}"),
        rule(C + ".norm2.{w}", L + ".layernorm_after.{w}"),
        rule(C + ".mlp.fc1.{w}", L + ".intermediate.dense.{w}"),
        rule(C + ".mlp.fc2.{w}", L + ".output.dense.{w}"),
        rule("norm.{w}", "layernorm.{w}"),
        rule("head.{w}", "classifier.{w}", versions=(1,), prefixed=False),
        rule("head.{w}", "cls_classifier.{w}", versions=(2,), prefixed=False),
        rule("head_dist.{w}", "distillation_classifier.{w}", versions=(2,), prefixed=False),
        # read only: transformers >= 5 module names, ViTModel's pooler
        rule(C + ".norm1.{w}", N + ".layernorm_before.{w}"),
        rule(C + ".attn.qkv.{w}", _qkv(N + ".attention", ("q_proj", "k_proj", "v_proj"))),
        rule(C + ".attn.proj.{w}", N + ".attention.o_proj.{w}"),
        rule(C + ".norm2.{w}", N + ".layernorm_after.{w}"),
        rule(C + ".mlp.fc1.{w}", N + ".mlp.fc1.{w}"),
        rule(C + ".mlp.fc2.{w}", N + ".mlp.fc2.{w}"),
        rule("pre_logits.fc.{w}", "pooler.dense.{w}"),
    ),
    prefix={1: "vit.", 2: "deit."},
    limits=limits,
    loads_with="transformers.AutoModelForImageClassification.from_pretrained(OUT)",
    signature=Signature(required=(r"embeddings\.patch_embeddings\.projection\.weight$", r"embeddings\.cls_token$"),
                        preferred=(r"^(vit|deit)\.", r"^(cls_|distillation_)?classifier\.",
                                   r"encoder\.layer\.\d+\.|(^|\.)layers\.\d+\.attention\.q_proj\."),
                        excluded=(r"\.blocks\.\d+\.",)),
    aliases=("transformers", "huggingface"),
    configs=configs,
    read_hints=config_hints,
    wrap=None,
    runtime=Runtime("transformers", "transformers", "pip install 'swin-convert[transformers]'", build),
    library_name="transformers",
)
