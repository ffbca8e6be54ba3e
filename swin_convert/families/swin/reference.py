"""A compact reference forward of Swin V1/V2 on the canonical weights.

``ReferenceSwin(spec)`` is an ``nn.Module`` whose ``state_dict()`` keys are exactly the
canonical names (official names without buffers), so canonical tensors load into it with
``strict=True``. Semantics follow microsoft/Swin-Transformer: window partition, cyclic
shift with -100 masks, clamped per-stage windows (already in the spec), V1 relative bias,
V2 cosine attention with the logit scale clamped at log(100) and a 16*sigmoid CPB bias,
res-post-norm, patch merging (V1 norm before the reduction, V2 after), absolute position
embedding. Attention runs through ``F.scaled_dot_product_attention``: windows and heads
share one batch-like axis so the bias and shift mask broadcast over the batch without copies.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import geometry
from .spec import CPB_HIDDEN, SwinSpec

LOGIT_SCALE_MAX = math.log(1.0 / 0.01)


def _buffer(array) -> torch.Tensor:
    return torch.from_numpy(array.copy())


class WindowAttention(nn.Module):
    def __init__(self, spec: SwinSpec, dim: int, heads: int, window: int, pretrained_window: int):
        super().__init__()
        self.version, self.heads, self.window = spec.version, heads, window
        n = window * window
        self.register_buffer("relative_position_index",
                             _buffer(geometry.relative_position_index(window)).view(n * n), persistent=False)
        if spec.version == 1:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            self.qkv = nn.Linear(dim, 3 * dim, bias=spec.qkv_bias)
        else:
            self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), math.log(10.0)))
            self.baked = spec.cpb_baked
            if self.baked:  # 16*sigmoid(cpb_mlp(coords)) evaluated once, stored as a table
                self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            else:
                self.cpb_mlp = nn.Sequential(nn.Linear(2, CPB_HIDDEN), nn.ReLU(inplace=True),
                                             nn.Linear(CPB_HIDDEN, heads, bias=False))
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            if spec.qkv_bias:
                self.q_bias = nn.Parameter(torch.zeros(dim))
                self.v_bias = nn.Parameter(torch.zeros(dim))
            else:
                self.q_bias = self.v_bias = None
            table = geometry.relative_coords_table(window, pretrained_window)
            self.register_buffer("relative_coords_table", _buffer(table), persistent=False)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        """(nH, N, N) additive bias of this window."""
        if self.version == 1 or self.baked:
            table = self.relative_position_bias_table
        else:
            table = 16 * torch.sigmoid(self.cpb_mlp(self.relative_coords_table).view(-1, self.heads))
        n = self.window * self.window
        return table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, nW, N, C) windows; mask: (nW, N, N) or None."""
        b, nw, n, c = x.shape
        bias = None
        if self.version == 2 and self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        elif self.version == 1:
            bias = self.qkv.bias
        qkv = F.linear(x, self.qkv.weight, bias).view(b, nw, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, b, nw * self.heads, n, c // self.heads)
        attn_bias = self.position_bias().to(x.dtype).unsqueeze(0)            # (1, nH, N, N)
        if mask is not None:
            attn_bias = attn_bias + mask.to(x.dtype).unsqueeze(1)            # (nW, nH, N, N)
        attn_bias = attn_bias.expand(nw, -1, -1, -1).reshape(1, nw * self.heads, n, n)
        if self.version == 1:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
        else:
            scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp().to(x.dtype)  # (nH,1,1)
            q = F.normalize(q, dim=-1).view(b, nw, self.heads, n, -1) * scale
            out = F.scaled_dot_product_attention(q.view(b, nw * self.heads, n, -1), F.normalize(k, dim=-1),
                                                 v, attn_mask=attn_bias, scale=1.0)
        out = out.view(b, nw, self.heads, n, -1).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, spec: SwinSpec, stage: int, shift: int):
        super().__init__()
        dim, res, window = spec.dims[stage], spec.resolutions[stage], spec.window_size[stage]
        pretrained = spec.pretrained_window_sizes[stage] if spec.version == 2 else 0
        self.version, self.res, self.window, self.shift = spec.version, res, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(spec, dim, spec.num_heads[stage], window, pretrained)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, spec.hidden_dims[stage])
        mask = geometry.attn_mask(res, window, shift)
        self.register_buffer("attn_mask", None if mask is None else _buffer(mask), persistent=False)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        r, w, s = self.res, self.window, self.shift
        x = x.view(b, r, r, c)
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        n = r // w
        win = x.view(b, n, w, n, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, n * n, w * w, c)
        win = self.attn(win, self.attn_mask)
        x = win.view(b, n, n, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, r, r, c)
        if s:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        return x.reshape(b, r * r, c)

    def forward(self, x):
        if self.version == 1:
            x = x + self._attention(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = x + self.norm1(self._attention(x))
        return x + self.norm2(self.mlp(x))


class PatchMerging(nn.Module):
    def __init__(self, spec: SwinSpec, stage: int):
        super().__init__()
        dim = spec.dims[stage]
        self.version, self.res = spec.version, spec.resolutions[stage]
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim if spec.version == 1 else 2 * dim)

    def forward(self, x):
        b, _, c = x.shape
        x = x.view(b, self.res, self.res, c)
        # official order: [x(0::2,0::2), x(1::2,0::2), x(0::2,1::2), x(1::2,1::2)] on channels
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        x = x.view(b, -1, 4 * c)
        if self.version == 1:
            return self.reduction(self.norm(x))
        return self.norm(self.reduction(x))


class Stage(nn.Module):
    def __init__(self, spec: SwinSpec, stage: int):
        super().__init__()
        shift = spec.shift_sizes[stage]
        self.blocks = nn.ModuleList(Block(spec, stage, 0 if j % 2 == 0 else shift)
                                    for j in range(spec.depths[stage]))
        self.downsample = PatchMerging(spec, stage) if stage < spec.num_stages - 1 else None

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, spec: SwinSpec):
        super().__init__()
        self.proj = nn.Conv2d(spec.in_chans, spec.embed_dim, spec.patch_size, spec.patch_size)
        self.norm = nn.LayerNorm(spec.embed_dim) if spec.patch_norm else None

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x if self.norm is None else self.norm(x)


class ReferenceSwin(nn.Module):
    """Swin V1/V2 classifier with canonical parameter names."""

    def __init__(self, spec: SwinSpec):
        super().__init__()
        self.spec = spec.validate()
        self.patch_embed = PatchEmbed(spec)
        if spec.ape:
            tokens = (spec.img_size // spec.patch_size) ** 2
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, tokens, spec.embed_dim))
        self.layers = nn.ModuleList(Stage(spec, i) for i in range(spec.num_stages))
        self.norm = nn.LayerNorm(spec.num_features)
        self.head = nn.Linear(spec.num_features, spec.num_classes) if spec.num_classes else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.spec.ape:
            x = x + self.absolute_pos_embed
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return x if self.head is None else self.head(x)


def build_reference(spec: SwinSpec, tensors: dict[str, torch.Tensor] | None = None) -> ReferenceSwin:
    """Build the reference model; with ``tensors``, load them strictly (canonical names)."""
    model = ReferenceSwin(spec)
    if tensors is not None:
        model.load_state_dict(tensors, strict=True)
    return model.eval()
