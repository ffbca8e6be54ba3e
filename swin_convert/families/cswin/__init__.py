"""CSWin Transformer family (microsoft/CSWin-Transformer): spec, geometry, canonical keys,
layouts (classification <-> segmentation backbone, containers) and a reference forward.

Pure modules; the family registry wires them in. ``reference`` imports torch, the rest does
only where a tensor must be created (layouts.cls_to_seg's default ``make``).
"""
from .geometry import (branch_counts, check_img_size, check_split, default_split, parse_split, stage_maps,
                       valid_splits)
from .shapes import canonical_keys, canonical_shapes, check_shapes, infer_spec, looks_like_cswin
from .spec import OFFICIAL_MODELS, CSWinSpec

__all__ = ["CSWinSpec", "OFFICIAL_MODELS", "branch_counts", "canonical_keys", "canonical_shapes",
           "check_img_size", "check_shapes", "check_split", "default_split", "infer_spec", "looks_like_cswin",
           "parse_split", "stage_maps", "valid_splits"]
