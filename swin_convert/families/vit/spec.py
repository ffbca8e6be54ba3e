"""The canonical description of a ViT: :class:`ViTSpec` and :class:`PosEmbedProvenance`.

Canonical tensors use timm's names (the superset of every layout); the spec holds what the
tensors do not say by their shapes alone (heads, pooling, eps, which prefix tokens carry a
position embedding). Sizes are (height, width) pairs; a square is ``(s, s)``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from swin_convert.errors import UsageError

from .geometry import POOLS, check_spec, legacy_grid, pair

METHODS = ("timm", "hf", "hf-legacy", "torchvision", "bilinear")
# the resampler of each target layout's runtime (deit -> hf: DeiT's --finetune = transformers >= 4.45)
DEFAULT_METHOD = {"timm": "timm", "hf": "hf", "torchvision": "torchvision", "deit": "hf"}


@dataclass(frozen=True)
class Resampling:
    """One position-embedding resampling step: ``method`` took the grid ``from_grid`` to ``to_grid``."""

    method: str
    from_grid: tuple[int, int]
    to_grid: tuple[int, int]

    def __post_init__(self):
        object.__setattr__(self, "from_grid", pair(self.from_grid))
        object.__setattr__(self, "to_grid", pair(self.to_grid))


@dataclass(frozen=True)
class PosEmbedProvenance:
    """Where the position embedding comes from: the grid it was trained at and every resampling since."""

    trained_grid: tuple[int, int] | None = None      # None: unknown (assumed the current grid)
    resampled: tuple[Resampling, ...] = ()

    def __post_init__(self):
        if self.trained_grid is not None:
            object.__setattr__(self, "trained_grid", pair(self.trained_grid))
        object.__setattr__(self, "resampled", tuple(
            r if isinstance(r, Resampling) else Resampling(**r) for r in self.resampled))

    def then(self, method: str, from_grid, to_grid) -> "PosEmbedProvenance":
        trained = self.trained_grid or pair(from_grid)
        return PosEmbedProvenance(trained, self.resampled + (Resampling(method, from_grid, to_grid),))

    def to_dict(self) -> dict:
        return {"trained_grid": list(self.trained_grid) if self.trained_grid else None,
                "resampled": [{"method": r.method, "from_grid": list(r.from_grid), "to_grid": list(r.to_grid)}
                              for r in self.resampled]}

    @classmethod
    def from_dict(cls, d: dict) -> "PosEmbedProvenance":
        return cls(d.get("trained_grid"), tuple(d.get("resampled") or ()))


@dataclass(frozen=True)
class ViTSpec:
    """Architecture of a ViT / DeiT classifier (timm's VisionTransformer vocabulary)."""

    embed_dim: int
    depth: int
    num_heads: int
    img_size: tuple[int, int] = (224, 224)
    patch_size: tuple[int, int] = (16, 16)
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False        # pos-embed covers only the patches (prefix tokens get none)
    global_pool: str = "token"          # token | avg | max | avgmax | '' (no pooling)
    fc_norm: bool = False               # final norm after pooling (timm: default for avg/max pools)
    pre_norm: bool = False              # norm_pre after the embedding; the patch conv has no bias then
    final_norm: bool = True
    layer_scale: bool = False           # ls1.gamma / ls2.gamma per block
    distilled: bool = False             # DeiT distillation token + head_dist
    representation_size: int = 0        # pre_logits.fc (Linear + Tanh) before the head; 0 = none
    layer_norm_eps: float = 1e-6
    num_classes: int = 1000             # 0 = no head
    provenance: PosEmbedProvenance | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "img_size", pair(self.img_size))
        object.__setattr__(self, "patch_size", pair(self.patch_size))
        if isinstance(self.provenance, dict):
            object.__setattr__(self, "provenance", PosEmbedProvenance.from_dict(self.provenance))

    # -- derived ----------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        return self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1]

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: class, distillation, registers."""
        return int(self.class_token) + int(self.distilled) + self.reg_tokens

    @property
    def pos_prefix_rows(self) -> int:
        """Rows of ``pos_embed`` before the grid rows (0 with no_embed_class)."""
        return 0 if self.no_embed_class else self.num_prefix_tokens

    @property
    def pos_embed_len(self) -> int:
        return self.num_patches + self.pos_prefix_rows

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def uses_fc_norm(self) -> bool:
        return self.final_norm and self.fc_norm

    @property
    def uses_norm(self) -> bool:
        return self.final_norm and not self.fc_norm

    @property
    def trained_grid(self) -> tuple[int, int]:
        return (self.provenance.trained_grid if self.provenance and self.provenance.trained_grid else self.grid)

    def replace(self, **changes) -> "ViTSpec":
        return dataclasses.replace(self, **changes)

    def validate(self) -> "ViTSpec":
        """Raise UsageError when this ViT cannot be built."""
        reason = check_spec(self)
        if reason:
            raise UsageError(*reason)
        return self

    # -- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "provenance"}
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["family"] = "vit"
        if self.provenance is not None:
            d["provenance"] = self.provenance.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "ViTSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> "ViTSpec":
        return cls.from_dict(json.loads(text))


__all__ = ["ViTSpec", "PosEmbedProvenance", "Resampling", "POOLS", "METHODS", "DEFAULT_METHOD", "legacy_grid", "pair"]
