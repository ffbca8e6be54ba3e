"""mmseg 1.x ``SwinTransformer`` backbone (V1 only): no prefix in what ``swin2mmseg.py`` writes,
``backbone.*`` beside ``decode_head.*`` / ``auxiliary_head.*`` in a segmentor checkpoint
(``init_weights`` strips ``backbone.``).

The same blocks and behaviour as mmdet (``.mmdet``): norm0..norm3, padding, always-shifted odd
blocks. No runtime hook (mmseg does not import with mmcv-lite).
"""
from ....core.schema import Layout, Signature
from .. import openmmlab as mm
from .mmdet import limits as _mmdet_limits, notes_for


def _limits(spec):
    return _mmdet_limits(spec, "mmseg")


MMSEG = Layout(
    name="mmseg",
    title="mmseg 1.x SwinTransformer backbone (no prefix; backbone.* in segmentor checkpoints)",
    rules=mm.RULES,
    buffers=mm.BUFFERS[:1],
    prefix={1: mm.BACKBONE},            # read with or without it; written without (on_write)
    limits=_limits,
    loads_with="mmseg init_cfg=dict(type='Pretrained', checkpoint=OUT) (or load_checkpoint on the segmentor)",
    signature=Signature(required=(r"patch_embed\.projection\.", r"stages\.\d+\.blocks\.\d+\.attn\.w_msa\."),
                        preferred=(r"^(decode_head|auxiliary_head)\.", r"^patch_embed\.projection\.",
                                   r"^norm0\.weight$"),
                        excluded=(r"^head\.fc\.", r"\.w_msa\.(logit_scale|cpb_mlp)",
                                  r"^(neck|rpn_head|roi_head|bbox_head)\.")),
    aliases=("mmsegmentation",),
    wrap="state_dict",
    container=mm.container,
    on_read=mm.make_on_read("mmseg", has_head=False),
    on_write=mm.make_on_write(strip=True),
    write_notes=notes_for("mmseg"),
    whole_model=mm.make_whole_model(""),
    drops=(r"head\.",),
    library_name="mmseg",
)
