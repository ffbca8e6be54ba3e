"""The CSWin Transformer family (microsoft/CSWin-Transformer): spec, geometry (stripe widths,
branch counts), canonical shapes and inference, classification <-> segmentation conversion,
reference forward, transfer, and its layouts (``layouts/``, one file each).

``FAMILY`` is what the registry (``swin_convert.families``) knows of CSWin. Only ``reference``
imports torch.
"""
from ...core.schema import Family
from . import family as _hooks
from .geometry import (branch_counts, check_img_size, check_split, default_split, parse_split, stage_maps,
                       valid_splits)
from .layouts import LAYOUTS
from .shapes import canonical_keys, canonical_shapes, check_shapes, infer_spec, looks_like_cswin
from .spec import OFFICIAL_MODELS, CSWinSpec

FAMILY = Family(
    name="cswin", title="CSWin Transformer", spec_type=CSWinSpec, detect_version=_hooks.detect_version,
    read=_hooks.read, to_layout=_hooks.to_layout, reference=_hooks.reference, transfer=_hooks.transfer,
    compare=_hooks.compare, card_facts=_hooks.card_facts, describe=_hooks.describe,
    metadata_key=_hooks.METADATA_KEY, write_notes=_hooks.write_notes,
)
for _layout in LAYOUTS:
    FAMILY.add_layout(_layout)

__all__ = ["FAMILY", "CSWinSpec", "OFFICIAL_MODELS", "branch_counts", "canonical_keys", "canonical_shapes",
           "check_img_size", "check_shapes", "check_split", "default_split", "infer_spec", "looks_like_cswin",
           "parse_split", "stage_maps", "valid_splits"]
