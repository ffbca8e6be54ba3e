"""microsoft/CSWin-Transformer segmentation backbone (segmentation/backbone/cswin_transformer.py).

Same names as classification for stem, blocks and merges; no ``norm``/``head``; per-stage output
norms ``norm1..norm4`` (``norm4`` <-> canonical ``norm``, explicitly: the official seg loader does
not map it); ``qkv`` always has a bias; merge widths ``dim * heads[i+1] // heads[i]`` (so only
heads that double at every stage hold classification weights). mmseg checkpoints hold it under
``backbone.`` beside ``decode_head.*`` / ``auxiliary_head.*`` (read; the heads are dropped with a
note). Written bare, the backbone's own state dict (what ``init_weights(pretrained=OUT)`` loads);
a ``.pth`` output is ``{'state_dict': ...}``, the key mmcv_custom's loader picks first.
"""
from ....core.schema import Layout, Signature, rule
from . import common

PREFIX = "backbone."


def _limits(spec):
    h = spec.num_heads
    if any(h[i + 1] != 2 * h[i] for i in range(len(h) - 1)):
        return (f"its merge widths follow the heads {list(h)} (dim * heads[i+1] // heads[i]) and cannot hold "
                f"classification weights of widths {list(spec.dims)}; only heads that double at every stage fit")
    one = [s + 1 for s in range(3) if spec.branches[s] == 1]
    if one:
        return (f"stage(s) {one} have one attention branch (split == map) and the seg backbone always builds "
                "two there")
    return None


def configs(ckpt) -> dict:
    return {"config.json": common.config(ckpt, "seg")}


SEG = Layout(
    name="seg",
    title="microsoft/CSWin-Transformer segmentation backbone (mmseg, norm1..norm4)",
    rules=(rule("norm.{w}", "norm4.{w}", versions=(1,)), rule("{*}", "{*}", versions=(1,))),
    limits=_limits,
    loads_with="CSWin backbone init_weights(pretrained=OUT) (mmcv_custom load_checkpoint, non-strict)",
    signature=Signature(required=(r"^(backbone\.)?stage1_conv_embed\.0\.weight$", r"^(backbone\.)?norm4\.weight$"),
                        preferred=(r"^backbone\.", r"^decode_head\.", r"^(backbone\.)?norm1\.weight$")),
    aliases=("cswin-seg", "mmseg"),
    configs=configs,
    read_hints=common.read_hints,
    wrap="state_dict",
)
