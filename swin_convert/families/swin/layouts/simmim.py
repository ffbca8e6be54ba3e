"""microsoft/Swin-Transformer SimMIM pre-training checkpoints (read only): ``{'model': ...}`` with
the encoder under ``encoder.`` (official names and buffers, no head), ``encoder.mask_token``,
and the ``decoder.*`` that reconstructs pixels. Older V2 files name the CPB MLP ``rpe_mlp``
(``utils_simmim.py:remap_pretrained_keys_swin`` renames it ``cpb_mlp``). Read as a plain,
headless Swin; the mask token and the decoder are dropped and listed.
"""
from ....core.schema import Layout, Signature, buffer, rule

BLOCK = "layers.{s}.blocks.{b}"
ENCODER = "encoder."


def on_read(tensors: dict, notes: list):
    kept, dropped = {}, []
    for key, src in tensors.items():
        if key.startswith(ENCODER) and key != ENCODER + "mask_token":
            kept[key] = src
        else:
            dropped.append(key)
    if dropped:
        groups: dict[str, int] = {}
        for k in dropped:
            g = k.split(".")[0] if k.split(".")[0] != "encoder" else k
            groups[g] = groups.get(g, 0) + 1
        notes.append(f"SimMIM pre-training parts dropped: {', '.join(f'{g}.* x{n}' if n > 1 else g for g, n in groups.items())}"
                     " (the encoder is the Swin; reconstruction decoder and mask token are not)")
    return kept, {}


def _limits(spec):
    return "simmim is a pre-training layout that swin-convert reads only (write official, timm, hf, ...)"


SIMMIM = Layout(
    name="simmim",
    title="SimMIM pre-training checkpoint (microsoft/Swin-Transformer main_simmim_pt.py), read only",
    rules=(
        rule(BLOCK + ".attn.cpb_mlp.{*}", BLOCK + ".attn.rpe_mlp.{*}", versions=(2,)),
        rule("{*}", "{*}"),
    ),
    buffers=(
        buffer("relative_position_index", BLOCK + ".attn.relative_position_index", write=False),
        buffer("relative_coords_table", BLOCK + ".attn.relative_coords_table", versions=(2,), write=False),
        buffer("attn_mask", BLOCK + ".attn_mask", write=False),
    ),
    prefix={1: ENCODER, 2: ENCODER},
    limits=_limits,
    loads_with="(read only) main_simmim_ft.py --pretrained; swin-convert remap simmim official IN -o OUT",
    signature=Signature(required=(r"^encoder\.patch_embed\.proj\.", r"^encoder\.layers\.\d+\.blocks\.\d+\."),
                        preferred=(r"^decoder\.", r"^encoder\.mask_token$")),
    on_read=on_read,
    wrap="model",
)
