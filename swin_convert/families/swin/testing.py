"""Helpers to build non-trivial random checkpoints (tests, demo, benchmarks).

Zero-initialised bias tables or unit logit scales hide layout bugs (a swapped table still
gives identical logits), so every tensor is re-drawn: norms around 1, biases and tables
with visible spread, V2 logit scales on both sides of the log(100) clamp.
"""
from __future__ import annotations

import math

import torch

from .spec import SwinSpec


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Re-draw every parameter of ``module`` in place, deterministically."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        p.copy_(_draw(name, p, g))
    return module


def _draw(name: str, p: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    leaf = name.rsplit(".", 1)[-1]
    rand = lambda: torch.randn(p.shape, generator=g)  # noqa: E731
    if leaf == "logit_scale":
        return torch.rand(p.shape, generator=g) * 4.0 + 1.0       # some above log(100) = 4.6
    if "relative_position_bias_table" in name:
        return rand() * 0.5
    if p.ndim == 1 and ("norm" in name or "layernorm" in name) and leaf == "weight":
        return 1.0 + 0.2 * rand()
    if p.ndim == 1:
        return 0.1 * rand()
    fan_in = p[0].numel() if p.ndim > 1 else p.numel()
    return rand() / math.sqrt(max(fan_in, 1))


def tiny_spec(version: int = 1, **kw) -> SwinSpec:
    """A small 3-stage model (embed 16, 64 px, window 4 -> last stage clamped to 4)."""
    base = dict(version=version, embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=(4, 4, 4),
                img_size=64, num_classes=10)
    base.update(kw)
    return SwinSpec(**base).validate()


def random_reference(spec: SwinSpec, seed: int = 0):
    from .reference import ReferenceSwin
    return randomize_(ReferenceSwin(spec), seed).eval()
