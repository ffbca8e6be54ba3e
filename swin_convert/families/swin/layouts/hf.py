"""transformers Swin / Swinv2, on-disk names (what ``save_pretrained`` writes).

``swin.`` / ``swinv2.`` prefix for ``*ForImageClassification`` (none for ``*Model``), q/k/v
split along rows, Swinv2 ``key`` without bias (official q_bias/v_bias become query/value
biases), head ``classifier``. Patch merging at the end of a stage, as official. Old hub
checkpoints persist ``attention.self.relative_position_index``: read and dropped.
A folder output is ``model.safetensors`` + ``config.json`` + ``preprocessor_config.json``,
loaded by ``AutoModelForImageClassification.from_pretrained(OUT)``.
"""
import json
import os
from pathlib import Path

from ....core.preprocess import data_config, label_names
from ....core.runtime import forward_module, fp32_load_kwargs, quiet_transformers, raise_if_incomplete
from ....core.schema import Layout, Runtime, Signature, buffer, rule
from ....core.tensors import write_safetensors
from ....errors import RuntimeLoadError
from ..convert import to_layout
from ..infer import Hints, config_int, config_ints

B = "encoder.layers.{s}.blocks.{b}"
C = "layers.{s}.blocks.{b}"
SELF = B + ".attention.self"


def _limits(spec):
    windows = spec.window_size
    if spec.version == 1 and len(set(windows)) > 1:
        return (f"transformers' Swin has one window_size for every stage and cannot clamp a stage "
                f"(per-stage windows {list(windows)})")
    big = max(windows)
    if spec.version == 2 and any(w != min(big, r) for w, r in zip(windows, spec.resolutions)):
        return (f"transformers' Swinv2 has one window_size, clamped only where a stage map is smaller "
                f"(per-stage windows {list(windows)} at {spec.img_size} px)")
    if spec.cpb_baked:
        return "transformers' Swinv2 always evaluates its CPB MLP (a baked table needs the official layout)"
    if spec.version == 2 and spec.ape:
        return "transformers' Swinv2 absolute position embedding has an extra slot and does not run"
    return None


