"""Patch-grid geometry of a ViT: grids from image and patch sizes, prefix tokens, checks.

Every check returns ``None`` or a ``(message, hint)`` pair with one-line texts, so callers
choose the error type (a bad request is a UsageError, a bad file a LayoutError).
"""
from __future__ import annotations

import math

from ...errors import UsageError

# Functions take a ViTSpec (annotations only: the spec imports this module for its validate(), never
# the other way round).

POOLS = ("token", "avg", "max", "avgmax", "")


def pair(value) -> tuple[int, int]:
    """``16`` -> (16, 16); ``(h, w)`` / ``[h, w]`` -> (h, w)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise UsageError(f"A size is one number or a (height, width) pair, got {list(value)}.")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def legacy_grid(old, new) -> tuple[int, int]:
    """The grid transformers <= 4.44 reaches from ``old`` aiming at ``new``: it resizes by the scale
    factor (n + 0.1) / old, and F.interpolate sizes the output floor(old * factor) (in Python floats)."""
    (oh, ow), (nh, nw) = pair(old), pair(new)
    return math.floor(float(oh) * ((nh + 0.1) / oh)), math.floor(float(ow) * ((nw + 0.1) / ow))


def nearest_multiples(value: int, step: int) -> list[int]:
    lo = max(step, value // step * step)
    return sorted({lo, lo + step} - {value})


def grid_of(img_size, patch_size):
    """(rows, cols) of patches, or a (message, hint) pair when the patch does not tile the image."""
    (ih, iw), (ph, pw) = pair(img_size), pair(patch_size)
    if min(ph, pw) <= 0:
        return None, (f"Patch size {ph}x{pw} must be positive.", "Use e.g. 16.")
    for side, p, name in ((ih, ph, "height"), (iw, pw, "width")):
        if side <= 0 or side % p:
            return None, (f"Image {name} {side} is not a multiple of the patch size {p}.",
                          f"Use one of {nearest_multiples(side, p)}.")
    return (ih // ph, iw // pw), None


def square_side(n: int) -> int | None:
    s = math.isqrt(n) if n >= 0 else -1
    return s if s >= 0 and s * s == n else None


def check_spec(spec: ViTSpec):
    """None when the spec can be built, else (message, hint)."""
    _, bad = grid_of(spec.img_size, spec.patch_size)
    if bad:
        return bad
    if spec.num_heads <= 0 or spec.embed_dim % spec.num_heads:
        return (f"embed_dim {spec.embed_dim} is not divisible by {spec.num_heads} heads.",
                "Pass the number of heads explicitly.")
    if spec.global_pool not in POOLS:
        return (f"Unknown global pool '{spec.global_pool}'.", "Use one of: token, avg, max, avgmax, or '' (none).")
    if spec.global_pool == "token" and not spec.class_token:
        return ("Token pooling needs a class token.", "Use global_pool avg, or a model with a class token.")
    if spec.distilled and not spec.class_token:
        return ("A distilled (DeiT) ViT needs a class token.", None)
    if spec.distilled and (spec.reg_tokens or spec.global_pool != "token"):
        return ("A distilled (DeiT) ViT pools its class and distillation tokens; registers or "
                f"'{spec.global_pool}' pooling do not fit.", None)
    if spec.distilled and spec.no_embed_class:
        return ("A distilled (DeiT) ViT always embeds its class and distillation tokens (no runtime builds "
                "one with no_embed_class).", None)
    if spec.distilled and spec.representation_size:
        return ("A distilled (DeiT) ViT has no representation layer (pre_logits).", None)
    if spec.reg_tokens < 0 or spec.depth <= 0 or spec.embed_dim <= 0:
        return ("depth, embed_dim and register tokens must be positive.", None)
    return None


def resize_grid(spec: ViTSpec, img_size=None, patch_size=None):
    """Grid for a new image and/or patch size: ((rows, cols), None) or (None, (message, hint))."""
    return grid_of(img_size if img_size is not None else spec.img_size,
                   patch_size if patch_size is not None else spec.patch_size)


def parse_size(text: str) -> tuple[int, int]:
    """'224' -> (224, 224); '224,160' or '224x160' -> (224, 160) (height, width)."""
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"'{text}' is not a size.", "Give one number (square) or H,W.")
    return pair([int(p) for p in parts] if len(parts) == 2 else int(parts[0]))


__all__ = ["pair", "legacy_grid", "POOLS", "grid_of", "square_side", "check_spec", "resize_grid", "parse_size", "nearest_multiples"]
