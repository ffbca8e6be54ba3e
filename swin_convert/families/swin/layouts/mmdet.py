"""mmdet 3.x ``SwinTransformer`` backbone (V1 only; mmdet has no Swin V2): ``backbone.*`` keys, in a
backbone file or beside ``neck.*`` / ``rpn_head.*`` / ``roi_head.*`` in a detector checkpoint.

See ``..openmmlab`` for the key table. mmdet keeps only ``backbone.``-prefixed keys at
``init_weights``, builds ``norm0..norm3`` (out_indices (0, 1, 2, 3)), pads instead of clamping and
always shifts odd blocks, even where a stage map equals its window (official does not): the
output says so. ``mmdet`` cannot be imported with mmcv-lite, so there is no runtime hook; the
keys are tested against the facts in layouts.md §1.9a and through mmpretrain's identical blocks.
"""
from ....core.schema import Layout, Signature
from .. import openmmlab as mm


def limits(spec, library="mmdet"):
    if spec.version == 2:
        return f"{library} has no Swin V2 (mmpretrain has one)"
    if spec.mlp_ratio != 4.0:
        return f"{library}'s SwinTransformer takes mlp_ratio 4 only"
    return mm.equal_windows_limit(spec, library) or mm.common_limits(spec, library)


def notes_for(library: str):
    def write_notes(spec, other):
        head = [f"the classification head ({spec.num_classes} classes) is dropped: a {library} backbone has none"] \
            if spec.num_classes else []
        return (head + mm.norm_notes(spec, other, f"{library} builds them for out_indices (0, 1, 2, 3)")
                + mm.shift_note(spec, library))
    return write_notes


MMDET = Layout(
    name="mmdet",
    title="mmdet 3.x SwinTransformer backbone (backbone.*; detector checkpoints)",
    rules=mm.RULES,
    buffers=mm.BUFFERS[:1],
    prefix={1: mm.BACKBONE},
    limits=limits,
    loads_with="mmdet init_cfg=dict(type='Pretrained', checkpoint=OUT) (or load_checkpoint on the detector)",
    signature=Signature(required=(r"^backbone\.patch_embed\.projection\.", r"^backbone\.stages\.\d+\.blocks\.\d+"
                                  r"\.attn\.w_msa\."),
                        preferred=(r"^(neck|rpn_head|roi_head|bbox_head)\.", r"^backbone\.norm0\."),
                        excluded=(r"^head\.fc\.", r"\.w_msa\.(logit_scale|cpb_mlp)", r"^decode_head\.")),
    aliases=("mmdetection",),
    wrap="state_dict",
    container=mm.container,
    on_read=mm.make_on_read("mmdet", has_head=False),
    on_write=mm.make_on_write(),
    write_notes=notes_for("mmdet"),
    whole_model=mm.make_whole_model(mm.BACKBONE),
    drops=(r"head\.",),
    library_name="mmdet",
)
