"""The registry of model families and their layouts, and detection.

Everything family-neutral (reading, writing, the Hub, the check engine, the CLI) reaches a
family only through here. Adding a layout is one file in its family's ``layouts/`` plus one
line in that family's layout list (or ``register_layout`` at run time); adding a family is one
folder plus one line in ``_FAMILIES``.
"""
from __future__ import annotations

import importlib

from ..core.checkpoint import Assumptions, CanonicalCheckpoint
from ..core.schema import Family, Layout
from ..errors import BadInputError, LayoutError, UsageError

_FAMILIES = ("swin", "vit", "cswin")          # swin_convert.families.<name>.FAMILY, in detection order
FAMILIES: dict[str, Family] = {}
WHOLE_MODEL_PARTS = ("neck", "rpn_head", "roi_head", "bbox_head", "decode_head", "auxiliary_head", "mask_head")


def _load() -> dict[str, Family]:
    if not FAMILIES:
        for name in _FAMILIES:
            FAMILIES[name] = importlib.import_module(f"{__name__}.{name}").FAMILY
    return FAMILIES


def get_family(name: str) -> Family:
    families = _load()
    if name not in families:
        raise UsageError(f"Unknown model family '{name}'.", f"Use one of: {', '.join(families)}.")
    return families[name]


def register_family(family: Family, *, overwrite: bool = False) -> None:
    families = _load()
    if family.name in families and not overwrite:
        raise ValueError(f"Family '{family.name}' is already registered; pass overwrite=True to replace it.")
    families[family.name] = family


def register_layout(layout: Layout, family: str = "swin", *, overwrite: bool = False) -> None:
    """Add a layout to a family; refuses to replace one silently."""
    get_family(family).add_layout(layout, overwrite=overwrite)


def all_layouts() -> list[Layout]:
    return [lay for fam in _load().values() for lay in fam.layouts.values()]


def layout_names(family: str | None = None) -> list[str]:
    fams = [get_family(family)] if family else list(_load().values())
    return list(dict.fromkeys(n for f in fams for n in f.layouts))


def get_layout(name: str, family: str | None = None) -> Layout:
    """A layout by name or alias (``transformers`` = ``hf``), in ``family`` or the first family that has it."""
    key = name.lower()
    fams = [get_family(family)] if family else list(_load().values())
    for fam in fams:
        for lay in fam.layouts.values():
            if key == lay.name or key in lay.aliases:
                return lay
    raise UsageError(f"Unknown layout '{name}'.", f"Use one of: {', '.join(layout_names(family))} (or auto to detect).")


def family_of(layout: Layout) -> Family:
    return get_family(layout.family)


def detect(keys) -> tuple[Family, Layout, int]:
    """(family, layout, version) from key names alone (no tensor data): the best-scoring signature."""
    keys = list(keys)
    best, best_score = None, 0.0
    for fam in _load().values():
        for lay in fam.layouts.values():
            score = lay.signature.score(keys)
            if score > best_score:
                best, best_score = (fam, lay), score
    if best is None:
        heads = sorted({k.split(".")[0] for k in keys if k.split(".")[0] in WHOLE_MODEL_PARTS})
        if heads and not any(k.startswith("backbone.") for k in keys):
            raise LayoutError(f"This detector/segmentor checkpoint holds no backbone ({len(keys)} tensors under "
                              f"{', '.join(h + '.' for h in heads)}; no backbone.* tensors).",
                              "Pass the checkpoint that holds the Swin backbone.")
        sample = ", ".join(keys[:3]) or "no tensors"
        near = sorted(all_layouts(), key=lambda lay: -lay.signature.closeness(keys))
        close = [f"{lay.family}/{lay.name}" for lay in near if lay.signature.closeness(keys) > 0][:3]
        names = ", ".join(layout_names())
        hint = (f"Closest: {', '.join(close)}. " if close else "") + f"Pass FROM explicitly ({names}) if it is one."
        known = " or ".join(f.title.split(" (")[0] for f in _load().values())
        raise LayoutError(f"This is not a checkpoint of a known family ({known}) in a known layout "
                          f"({len(keys)} tensors, e.g. {sample}).",
                          hint if close else f"Pass FROM explicitly ({names}) if it is one.")
    fam, lay = best
    return fam, lay, fam.detect_version(keys)


def detect_layout(keys) -> tuple[Layout, int]:
    _, lay, version = detect(keys)
    return lay, version


def read_checkpoint(raw, layout: str, flags: dict, display: str) -> CanonicalCheckpoint:
    """A raw checkpoint (``io.reading.RawCheckpoint``) in ``layout`` (or ``auto``) -> canonical form."""
    chosen = None
    try:
        fam, detected, version = detect(raw.tensors)
        chosen = detected if layout == "auto" else _claimed_layout(layout, fam)
        if chosen is not detected and layout != "auto":
            _check_claimed(chosen, detected, raw)
            fam = family_of(chosen)
            version = fam.detect_version(raw.tensors)
        notes = Assumptions()
        result = fam.read(raw, chosen, version, flags or {}, notes)   # (spec, tensors[, other]); may add raw.notes
    except BadInputError as e:   # LayoutError included: say which file, read as which layout
        if e.path is None:
            e.path = raw.path
        if isinstance(e, LayoutError) and e.layout is None and chosen is not None:
            e.layout = chosen.name
        raise
    spec, tensors, other = result if len(result) == 3 else (*result, {})
    return CanonicalCheckpoint(spec, tensors, display, chosen.name, notes, raw.metadata, raw.config,
                               notes=list(raw.notes), input_paths=[raw.path, *getattr(raw, "shards", ())],
                               family=fam.name, other=other)


def _claimed_layout(name: str, detected_family: Family) -> Layout:
    """FROM as named in the detected family first (``official`` is a layout of several families)."""
    try:
        return get_layout(name, detected_family.name)
    except UsageError:
        return get_layout(name)


def _check_claimed(chosen: Layout, detected: Layout, raw) -> None:
    """FROM given explicitly but the keys say otherwise: say so before anything else fails."""
    if {chosen.name, detected.name} <= {"official", "timm"} and not any(".downsample." in k for k in raw.tensors):
        return  # one-stage models name every key alike in both
    if chosen.family == detected.family == "vit" and {chosen.name, detected.name} <= {"timm", "deit"}:
        return  # DeiT / old timm files use timm's names; only pre_logits / gamma_1 tell them apart
    if chosen.family != detected.family:
        raise LayoutError(f"'{raw.path.name}' looks like a {detected.family} {detected.name} checkpoint, not "
                          f"{chosen.family} {chosen.name}.", f"Use FROM={detected.name} or auto.", layout=chosen.name)
    if chosen.family == detected.family and chosen.signature.score(raw.tensors) > 0:
        return  # key-compatible (an mmdet backbone without norm0.. is key for key an mmpretrain one)
    raise LayoutError(f"'{raw.path.name}' looks like a {detected.name} checkpoint, not {chosen.name}.",
                      f"Use FROM={detected.name} or auto.", layout=chosen.name)


def to_layout(layout: Layout, spec, tensors: dict) -> dict:
    """Canonical tensors -> ``layout``'s keys, with its persisted buffers."""
    return family_of(layout).to_layout(layout, spec, tensors)


__all__ = ["FAMILIES", "get_family", "register_family", "register_layout", "get_layout", "layout_names",
           "all_layouts", "detect", "detect_layout", "read_checkpoint", "to_layout", "family_of"]
