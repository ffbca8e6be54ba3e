"""microsoft/Swin-Transformer (V1 and V2), also pre-0.9 timm: the canonical names plus buffers.

A detection / segmentation release (Swin-Transformer-Object-Detection, ...-Semantic-Segmentation)
holds the same names under ``backbone.`` with output norms ``norm0..norm{S-1}`` beside ``neck.*`` /
heads: read as official, the rest kept as other tensors. Patch merging sits at the end of stage i (i <= S-2); ``head`` is a plain Linear; the
relative position index, V2 coordinate table and shift masks are persistent buffers.
A ``.pth`` output is ``{'model': state_dict}``, what the official ``load_pretrained`` reads;
a folder output is ``model.safetensors`` + a ``config.json`` holding our spec.
"""
from ....core.schema import Layout, Signature, buffer, rule
from .. import openmmlab

BLOCK = "layers.{s}.blocks.{b}"


def configs(ckpt) -> dict:
    return {"config.json": {"swin_convert_spec": ckpt.spec.to_dict(), "layout": "official"}}


OFFICIAL = Layout(
    name="official",
    title="microsoft/Swin-Transformer (and timm < 0.9)",
    rules=(rule("{*}", "{*}"),),
    buffers=(
        buffer("relative_position_index", BLOCK + ".attn.relative_position_index"),
        buffer("relative_coords_table", BLOCK + ".attn.relative_coords_table", versions=(2,)),
        buffer("attn_mask", BLOCK + ".attn_mask"),
    ),
    loads_with="torch.load(path)['model'] into models/swin_transformer{,_v2}.py",
    # merging at the end of stage 0, head a plain Linear; timm >= 0.9 has neither
    # official detection/segmentation releases: the same names under backbone., norm0..norm{S-1}
    signature=Signature(required=(r"^(backbone\.)?patch_embed\.proj\.", r"^(backbone\.)?layers\.\d+\.blocks\.\d+\."),
                        preferred=(r"^(backbone\.)?layers\.0\.downsample\.", r"^head\.weight$"),
                        excluded=(r"^head\.fc\.",)),
    aliases=("microsoft",),
    configs=configs,
    wrap="model",
    on_read=openmmlab.make_on_read("official", has_head=False, stage_word="layers", strip=True, require_norm=False),
)
