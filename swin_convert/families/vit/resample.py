"""Position-embedding and patch-kernel resampling, each exactly as one runtime does it.

``resample_pos_embed`` keeps the prefix rows (class, distillation, register tokens) verbatim
and resizes only the grid rows, with one of five methods:

* ``timm``        - timm >= 0.9 ``resample_abs_pos_embed``: bicubic, antialias=True, in float32;
* ``hf``          - transformers >= 4.45 ``interpolate_pos_encoding``, timm 0.5-0.8 and DeiT's
  ``--finetune``: bicubic, align_corners=False, no antialias, to the target size;
* ``hf-legacy``   - transformers <= 4.44 (from DINO): bicubic by ``scale_factor=(n + 0.1) / old``,
  which places samples by that factor rather than the size ratio;
* ``torchvision`` - ``interpolate_embeddings``: bicubic, align_corners=True;
* ``bilinear``    - timm's .npz loader and timm <= 0.4: bilinear, align_corners=False, no antialias.

The grid is laid out row-major (row = height), as every runtime flattens it. Each runtime
only resamples a square source grid (timm takes any); these functions take any grid.
``resample_patch_embed`` is timm's FlexiViT pseudo-inverse kernel resize.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from swin_convert.errors import UsageError

from .spec import DEFAULT_METHOD, METHODS, pair  # noqa: F401  (DEFAULT_METHOD: re-exported)


def _interpolate(grid: torch.Tensor, old, new, method: str) -> torch.Tensor:
    """(1, C, h, w) float32 -> (1, C, H, W) with the given method."""
    if method == "timm":
        return F.interpolate(grid, size=new, mode="bicubic", align_corners=None, antialias=True)
    if method == "hf":
        return F.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    if method == "hf-legacy":
        scale = ((new[0] + 0.1) / old[0], (new[1] + 0.1) / old[1])
        out = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
        if tuple(out.shape[-2:]) != tuple(new):
            raise UsageError(f"transformers <= 4.44 cannot resample a {old[0]}x{old[1]} grid to "
                             f"{new[0]}x{new[1]} (its scale factor gives {out.shape[-2]}x{out.shape[-1]}).",
                             "Use --method hf.")
        return out
    if method == "torchvision":
        return F.interpolate(grid, size=new, mode="bicubic", align_corners=True)
    if method == "bilinear":
        return F.interpolate(grid, size=new, mode="bilinear", align_corners=False, antialias=False)
    raise UsageError(f"Unknown resampling method '{method}'.", f"Use one of: {', '.join(METHODS)}.", option="--method")


def resample_pos_embed(pos_embed: torch.Tensor, old_grid, new_grid, num_prefix: int,
                       method: str = "timm") -> torch.Tensor:
    """(1, num_prefix + h*w, D) -> (1, num_prefix + H*W, D); prefix rows copied bit-exact.

    Computed in the precision each runtime uses: float32 for timm and bilinear (timm's
    function casts), the tensor's own dtype for hf, hf-legacy and torchvision (they do not),
    and returned in the input dtype. Same grid: the input, untouched.
    """
    old, new = pair(old_grid), pair(new_grid)
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[1] != num_prefix + old[0] * old[1]:
        raise UsageError(f"pos_embed {list(pos_embed.shape)} is not {num_prefix} prefix rows plus a "
                         f"{old[0]}x{old[1]} grid.")
    if min(new) <= 0:
        raise UsageError(f"Target grid {new[0]}x{new[1]} is empty.")
    if method not in METHODS:
        raise UsageError(f"Unknown resampling method '{method}'.", f"Use one of: {', '.join(METHODS)}.",
                         option="--method")
    if old == new:
        return pos_embed
    prefix, rows = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    dim = pos_embed.shape[-1]
    work = rows.float() if method in ("timm", "bilinear") else rows
    grid = work.reshape(1, old[0], old[1], dim).permute(0, 3, 1, 2)
    grid = _interpolate(grid, old, new, method)
    rows = grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], dim).to(pos_embed.dtype)
    return torch.cat([prefix, rows], dim=1)


def patch_resize_matrix(old, new) -> torch.Tensor:
    """(H*W, h*w) matrix of timm's bicubic-antialias resize of each basis kernel (float32)."""
    old, new = pair(old), pair(new)
    n = old[0] * old[1]
    basis = torch.eye(n, dtype=torch.float32).reshape(n, 1, old[0], old[1])
    out = F.interpolate(basis, size=new, mode="bicubic", antialias=True, align_corners=False)
    return out.squeeze(1).permute(1, 2, 0).reshape(new[0] * new[1], n)


def resample_patch_embed(weight: torch.Tensor, new_size) -> torch.Tensor:
    """FlexiViT kernel resize (timm ``resample_patch_embed``): ``W @ pinv(resize matrix)``.

    The new kernel applied to patches resized old -> new (same bicubic antialias operator)
    gives the old kernel's response on the original patches, up to float error.
    """
    new = pair(new_size)
    if weight.dim() != 4:
        raise UsageError(f"A patch kernel is (out, in, h, w), got {list(weight.shape)}.")
    old = tuple(weight.shape[-2:])
    if old == new:
        return weight
    pinv = torch.linalg.pinv(patch_resize_matrix(old, new))
    c_out, c_in = weight.shape[:2]
    out = weight.reshape(c_out, c_in, -1).to(torch.float32) @ pinv
    return out.reshape(c_out, c_in, *new).to(weight.dtype)


def resize_patches(images: torch.Tensor, old_patch, new_patch) -> torch.Tensor:
    """Resize every patch of (B, C, H, W) images old -> new with the operator of
    :func:`resample_patch_embed` (used to check a patch-size transfer exactly)."""
    (ph, pw), (qh, qw) = pair(old_patch), pair(new_patch)
    b, c, h, w = images.shape
    gh, gw = h // ph, w // pw
    x = images.reshape(b, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5).reshape(-1, 1, ph, pw)
    x = F.interpolate(x.float(), size=(qh, qw), mode="bicubic", antialias=True, align_corners=False)
    x = x.reshape(b, gh, gw, c, qh, qw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, gh * qh, gw * qw).to(images.dtype)


__all__ = ["resample_pos_embed", "resample_patch_embed", "patch_resize_matrix", "resize_patches",
           "DEFAULT_METHOD", "METHODS"]
