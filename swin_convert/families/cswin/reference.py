"""A compact pure-torch CSWin forward that computes what the official code computes.

:class:`CSWinReference` has the canonical (official classification) state_dict keys and runs at
the geometry of its spec: the stem's token grid is baked to ``img_size // 4`` (another input size
is refused, as the official ``Rearrange`` does), stripes are ``split_size`` wide and must divide
the maps, LePE (depthwise 3x3 on V) is applied per stripe with zero padding at stripe borders.

:class:`CSWinSegReference` has the official segmentation backbone's keys (``norm1..norm4``, no
``norm``/``head``, qkv bias always) and is resolution-free: stripes are zero-padded to a multiple
of the split (q, k, v padded after the qkv projection, attended without a mask, cropped back),
exactly as segmentation/backbone/cswin_transformer.py does. It returns the four stage features
(B, C, H, W).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_convert.errors import UsageError

from . import geometry
from .spec import CSWinSpec


def _windows(x: torch.Tensor, h_sp: int, w_sp: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * nH * nW, C, h_sp, w_sp), stripe order row-major."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // h_sp, h_sp, w // w_sp, w_sp).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, h_sp, w_sp)


def stripe_attention(qkv: torch.Tensor, h_sp: int, w_sp: int, num_heads: int, get_v: nn.Conv2d,
                     pad: bool) -> torch.Tensor:
    """One LePE attention branch. ``qkv``: (B, 3, C, H, W); returns (B, H*W, C).

    With ``pad`` the map is zero-padded to whole stripes (split evenly, extra row/col at the
    end) and cropped back; without it the stripes must tile the map.
    """
    b, _, c, h, w = qkv.shape
    ph, pw = (h_sp - h % h_sp) % h_sp, (w_sp - w % w_sp) % w_sp
    if (ph or pw) and not pad:
        raise ValueError(f"stripes {h_sp}x{w_sp} do not tile a {h}x{w} map")
    top, left = ph // 2, pw // 2
    if ph or pw:
        qkv = F.pad(qkv, (left, pw - left, top, ph - top))
    hp, wp = h + ph, w + pw
    q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
    hd = c // num_heads
    n = h_sp * w_sp

    def heads(t):  # (B', C, h_sp, w_sp) -> (B', heads, n, hd)
        return t.reshape(-1, num_heads, hd, n).permute(0, 1, 3, 2)

    vw = _windows(v, h_sp, w_sp)
    lepe = heads(get_v(vw))
    q, k, vw = heads(_windows(q, h_sp, w_sp)), heads(_windows(k, h_sp, w_sp)), heads(vw)
    q = q * (hd ** -0.5)
    attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    x = attn @ vw + lepe                                   # (B', heads, n, hd)
    x = x.transpose(1, 2).reshape(b, hp // h_sp, wp // w_sp, h_sp, w_sp, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    if ph or pw:
        x = x[:, top:top + h, left:left + w, :]
    return x.reshape(b, h * w, c)


class _Attn(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.get_v = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, split: int, branches: int, hidden: int, qkv_bias: bool):
        super().__init__()
        self.heads, self.split, self.branches = heads, split, branches
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.norm1 = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.attns = nn.ModuleList([_Attn(dim // branches) for _ in range(branches)])
        self.mlp = _Mlp(dim, hidden)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int, pad: bool) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, h, w, 3, c).permute(0, 3, 4, 1, 2)   # B, 3, C, H, W
        if self.branches == 2:
            half = c // 2
            x1 = stripe_attention(qkv[:, :, :half], h, self.split, self.heads // 2, self.attns[0].get_v, pad)
            x2 = stripe_attention(qkv[:, :, half:], self.split, w, self.heads // 2, self.attns[1].get_v, pad)
            y = torch.cat([x1, x2], dim=2)
        else:
            y = stripe_attention(qkv, h, w, self.heads, self.attns[0].get_v, pad)
        x = x + self.proj(y)
        return x + self.mlp(self.norm2(x))


class _Merge(nn.Module):
    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, 2, 1)
        self.norm = nn.LayerNorm(dim_out)

    def forward(self, x, h, w):
        b, n, c = x.shape
        x = self.conv(x.transpose(1, 2).reshape(b, c, h, w))
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class _Stem(nn.Sequential):
    """``stage1_conv_embed``: index 0 conv, 1 no parameters (the official Rearrange), 2 LayerNorm."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__(nn.Conv2d(in_chans, dim, geometry.STEM_KERNEL, geometry.STEM_STRIDE, geometry.STEM_PADDING),
                         nn.Identity(), nn.LayerNorm(dim))