# ----------------------------------------------------------------------------------------
# config.json / preprocessor_config.json
# ----------------------------------------------------------------------------------------
def config(ckpt) -> dict:
    spec = ckpt.spec
    v2 = spec.version == 2
    cls = ("Swinv2" if v2 else "Swin") + ("ForImageClassification" if spec.num_classes else "Model")
    names = label_names(ckpt) or [f"LABEL_{i}" for i in range(spec.num_classes)]
    cfg = {"architectures": [cls], "model_type": "swinv2" if v2 else "swin", "image_size": spec.img_size,
           "patch_size": spec.patch_size, "num_channels": spec.in_chans, "embed_dim": spec.embed_dim,
           "depths": list(spec.depths), "num_heads": list(spec.num_heads), "window_size": max(spec.window_size),
           "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias, "hidden_act": "gelu",
           "use_absolute_embeddings": spec.ape, "layer_norm_eps": 1e-5, "drop_path_rate": 0.0,
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
           "encoder_stride": spec.patch_size * 2 ** (spec.num_stages - 1),
           "id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}
    if v2:
        cfg["pretrained_window_sizes"] = list(spec.pretrained_window_sizes)
    return cfg


def preprocessor(ckpt) -> dict:
    data = data_config(ckpt)
    resample = {"bilinear": 2, "bicubic": 3, "nearest": 0}.get(data["interpolation"], 3)
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True,
            "size": {"height": ckpt.spec.img_size, "width": ckpt.spec.img_size}, "resample": resample,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": data["mean"], "image_std": data["std"]}


def configs(ckpt) -> dict:
    return {"config.json": config(ckpt), "preprocessor_config.json": preprocessor(ckpt)}


def read_hints(cfg: dict):
    if cfg.get("model_type") not in ("swin", "swinv2"):
        return None
    return Hints(config_int(cfg.get("image_size")), config_ints(cfg.get("window_size")),
                 config_ints(cfg.get("pretrained_window_sizes")),
                 source={"window_size": "config.json", "pretrained_window_sizes": "config.json"})


# ----------------------------------------------------------------------------------------
# runtime
# ----------------------------------------------------------------------------------------
def build(ckpt, output: str = "logits", workdir=None):
    import transformers
    folder = _folder(ckpt, workdir)
    cls = transformers.AutoModelForImageClassification if ckpt.spec.num_classes else transformers.AutoModel
    with quiet_transformers():
        model, info = cls.from_pretrained(str(folder), output_loading_info=True, **fp32_load_kwargs())
    raise_if_incomplete("transformers", list(info.get("missing_keys", ())), list(info.get("unexpected_keys", ())),
                        list(info.get("mismatched_keys", ())))
    if info.get("error_msgs"):
        raise RuntimeLoadError(f"transformers could not load the weights: {info['error_msgs'][0]}")
    if output == "features" and ckpt.spec.num_classes:
        return forward_module(model, lambda m, x: m.base_model(pixel_values=x).pooler_output)
    if not ckpt.spec.num_classes:
        return forward_module(model, lambda m, x: m(pixel_values=x).pooler_output)
    return forward_module(model, lambda m, x: m(pixel_values=x).logits)


def _folder(ckpt, workdir) -> Path:
    """The candidate's own folder when it is a transformers folder (its config.json is what users
    load), else the candidate written as one into ``workdir``."""
    paths = getattr(ckpt, "input_paths", None) or []
    cfg = ckpt.config or {}
    if ckpt.source_layout == "hf" and cfg.get("model_type") in ("swin", "swinv2") and paths \
            and Path(paths[0]).name in ("model.safetensors", "model.safetensors.index.json"):
        return Path(paths[0]).parent
    if workdir is None:
        raise RuntimeLoadError("transformers needs a working folder to write the candidate to.")
    out = Path(workdir) / f"hf-{os.getpid()}-{id(ckpt)}"
    if not out.exists():
        out.mkdir(parents=True)
        write_safetensors(out / "model.safetensors", to_layout(HF, ckpt.spec, ckpt.tensors).items(), {"format": "pt"})
        for name, content in configs(ckpt).items():
            (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


HF = Layout(
    name="hf",
    title="transformers SwinForImageClassification / Swinv2ForImageClassification",
    rules=(
        rule("patch_embed.proj.{w}", "embeddings.patch_embeddings.projection.{w}"),
        rule("patch_embed.norm.{w}", "embeddings.norm.{w}"),
        rule("absolute_pos_embed", "embeddings.position_embeddings", versions=(1,)),
        rule(C + ".norm1.{w}", B + ".layernorm_before.{w}"),
        rule(C + ".norm2.{w}", B + ".layernorm_after.{w}"),
        rule(C + ".attn.q_bias", SELF + ".query.bias", versions=(2,)),
        rule(C + ".attn.v_bias", SELF + ".value.bias", versions=(2,)),
        rule(C + ".attn.qkv.{w}", (SELF + ".query.{w}", SELF + ".key.{w}", SELF + ".value.{w}")),
        rule(C + ".attn.relative_position_bias_table", SELF + ".relative_position_bias_table", versions=(1,)),
        rule(C + ".attn.logit_scale", SELF + ".logit_scale", versions=(2,)),
        rule(C + ".attn.cpb_mlp.{*}", SELF + ".continuous_position_bias_mlp.{*}", versions=(2,)),
        rule(C + ".attn.proj.{w}", B + ".attention.output.dense.{w}"),
        rule(C + ".mlp.fc1.{w}", B + ".intermediate.dense.{w}"),
        rule(C + ".mlp.fc2.{w}", B + ".output.dense.{w}"),
        rule("layers.{s}.downsample.{*}", "encoder.layers.{s}.downsample.{*}"),
        rule("norm.{w}", "layernorm.{w}"),
        rule("head.{w}", "classifier.{w}", prefixed=False),
    ),
    buffers=(buffer("relative_position_index", SELF + ".relative_position_index", write=False),),
    prefix={1: "swin.", 2: "swinv2."},
    limits=_limits,
    loads_with="transformers.AutoModelForImageClassification.from_pretrained(OUT)",
    signature=Signature(required=(r"embeddings\.patch_embeddings\.",), preferred=(r"^swin(v2)?\.", r"^classifier\.")),
    aliases=("transformers", "huggingface"),
    configs=configs,
    read_hints=read_hints,
    runtime=Runtime("transformers", "transformers", "pip install 'swin-convert[transformers]'", build),
    library_name="transformers",
)
