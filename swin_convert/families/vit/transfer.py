"""Resolution and patch-size transfer of a canonical ViT: the plan (no torch), then the two tensors.

Only two tensors ever change: the grid rows of ``pos_embed`` (prefix rows are copied
bit-exact) and, for a new patch size, ``patch_embed.proj.weight`` (FlexiViT pseudo-inverse).
Everything else is the caller's byte copy. The new spec records the method and source grid.
"""
from __future__ import annotations

from swin_convert.errors import IncompatibleSpecError, UsageError

from .geometry import grid_of
from .spec import DEFAULT_METHOD, METHODS, PosEmbedProvenance, ViTSpec, legacy_grid, pair


def default_method(target_layout: str | None) -> str:
    """The target runtime's own resampler (deit -> hf: DeiT's --finetune = transformers >= 4.45)."""
    return DEFAULT_METHOD.get(target_layout or "timm", "timm")


def plan(spec: ViTSpec, img_size=None, patch_size=None, method: str | None = None,
         target_layout: str | None = None, target_limits=None) -> tuple[ViTSpec, list[str]]:
    """(new spec, notes) for a transfer; UsageError (exit 2) for a request that cannot be done."""
    img = pair(img_size) if img_size is not None else spec.img_size
    patch = pair(patch_size) if patch_size is not None else spec.patch_size
    method = method or default_method(target_layout)
    if method not in METHODS:
        raise UsageError(f"Unknown resampling method '{method}'.", f"Use one of: {', '.join(METHODS)}.",
                         option="--method")
    grid, bad = grid_of(img, patch)
    if bad:
        raise UsageError(*bad)
    notes = []
    new = spec.replace(img_size=img, patch_size=patch)
    if grid != spec.grid and method == "hf-legacy" and legacy_grid(spec.grid, grid) != grid:
        got = legacy_grid(spec.grid, grid)   # refused before anything is written (resample checks it again)
        raise UsageError(f"transformers <= 4.44 cannot resample a {spec.grid[0]}x{spec.grid[1]} grid to "
                         f"{grid[0]}x{grid[1]} (its scale factor gives {got[0]}x{got[1]}).", "Use --method hf.")
    if grid != spec.grid:
        prov = (spec.provenance or PosEmbedProvenance()).then(method, spec.grid, grid)
        new = new.replace(provenance=prov)
        notes.append(f"pos_embed grid {spec.grid[0]}x{spec.grid[1]} -> {grid[0]}x{grid[1]} with the {method} "
                     f"resampler ({spec.pos_prefix_rows} prefix rows kept)")
    if patch != spec.patch_size:
        notes.append(f"patch kernel {spec.patch_size[0]}x{spec.patch_size[1]} -> {patch[0]}x{patch[1]} "
                     "(FlexiViT pseudo-inverse, as timm)")
    if not notes:
        raise UsageError(f"The model already is {img[0]}x{img[1]} px with {patch[0]}x{patch[1]} patches.",
                         "Give a different --res or --patch-size.")
    if target_limits is not None:
        reason = target_limits(new)
        if reason:
            raise IncompatibleSpecError(f"After the transfer: {reason}.", "Choose another size or target layout.")
    new.validate()
    return new, notes


def apply(spec: ViTSpec, new: ViTSpec, tensors: dict, method: str | None = None) -> dict:
    """The changed canonical tensors ({name: torch tensor}) for ``spec`` -> ``new`` (from :func:`plan`)."""
    from .resample import resample_patch_embed, resample_pos_embed
    out = {}
    if new.grid != spec.grid:
        last = new.provenance.resampled[-1] if new.provenance and new.provenance.resampled else None
        method = method or (last.method if last else "timm")
        out["pos_embed"] = resample_pos_embed(tensors["pos_embed"], spec.grid, new.grid, spec.pos_prefix_rows,
                                              method)
    if new.patch_size != spec.patch_size:
        out["patch_embed.proj.weight"] = resample_patch_embed(tensors["patch_embed.proj.weight"], new.patch_size)
    return out


__all__ = ["plan", "apply", "default_method"]
