"""Registry of key layouts and layout detection."""
from __future__ import annotations

from ..errors import LayoutError, UsageError
from ._schema import Buffer, Layout, Rule, Template
from .hf import HF
from .official import OFFICIAL
from .timm import TIMM

LAYOUTS: dict[str, Layout] = {}
ALIASES = {"transformers": "hf", "huggingface": "hf", "microsoft": "official"}


def register(layout: Layout, *, overwrite: bool = False) -> None:
    """Add a layout; refuses to replace one silently."""
    if layout.name in LAYOUTS and not overwrite:
        raise ValueError(f"Layout '{layout.name}' is already registered; pass overwrite=True to replace it.")
    LAYOUTS[layout.name] = layout


for _layout in (OFFICIAL, TIMM, HF):
    register(_layout)


def get_layout(name: str) -> Layout:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in LAYOUTS:
        raise UsageError(f"Unknown layout '{name}'.", f"Use one of: {', '.join(LAYOUTS)} (or auto to detect).")
    return LAYOUTS[key]


def detect_version(keys) -> int:
    v2_markers = ("logit_scale", "cpb_mlp", "continuous_position_bias_mlp", "q_bias")
    return 2 if any(k.endswith(m) or f".{m}." in k for k in keys for m in v2_markers) else 1


def detect_layout(keys) -> tuple[Layout, int]:
    """Guess (layout, version) from key names alone (no tensor data)."""
    keys = list(keys)
    version = detect_version(keys)
    if any("embeddings.patch_embeddings." in k for k in keys):
        return HF, version
    if not any(k.startswith("patch_embed.") for k in keys):
        sample = ", ".join(keys[:3]) or "no tensors"
        raise LayoutError(f"This is not a Swin checkpoint in a known layout ({len(keys)} tensors, e.g. {sample}).",
                          f"Pass FROM explicitly ({', '.join(LAYOUTS)}) if it is one.")
    # timm >= 0.9 moved merging to the start of the next stage: layers.0 never has one
    if any(k.startswith("layers.0.downsample.") for k in keys):
        return OFFICIAL, version
    if any(".downsample." in k for k in keys) or "head.fc.weight" in keys:
        return TIMM, version
    return OFFICIAL, version  # one stage, no head: both layouts name every key the same


__all__ = ["Buffer", "Layout", "Rule", "Template", "LAYOUTS", "get_layout", "detect_layout", "detect_version",
           "register", "OFFICIAL", "TIMM", "HF"]
