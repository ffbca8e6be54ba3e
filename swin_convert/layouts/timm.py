"""timm >= 0.9 ``swin_transformer`` / ``swin_transformer_v2``.

Patch merging moved to the *start* of the next stage (``layers.{s+1}.downsample``), the
head is ``head.fc`` and no buffer is persisted. timm has no absolute position embedding.
"""
from ._schema import Layout, rule


def _limits(spec):
    if spec.ape:
        return "timm's Swin has no absolute position embedding"
    if spec.cpb_baked:
        return "timm's Swin V2 always evaluates its CPB MLP (a baked table needs the official layout)"
    if not spec.patch_norm:
        return "timm's Swin always normalises the patch embedding"
    return None


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
)
