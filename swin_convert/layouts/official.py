"""microsoft/Swin-Transformer (V1 and V2), also pre-0.9 timm: the canonical names plus buffers.

Patch merging sits at the end of stage i (i <= S-2); ``head`` is a plain Linear; the
relative position index, V2 coordinate table and shift masks are persistent buffers.
"""
from ._schema import Layout, buffer, rule

BLOCK = "layers.{s}.blocks.{b}"

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
)
