"""The ViT family (timm / transformers / torchvision / DeiT): canonical form = timm names + ViTSpec.

Torch-free at import: ``spec``, ``geometry``, ``shapes``, ``layouts``. Torch: ``resample``
(the five pos-embed resamplers, FlexiViT patch resize), ``transfer`` (plan/apply a new
resolution or patch size), ``reference`` (ReferenceViT, a pure-torch forward).
"""
from . import geometry, layouts, shapes
from .shapes import canonical_shapes, infer_spec
from .spec import PosEmbedProvenance, Resampling, ViTSpec

NAME = "vit"

__all__ = ["NAME", "ViTSpec", "PosEmbedProvenance", "Resampling", "canonical_shapes", "infer_spec",
           "geometry", "layouts", "shapes"]