class _Backbone(nn.Module):
    def _build(self, spec: CSWinSpec, *, seg: bool):
        self.spec = spec
        dims = spec.dims
        branches = spec.branches if not seg else (2, 2, 2, 1)
        self.stage1_conv_embed = _Stem(spec.in_chans, dims[0])
        if seg:
            self.norm1 = nn.LayerNorm(dims[0])
        for s in range(4):
            if s > 0:
                setattr(self, f"merge{s}", _Merge(dims[s - 1], dims[s]))
                if seg and s < 3:
                    setattr(self, f"norm{s + 1}", nn.LayerNorm(dims[s]))
            setattr(self, f"stage{s + 1}", nn.ModuleList([
                _Block(dims[s], spec.num_heads[s], spec.split_size[s], branches[s], spec.mlp_hidden(s),
                       True if seg else spec.qkv_bias) for _ in range(spec.depths[s])]))
        if seg:
            self.norm4 = nn.LayerNorm(dims[3])

    def _stages(self, x: torch.Tensor, pad: bool):
        """Yields (tokens (B, HW, C), H, W) after each stage (before any output norm)."""
        x = self.stage1_conv_embed[0](x)
        h, w = x.shape[-2:]
        x = self.stage1_conv_embed[2](x.flatten(2).transpose(1, 2))
        for s in range(4):
            if s > 0:
                x, h, w = getattr(self, f"merge{s}")(x, h, w)
            for blk in getattr(self, f"stage{s + 1}"):
                x = blk(x, h, w, pad)
            yield x, h, w


class CSWinReference(_Backbone):
    """The official classification model (canonical keys) at ``spec``'s geometry."""

    def __init__(self, spec: CSWinSpec):
        super().__init__()
        spec.validate()
        self._build(spec, seg=False)
        if spec.stage_norms:  # a seg backbone's norm1..norm3: held, unused by the classification forward
            for s in range(1, 4):
                setattr(self, f"norm{s}", nn.LayerNorm(spec.dims[s - 1]))
        self.norm = nn.LayerNorm(spec.dims[-1])
        self.head = nn.Linear(spec.dims[-1], spec.num_classes) if spec.num_classes > 0 else nn.Identity()

    def _check_input(self, x: torch.Tensor):
        s = self.spec
        if x.dim() != 4 or x.shape[1] != s.in_chans or x.shape[2] != s.img_size or x.shape[3] != s.img_size:
            raise UsageError(f"This CSWin is built for {s.in_chans}x{s.img_size}x{s.img_size} inputs, got "
                             f"{tuple(x.shape[1:])}.",
                             "CSWin bakes its image size into the model: transfer to the new size first.")

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Stage-4 tokens after ``norm``: (B, HW, C)."""
        self._check_input(x)
        for x, _, _ in self._stages(x, pad=False):
            pass
        return self.norm(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class CSWinSegReference(_Backbone):
    """The official segmentation backbone (seg keys, no prefix). ``spec.img_size`` is unused
    (the backbone is resolution-free); ``split_size`` gives the stripes, padded where needed."""

    def __init__(self, spec: CSWinSpec):
        super().__init__()
        self._build(spec, seg=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = []
        for s, (t, h, w) in enumerate(self._stages(x, pad=True)):
            t = getattr(self, f"norm{s + 1}")(t)
            out.append(t.view(t.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous())
        return tuple(out)
