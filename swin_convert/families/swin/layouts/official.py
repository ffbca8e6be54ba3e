"""microsoft/Swin-Transformer (V1 and V2), also pre-0.9 timm: the canonical names plus buffers.

Patch merging sits at the end of stage i (i <= S-2); ``head`` is a plain Linear; the
relative position index, V2 coordinate table and shift masks are persistent buffers.
A ``.pth`` output is ``{'model': state_dict}``, what the official ``load_pretrained`` reads;
a folder output is ``model.safetensors`` + a ``config.json`` holding our spec.
"""
from ....core.schema import Layout, Signature, buffer, rule

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
    signature=Signature(required=(r"^patch_embed\.proj\.", r"^layers\.\d+\.blocks\.\d+\."),
                        preferred=(r"^layers\.0\.downsample\.", r"^head\.weight$"),
                        excluded=(r"^head\.fc\.",)),
    aliases=("microsoft",),
    configs=configs,
    wrap="model",
)
