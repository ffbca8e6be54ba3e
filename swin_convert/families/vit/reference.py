"""A compact reference forward of a ViT / DeiT on the canonical (timm-named) weights.

``ReferenceViT(spec)``'s ``state_dict()`` keys are exactly ``shapes.canonical_shapes(spec)``,
so canonical tensors load into it with ``strict=True``. Semantics follow timm's
VisionTransformer / VisionTransformerDistilled (eval mode): patch conv, prefix tokens
[cls, dist, registers], position embedding added before (or, with ``no_embed_class``, to the
patches only before) the concatenation, optional norm_pre, pre-norm blocks with optional
layer scale, final norm or pooled fc_norm, an optional Tanh representation layer
(old timm / torchvision ``pre_logits``), head; a distilled model averages its two heads.
Attention is ``F.scaled_dot_product_attention``; GELU is the exact (erf) one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .spec import ViTSpec


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, spec: ViTSpec):
        super().__init__()
        d, eps = spec.embed_dim, spec.layer_norm_eps
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, spec.num_heads, spec.qkv_bias)
        self.ls1 = LayerScale(d) if spec.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, spec.mlp_hidden)
        self.ls2 = LayerScale(d) if spec.layer_scale else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PreLogits(nn.Module):
    def __init__(self, dim: int, size: int):
        super().__init__()
        self.fc = nn.Linear(dim, size)

    def forward(self, x):
        return torch.tanh(self.fc(x))


class PatchEmbed(nn.Module):
    def __init__(self, spec: ViTSpec):
        super().__init__()
        self.proj = nn.Conv2d(spec.in_chans, spec.embed_dim, spec.patch_size, spec.patch_size,
                              bias=not spec.pre_norm)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ReferenceViT(nn.Module):
    """Reference ViT; ``forward(images) -> logits`` (or pooled features with no head)."""

    def __init__(self, spec: ViTSpec):
        super().__init__()
        spec.validate()
        self.spec = spec
        d = spec.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if spec.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d)) if spec.distilled else None
        self.reg_token = nn.Parameter(torch.zeros(1, spec.reg_tokens, d)) if spec.reg_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_embed_len, d))
        self.patch_embed = PatchEmbed(spec)
        self.norm_pre = nn.LayerNorm(d, eps=spec.layer_norm_eps) if spec.pre_norm else nn.Identity()
        self.blocks = nn.Sequential(*[Block(spec) for _ in range(spec.depth)])
        self.norm = nn.LayerNorm(d, eps=spec.layer_norm_eps) if spec.uses_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(d, eps=spec.layer_norm_eps) if spec.uses_fc_norm else nn.Identity()
        feat = spec.representation_size or d
        self.pre_logits = PreLogits(d, feat) if spec.representation_size else nn.Identity()
        self.head = nn.Linear(feat, spec.num_classes) if spec.num_classes else nn.Identity()
        self.head_dist = nn.Linear(d, spec.num_classes) if spec.distilled and spec.num_classes else None

    def _prefix(self, b: int):
        return [t.expand(b, -1, -1) for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        prefix = self._prefix(x.shape[0])
        if self.spec.no_embed_class:
            x = torch.cat(prefix + [x + self.pos_embed], dim=1)
        else:
            x = torch.cat(prefix + [x], dim=1) + self.pos_embed
        return self.norm(self.blocks(self.norm_pre(x)))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        pool = self.spec.global_pool
        if pool == "token":
            return x[:, 0]
        if not pool:
            return x
        x = x[:, self.spec.num_prefix_tokens:]
        if pool == "avg":
            return x.mean(dim=1)
        if pool == "max":
            return x.amax(dim=1)
        return 0.5 * (x.amax(dim=1) + x.mean(dim=1))  # avgmax

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(images)
        if self.head_dist is not None:
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        return self.head(self.pre_logits(self.fc_norm(self.pool(x))))


__all__ = ["ReferenceViT", "PooledReferenceViT"]


class PooledReferenceViT(ReferenceViT):
    """The reference as ``check`` uses it: ``forward_features`` gives the pooled pre-logit features
    (what timm's ``forward_head(..., pre_logits=True)`` returns), ``forward`` the logits."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = ReferenceViT.forward_features(self, images)
        if self.head_dist is not None:
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        return self.head(self.pre_logits(self.fc_norm(self.pool(x))))

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = ReferenceViT.forward_features(self, images)
        if self.spec.distilled:
            return (x[:, 0] + x[:, 1]) / 2
        return self.pre_logits(self.fc_norm(self.pool(x)))
