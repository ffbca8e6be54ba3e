"""The ViT family (timm / transformers / torchvision / DeiT): canonical form = timm names + ViTSpec.

``FAMILY`` is what the registry (``swin_convert.families``) knows of ViT. Torch-free at import:
``spec``, ``geometry``, ``shapes``, ``layouts``, ``convert`` (a remap never imports torch).
Torch: ``resample`` (the five pos-embed resamplers, FlexiViT patch resize), ``transfer``
(plan/apply a new resolution or patch size), ``reference`` (ReferenceViT, a pure-torch forward).
"""
from ...core.schema import Family
from . import geometry, layouts, shapes
from . import convert as _convert
from .shapes import canonical_shapes, infer_spec
from .spec import PosEmbedProvenance, Resampling, ViTSpec

NAME = "vit"


def _reference(spec):
    from .reference import PooledReferenceViT
    return PooledReferenceViT(spec)


FAMILY = Family(
    name="vit", title="Vision Transformer (ViT, DeiT)", spec_type=ViTSpec, detect_version=_convert.detect_version,
    read=_convert.read, to_layout=_convert.to_layout, reference=_reference, transfer=_convert.transfer,
    compare=_convert.compare, card_facts=_convert.card_facts, describe=_convert.describe,
    metadata_key=_convert.META_KEY,
)
for _name in ("timm", "hf", "torchvision", "deit"):       # registration order: detection ties go to timm
    FAMILY.add_layout(layouts.LAYOUTS[_name].LAYOUT)

__all__ = ["FAMILY", "NAME", "ViTSpec", "PosEmbedProvenance", "Resampling", "canonical_shapes", "infer_spec",
           "geometry", "layouts", "shapes"]
