"""timm >= 0.9 ``swin_transformer`` / ``swin_transformer_v2``.

Patch merging moved to the *start* of the next stage (``layers.{s+1}.downsample``), the
head is ``head.fc`` and no buffer is persisted. timm has no absolute position embedding.
A folder output is ``model.safetensors`` + timm's ``config.json`` (architecture + model_args),
loaded by ``timm.create_model('local-dir:OUT', pretrained=True)``.
"""
import re

from ....core.preprocess import data_config, label_names
from ....core.runtime import forward_module, load_strict, torch_state
from ....core.schema import Layout, Runtime, Signature, rule
from ..convert import to_layout
from ..geometry import clamp_windows
from ..infer import Hints, config_int, config_ints


def _limits(spec):
    if spec.ape:
        return "timm's Swin has no absolute position embedding"
    if spec.cpb_baked:
        return "timm's Swin V2 always evaluates its CPB MLP (a baked table needs the official layout)"
    if not spec.patch_norm:
        return "timm's Swin always normalises the patch embedding"
    return None


# ----------------------------------------------------------------------------------------
# config.json
# ----------------------------------------------------------------------------------------
def architecture(spec) -> str:
    """A registered timm entry point; model_args override its hyper-parameters."""
    return "swinv2_tiny_window8_256" if spec.version == 2 else "swin_tiny_patch4_window7_224"


def window_arg(spec):
    """One int where the per-stage windows are timm's own clamp of it (every timm version takes
    that); otherwise one [w, w] pair per stage (pairs, so a 2-stage list is not read as (h, w))."""
    big = max(spec.window_size)
    if spec.window_size == clamp_windows(spec.resolutions, (big,) * spec.num_stages):
        return big
    return [[w, w] for w in spec.window_size]


def model_args(spec) -> dict:
    args = {"img_size": spec.img_size, "patch_size": spec.patch_size, "in_chans": spec.in_chans,
            "num_classes": spec.num_classes, "embed_dim": spec.embed_dim, "depths": list(spec.depths),
            "num_heads": list(spec.num_heads), "window_size": window_arg(spec),
            "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias}
    if spec.version == 2:
        args["pretrained_window_sizes"] = list(spec.pretrained_window_sizes)
    return args


def config(ckpt) -> dict:
    spec, data = ckpt.spec, data_config(ckpt)
    pre = {"tag": "swin_convert", "custom_load": False, "input_size": [spec.in_chans, spec.img_size, spec.img_size],
           "fixed_input_size": True, "interpolation": data["interpolation"], "crop_pct": data["crop_pct"],
           "crop_mode": "center", "mean": data["mean"], "std": data["std"], "num_classes": spec.num_classes,
           "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head.fc"}
    names = label_names(ckpt)
    if names:
        pre["label_names"] = names
    return {"architecture": architecture(spec), "num_classes": spec.num_classes,
            "num_features": spec.num_features, "global_pool": "avg", "model_args": model_args(spec),
            "pretrained_cfg": pre}


def configs(ckpt) -> dict:
    return {"config.json": config(ckpt)}


def read_hints(cfg: dict):
    """Geometry from a timm config.json (model_args, else the registered architecture name)."""
    if "architecture" not in cfg:
        return None
    args = cfg.get("model_args") or {}
    pre = cfg.get("pretrained_cfg") or {}
    img = config_int(args.get("img_size")) or config_int((pre.get("input_size") or [None, None])[-1])
    window = config_ints(args.get("window_size"))
    pretrained = config_ints(args.get("pretrained_window_sizes"))
    source = "config.json model_args"
    m = re.search(r"window(\d+)(?:to(\d+))?_(\d+)(?:to(\d+))?", cfg.get("architecture", ""))
    if window is None and m:   # timm's registered names spell the window out: ..._window12to24_192to384
        window, source = (int(m.group(2) or m.group(1)),), f"timm architecture name '{cfg['architecture']}'"
        if pretrained is None and m.group(2):
            pretrained = (int(m.group(1)),)
        img = img or int(m.group(4) or m.group(3))
    return Hints(img, window, pretrained, source={"window_size": source})


# ----------------------------------------------------------------------------------------
# runtime
# ----------------------------------------------------------------------------------------
def build(ckpt, output: str = "logits", workdir=None):
    import timm
    args = model_args(ckpt.spec)
    cfg = ckpt.config or {}
    if "architecture" in cfg:   # a timm folder: its own model_args are what timm users get
        args.update(cfg.get("model_args") or {})
    model = timm.create_model(architecture(ckpt.spec), pretrained=False, **args)
    load_strict(model, torch_state(to_layout(TIMM, ckpt.spec, ckpt.tensors)), "timm")
    pooled = output == "features" and ckpt.spec.num_classes
    fn = (lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)) if pooled else (lambda m, x: m(x))
    return forward_module(model, fn)


TIMM = Layout(
    name="timm",
    title="timm >= 0.9 (SwinTransformer, SwinTransformerV2)",
    rules=(
        rule("layers.{s}.downsample.{*}", "layers.{s+1}.downsample.{*}"),
        rule("head.{*}", "head.fc.{*}"),
        rule("{*}", "{*}"),
    ),
    limits=_limits,
    loads_with="timm.create_model('local-dir:OUT', pretrained=True)",
    # merging at the start of stage s+1 (never in stage 0), head.fc, no persisted buffers
    signature=Signature(required=(r"^patch_embed\.proj\.", r"^layers\.\d+\.blocks\.\d+\."),
                        preferred=(r"^head\.fc\.", r"^layers\.[1-9]\d*\.downsample\."),
                        excluded=(r"^layers\.0\.downsample\.", r"\.attn\.relative_position_index$",
                                  r"\.attn_mask$")),
    configs=configs,
    read_hints=read_hints,
    runtime=Runtime("timm", "timm", "pip install 'swin-convert[timm]'", build),
    library_name="timm",
)
