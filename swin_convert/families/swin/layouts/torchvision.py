"""torchvision ``models.swin_t / swin_s / swin_b / swin_v2_t / swin_v2_s / swin_v2_b``.

``features`` is one ``nn.Sequential``: ``features.0`` the patch embedding (conv, permute, norm),
``features.{2s+1}.{b}`` the blocks of stage s, ``features.{2s+2}`` the patch merging between
stage s and s+1; the MLP is ``mlp.0`` / ``mlp.3``. The relative position index is a persistent,
*flat* (N*N,) buffer; V2 persists its coordinate table, always normalised by the stage's own
window, and folds the q/v biases into ``qkv.bias = cat(q_bias, 0, v_bias)`` (the middle third is
zeroed again at every forward, so a non-zero one is refused on read).

torchvision pads instead of clamping, has one window for every stage and no image size: a
stage whose official clamp differs from torchvision's padding is refused, and reading needs
``--img-size``. A ``.pth`` output is a bare state dict (what ``load_state_dict`` takes); a
folder output adds a ``config.json`` with the constructor arguments.
"""
from ....core.ops import InsertZeroRows
from ....core.runtime import forward_module, load_strict, torch_state
from ....core.schema import Layout, Runtime, Signature, buffer, rule
from ..convert import to_layout
from ..infer import Hints, config_int

C = "layers.{s}.blocks.{b}"
F = "features.{2*s+1}.{b}"


def _limits(spec):
    if spec.ape:
        return "torchvision's Swin has no absolute position embedding"
    if not spec.patch_norm:
        return "torchvision's Swin always normalises the patch embedding"
    if spec.in_chans != 3:
        return f"torchvision's Swin takes 3 input channels, not {spec.in_chans}"
    if not spec.qkv_bias:
        return "torchvision's Swin always has a q/k/v bias"
    if spec.cpb_baked:
        return "torchvision's Swin V2 always evaluates its CPB MLP (a baked table needs the official layout)"
    if not spec.num_classes:
        return "torchvision's Swin always has a classification head"
    windows = set(spec.window_size)
    if len(windows) > 1:
        return (f"torchvision has one window for every stage and pads a smaller map instead of clamping the window "
                f"as official does (per-stage windows {list(spec.window_size)} at {spec.img_size} px)")
    if spec.version == 2:
        own = spec.window_size
        other = [(s, p) for s, (p, w) in enumerate(zip(spec.pretrained_window_sizes, own)) if p not in (0, w)]
        if other:
            s, p = other[0]
            return (f"torchvision normalises the V2 coordinates by each stage's own window; stage {s} was pretrained "
                    f"with window {p} (pretrained windows {list(spec.pretrained_window_sizes)})")
    return None


# ----------------------------------------------------------------------------------------
# config.json (constructor arguments; torchvision itself has no config file)
# ----------------------------------------------------------------------------------------
def model_kwargs(spec) -> dict:
    return {"patch_size": [spec.patch_size, spec.patch_size], "embed_dim": spec.embed_dim,
            "depths": list(spec.depths), "num_heads": list(spec.num_heads),
            "window_size": [spec.window_size[0], spec.window_size[0]], "mlp_ratio": spec.mlp_ratio,
            "num_classes": spec.num_classes}


def configs(ckpt) -> dict:
    spec = ckpt.spec
    v2 = spec.version == 2
    return {"config.json": {
        "library": "torchvision", "class": "torchvision.models.swin_transformer.SwinTransformer",
        "block": "SwinTransformerBlockV2" if v2 else "SwinTransformerBlock",
        "downsample_layer": "PatchMergingV2" if v2 else "PatchMerging",
        "kwargs": model_kwargs(spec), "img_size": spec.img_size}}


def read_hints(cfg: dict):
    if cfg.get("library") != "torchvision":
        return None
    window = (cfg.get("kwargs") or {}).get("window_size")
    return Hints(config_int(cfg.get("img_size")), (int(window[0]),) if window else None,
                 source={"window_size": "config.json", "pretrained_window_sizes": "config.json"})


# ----------------------------------------------------------------------------------------
# runtime
# ----------------------------------------------------------------------------------------
def build_model(spec):
    """torchvision's own SwinTransformer for ``spec`` (random weights)."""
    from torchvision.models import swin_transformer as tv
    extra = {"block": tv.SwinTransformerBlockV2, "downsample_layer": tv.PatchMergingV2} if spec.version == 2 else {}
    return tv.SwinTransformer(stochastic_depth_prob=0.0, **model_kwargs(spec), **extra)


def build(ckpt, output: str = "logits", workdir=None):
    model = build_model(ckpt.spec)
    load_strict(model, torch_state(to_layout(TORCHVISION, ckpt.spec, ckpt.tensors)), "torchvision")

    def features(m, x):
        return m.flatten(m.avgpool(m.permute(m.norm(m.features(x)))))
    return forward_module(model, features if output == "features" else (lambda m, x: m(x)))


TORCHVISION = Layout(
    name="torchvision",
    title="torchvision.models.swin_t / swin_v2_t and friends",
    rules=(
        rule("patch_embed.proj.{w}", "features.0.0.{w}"),
        rule("patch_embed.norm.{w}", "features.0.2.{w}"),
        rule((C + ".attn.q_bias", C + ".attn.v_bias"), F + ".attn.qkv.bias", versions=(2,),
             op=InsertZeroRows(at=1, parts=3)),
        rule(C + ".mlp.fc1.{w}", F + ".mlp.0.{w}"),
        rule(C + ".mlp.fc2.{w}", F + ".mlp.3.{w}"),
        rule(C + ".{*}", F + ".{*}"),
        rule("layers.{s}.downsample.{*}", "features.{2*s+2}.{*}"),
        rule("norm.{w}", "norm.{w}"),
        rule("head.{w}", "head.{w}"),
    ),
    buffers=(
        buffer("relative_position_index", F + ".attn.relative_position_index", flat=True),
        buffer("relative_coords_table", F + ".attn.relative_coords_table", versions=(2,)),
    ),
    needs=("img_size",),
    limits=_limits,
    loads_with="torchvision SwinTransformer(**config['kwargs']).load_state_dict(torch.load(OUT))",
    signature=Signature(required=(r"^features\.0\.0\.weight$", r"^features\.1\.0\.attn\."),
                        preferred=(r"\.mlp\.0\.weight$", r"^head\.weight$")),
    aliases=("tv",),
    configs=configs,
    read_hints=read_hints,
    wrap=None,
    runtime=Runtime("torchvision", "torchvision", "pip install torchvision", build),
    library_name="torchvision",
)
