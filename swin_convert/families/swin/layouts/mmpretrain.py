"""mmpretrain ``SwinTransformer`` / ``SwinTransformerV2`` (mmcls before it): a classifier file is
``backbone.*`` + ``head.fc.*`` (``LinearClsHead`` behind a parameter-free GAP neck); a backbone
file (what a detector built on it saves) is ``backbone.*`` only.

See ``..openmmlab`` for the key table: Unfold-ordered patch merging, V2 merge at the start of
the next stage, ``norm{S-1}`` for official ``norm``. mmpretrain's V2 takes one window per stage
and the pretrained windows, so every official geometry is expressible; its V1 takes per-stage
windows through ``stage_cfgs``. A ``.pth`` output is ``{'state_dict': ..., 'meta': {...}}``.
The V2 model deletes both persisted buffers from any incoming dict and regenerates them.
"""
import contextlib

from ....core.runtime import forward_module, raise_if_incomplete, torch_state
from ....core.schema import Layout, Runtime, Signature
from .. import openmmlab as mm
from ..convert import to_layout


def _limits(spec):
    return mm.common_limits(spec, "mmpretrain")


def write_notes(spec, other):
    return mm.norm_notes(spec, other, "built when out_indices lists them; mmpretrain's default is "
                         f"({spec.num_stages - 1},)")


# ----------------------------------------------------------------------------------------
# runtime
# ----------------------------------------------------------------------------------------
def backbone_kwargs(spec, out_indices=None) -> dict:
    arch = {"embed_dims": spec.embed_dim, "depths": list(spec.depths), "num_heads": list(spec.num_heads)}
    kw = {"img_size": spec.img_size, "patch_size": spec.patch_size, "in_channels": spec.in_chans,
          "out_indices": tuple(out_indices if out_indices is not None else (spec.num_stages - 1,)),
          "use_abs_pos_embed": spec.ape, "drop_path_rate": 0.0}
    if spec.version == 2:
        arch["extra_norm_every_n_blocks"] = 0
        kw.update(window_size=list(spec.window_size), pretrained_window_sizes=list(spec.pretrained_window_sizes))
    else:
        kw.update(window_size=spec.window_size[0],
                  stage_cfgs=[{"window_size": w} for w in spec.window_size])
    if spec.mlp_ratio != 4.0:
        kw.setdefault("stage_cfgs", [{} for _ in spec.depths])
        for cfg in kw["stage_cfgs"]:
            cfg["block_cfgs"] = {"ffn_ratio": spec.mlp_ratio}
    kw["arch"] = arch
    return kw


def build_backbone(spec, out_indices=None):
    from mmpretrain.models.backbones import SwinTransformer, SwinTransformerV2
    cls = SwinTransformerV2 if spec.version == 2 else SwinTransformer
    return cls(**backbone_kwargs(spec, out_indices))


def build_classifier(spec):
    """mmpretrain's own ImageClassifier (SwinTransformer + GlobalAveragePooling + LinearClsHead)."""
    from mmpretrain.models import ImageClassifier
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    kind = "SwinTransformerV2" if spec.version == 2 else "SwinTransformer"
    head = dict(type="LinearClsHead", num_classes=spec.num_classes, in_channels=spec.num_features) \
        if spec.num_classes else None
    return ImageClassifier(backbone=dict(type=kind, **backbone_kwargs(spec)), neck=dict(type="GlobalAveragePooling"),
                           head=head)


@contextlib.contextmanager
def _quiet_mmengine():
    """mmpretrain V2 logs (to stdout) that it regenerates its buffers; the check has its own output."""
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def build(ckpt, output: str = "logits", workdir=None):
    spec = ckpt.spec
    model = build_classifier(spec)
    state = torch_state(to_layout(MMPRETRAIN, spec, ckpt.tensors))
    with _quiet_mmengine():
        result = model.load_state_dict(state, strict=False)
    # V2 deletes its buffers from the incoming dict and regenerates them (layouts.md §1.9a)
    missing = [k for k in result.missing_keys
               if not (spec.version == 2 and k.endswith(("relative_position_index", "relative_coords_table")))]
    raise_if_incomplete("mmpretrain", missing, list(result.unexpected_keys))
    if output == "features" or not spec.num_classes:
        return forward_module(model, lambda m, x: m.extract_feat(x)[-1])
    return forward_module(model, lambda m, x: m(x, mode="tensor"))


MMPRETRAIN = Layout(
    name="mmpretrain",
    title="mmpretrain (mmcls) SwinTransformer / SwinTransformerV2 classifier or backbone",
    rules=mm.RULES + (mm.HEAD,),
    buffers=mm.BUFFERS,
    prefix={1: mm.BACKBONE, 2: mm.BACKBONE},
    limits=_limits,
    loads_with="mmengine.runner.load_checkpoint(model, OUT) (model = mmpretrain ImageClassifier / SwinTransformer)",
    # stages.*.attn.w_msa like mmdet; a head.fc, or V2 (mmdet/mmseg have none), tips it to mmpretrain
    signature=Signature(required=(r"patch_embed\.projection\.", r"stages\.\d+\.blocks\.\d+\.attn\.w_msa\."),
                        preferred=(r"^head\.fc\.", r"\.w_msa\.(logit_scale|cpb_mlp)")),
    aliases=("mmcls", "mmpretrain-classifier"),
    wrap="state_dict",
    container=mm.container,
    on_read=mm.make_on_read("mmpretrain", has_head=True),
    on_write=mm.make_on_write(),
    write_notes=write_notes,
    whole_model=mm.make_whole_model(mm.BACKBONE),
    runtime=Runtime("mmpretrain", "mmpretrain", "pip install mmpretrain==1.2.0 mmengine mmcv-lite", build),
    library_name="mmpretrain",
)
