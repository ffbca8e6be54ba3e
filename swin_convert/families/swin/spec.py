"""The canonical description of a Swin model: :class:`SwinSpec`.

A spec holds what cannot be read from one tensor alone: the per-stage windows *after*
clamping, the image size, V2's pretrained windows. Windows are stored already clamped,
because that is what the weights encode (an official 192 px / window 12 checkpoint has a
6x6 table in its last stage); the configured window of a clamped stage is irrelevant to
the weights and to every runtime's forward.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ...core.checkpoint import Assumptions  # noqa: F401  (re-exported)
from ...errors import UsageError
from . import geometry
from .geometry import clamp_windows, divisors, img_size_error, nearest_multiples, per_stage  # noqa: F401

CPB_HIDDEN = 512   # V2 continuous position bias MLP width (every released model)


@dataclass(frozen=True)
class SwinSpec:
    """Architecture and geometry of a Swin V1/V2 classifier (square images only)."""

    version: int                       # 1 or 2
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: tuple[int, ...]       # per stage, after clamping (official rule)
    img_size: int
    patch_size: int = 4
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True              # V1 only: fused qkv has a bias (V2 always has q/v biases)
    ape: bool = False                  # absolute position embedding
    patch_norm: bool = True
    num_classes: int = 1000            # 0 = no head
    pretrained_window_sizes: tuple[int, ...] = ()  # V2 only; 0 in a stage = its own window
    cpb_baked: bool = False            # V2 only: CPB evaluated into static (T, nH) tables (inference)

    def __post_init__(self):
        for name in ("depths", "num_heads", "window_size", "pretrained_window_sizes"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.version == 2 and not self.pretrained_window_sizes:
            object.__setattr__(self, "pretrained_window_sizes", (0,) * len(self.depths))
        if self.version == 1:
            object.__setattr__(self, "pretrained_window_sizes", ())

    # -- derived geometry -------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2 ** i for i in range(self.num_stages))

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Side of each stage's token map."""
        return geometry.stage_maps(self.img_size, self.patch_size, self.num_stages)

    @property
    def shift_sizes(self) -> tuple[int, ...]:
        """Official rule: no shift where the window covers the whole map."""
        return geometry.shift_sizes(self.resolutions, self.window_size)

    @property
    def num_features(self) -> int:
        return self.dims[-1]

    @property
    def hidden_dims(self) -> tuple[int, ...]:
        return tuple(int(d * self.mlp_ratio) for d in self.dims)

    def effective_pretrained_windows(self) -> tuple[int, ...]:
        """The window each stage's V2 coordinates are normalised by."""
        return tuple(p if p > 0 else w for p, w in zip(self.pretrained_window_sizes, self.window_size))

    def replace(self, **changes) -> "SwinSpec":
        return dataclasses.replace(self, **changes)

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "SwinSpec":
        """Raise UsageError when the geometry cannot be built (official does not pad)."""
        n = self.num_stages
        if self.version not in (1, 2):
            raise UsageError(f"Swin version must be 1 or 2, got {self.version}.")
        for name in ("num_heads", "window_size"):
            if len(getattr(self, name)) != n:
                raise UsageError(f"{name} has {len(getattr(self, name))} entries but the model has {n} stages.",
                                 "Give one value, or one per stage.")
        if self.version == 2 and len(self.pretrained_window_sizes) != n:
            raise UsageError(f"pretrained_window_sizes has {len(self.pretrained_window_sizes)} entries "
                             f"but the model has {n} stages.", "Give one value, or one per stage.")
        error = img_size_error(self.img_size, self.patch_size, n, f"Image size {self.img_size}", "merges")
        if error:
            raise error
        for i, (r, w) in enumerate(zip(self.resolutions, self.window_size)):
            if w <= 0 or w > r or r % w:
                raise UsageError(f"Stage {i} map is {r}x{r}, which window {w} does not tile.",
                                 f"Windows that tile it: {divisors(r)}.")
        for i, (d, h) in enumerate(zip(self.dims, self.num_heads)):
            if h <= 0 or d % h:
                raise UsageError(f"Stage {i} has dim {d}, not divisible by {h} heads.")
        return self

    # -- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "SwinSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> "SwinSpec":
        return cls.from_dict(json.loads(text))
