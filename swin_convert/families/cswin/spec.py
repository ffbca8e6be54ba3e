"""The canonical description of a CSWin model: :class:`CSWinSpec`.

Tensor shapes decide embed_dim, depths, mlp_ratio, qkv_bias, num_classes, in_chans and the
per-stage branch count; they do not decide num_heads, img_size or split_size, which must
be recorded next to the weights (the official file cannot hold them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

from swin_convert.errors import BadInputError, UsageError

from . import geometry

SPEC_VERSION = 1


@dataclass(frozen=True)
class CSWinSpec:
    """Architecture and geometry of an official CSWin classifier (square images only)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    split_size: tuple[int, ...]        # per stage; the last one normalised to its stage map
    img_size: int = 224
    mlp_ratio: float = 4.0
    qkv_bias: bool = True              # official default (CSWinTransformer(qkv_bias=True))
    num_classes: int = 1000            # 0 = no head
    in_chans: int = 3
    stage_norms: bool = False          # canonical tensors carry the seg backbone's norm1..norm3

    def __post_init__(self):
        for name in ("depths", "num_heads", "split_size"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "embed_dim", int(self.embed_dim))
        object.__setattr__(self, "img_size", int(self.img_size))
        object.__setattr__(self, "mlp_ratio", float(self.mlp_ratio))
        object.__setattr__(self, "qkv_bias", bool(self.qkv_bias))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(self, "in_chans", int(self.in_chans))
        object.__setattr__(self, "stage_norms", bool(self.stage_norms))

    # -- derived ----------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def version(self) -> int:
        """One CSWin architecture (the registry's layout version)."""
        return 1

    @property
    def resolutions(self) -> tuple[int, ...]:
        return self.stage_maps

    @property
    def dims(self) -> tuple[int, ...]:
        """Channels per stage (the classification model doubles at every merge)."""
        return tuple(self.embed_dim * 2 ** s for s in range(self.num_stages))

    @property
    def stage_maps(self) -> tuple[int, ...]:
        return geometry.stage_maps(self.img_size)

    @property
    def branches(self) -> tuple[int, ...]:
        """Attention branches per stage (decides the ``attns.*`` shapes)."""
        return geometry.branch_counts(self.stage_maps, self.split_size)

    def mlp_hidden(self, stage: int) -> int:
        return int(self.dims[stage] * self.mlp_ratio)

    def with_geometry(self, img_size: int, split_size) -> "CSWinSpec":
        return replace(self, img_size=int(img_size), split_size=tuple(int(v) for v in split_size))

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "CSWinSpec":
        """Raise UsageError (one line + hint) when the official code could not build or run this."""
        n = geometry.NUM_STAGES
        for name in ("depths", "num_heads", "split_size"):
            v = getattr(self, name)
            if len(v) != n or any(x <= 0 for x in v):
                raise UsageError(f"CSWin {name} must be {n} positive integers, got {list(v)}.",
                                 f"Give one value per stage, e.g. {name}=[1,2,21,1].")
        if self.embed_dim <= 0 or self.in_chans <= 0 or self.num_classes < 0 or self.mlp_ratio <= 0:
            raise UsageError("CSWin embed_dim, in_chans and mlp_ratio must be positive and num_classes >= 0.",
                             f"Got embed_dim={self.embed_dim}, in_chans={self.in_chans}, "
                             f"mlp_ratio={self.mlp_ratio}, num_classes={self.num_classes}.")
        geometry.check_img_size(self.img_size)
        maps = self.stage_maps
        if self.split_size[-1] != maps[-1]:
            raise UsageError(f"Last-stage split must be recorded as the stage map {maps[-1]}, "
                             f"got {self.split_size[-1]}.",
                             "Normalise it with geometry.check_split (CSWin ignores it).")
        geometry.check_split(self.img_size, self.split_size)
        for s, (dim, heads, br) in enumerate(zip(self.dims, self.num_heads, self.branches)):
            bdim, bheads = dim // br, heads // br
            if bheads < 1 or dim % br or bdim % bheads:
                raise UsageError(
                    f"Stage {s + 1}: {heads} heads cannot split {dim} channels over {br} branch(es).",
                    "Two-branch stages need an even head count whose half divides half the channels.")
        return self

    # -- metadata ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {
            "family": "cswin", "spec_version": SPEC_VERSION,
            "embed_dim": self.embed_dim, "depths": list(self.depths), "num_heads": list(self.num_heads),
            "split_size": list(self.split_size), "img_size": self.img_size, "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias, "num_classes": self.num_classes, "in_chans": self.in_chans,
        }
        if self.stage_norms:
            out["stage_norms"] = True
        return out

    def to_json(self) -> str:
        """The spec as compact JSON text (what safetensors metadata holds)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    to_json_str = to_json

    def replace(self, **changes) -> "CSWinSpec":
        return replace(self, **changes)

    @classmethod
    def from_json(cls, data) -> "CSWinSpec":
        """From :meth:`to_dict`'s dict (or its JSON text); BadInputError on a malformed record."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError:
                raise BadInputError("The CSWin spec in the file's metadata is not valid JSON.",
                                    "Re-create the file with swin-convert.") from None
        if not isinstance(data, dict):
            raise BadInputError("The CSWin spec in the file's metadata is not a JSON object.",
                                "Re-create the file with swin-convert.")
        if data.get("family", "cswin") != "cswin":
            raise BadInputError(f"The file's spec is for family {data.get('family')!r}, not cswin.",
                                "Read it with that family.")
        if int(data.get("spec_version", SPEC_VERSION)) > SPEC_VERSION:
            raise BadInputError(f"The CSWin spec was written by a newer swin-convert (version "
                                f"{data.get('spec_version')}).", "Upgrade swin-convert.")
        required = ("embed_dim", "depths", "num_heads", "split_size")
        missing = [k for k in required if k not in data]
        if missing:
            raise BadInputError(f"The CSWin spec in the file lacks {', '.join(missing)}.",
                                "Re-create the file with swin-convert.")
        fields = ("embed_dim", "depths", "num_heads", "split_size", "img_size", "mlp_ratio", "qkv_bias",
                  "num_classes", "in_chans", "stage_norms")
        try:
            return cls(**{k: data[k] for k in fields if k in data})
        except (TypeError, ValueError):
            raise BadInputError("The CSWin spec in the file has values of the wrong type.",
                                "Re-create the file with swin-convert.") from None


# The official entrypoints of models/cswin.py (all: patch 4, mlp_ratio 4, qkv_bias True).
OFFICIAL_MODELS: dict[str, CSWinSpec] = {
    "CSWin_64_12211_tiny_224": CSWinSpec(64, (1, 2, 21, 1), (2, 4, 8, 16), (1, 2, 7, 7), 224),
    "CSWin_64_24322_small_224": CSWinSpec(64, (2, 4, 32, 2), (2, 4, 8, 16), (1, 2, 7, 7), 224),
    "CSWin_96_24322_base_224": CSWinSpec(96, (2, 4, 32, 2), (4, 8, 16, 32), (1, 2, 7, 7), 224),
    "CSWin_144_24322_large_224": CSWinSpec(144, (2, 4, 32, 2), (6, 12, 24, 24), (1, 2, 7, 7), 224),
    "CSWin_96_24322_base_384": CSWinSpec(96, (2, 4, 32, 2), (4, 8, 16, 32), (1, 2, 12, 12), 384),
    "CSWin_144_24322_large_384": CSWinSpec(144, (2, 4, 32, 2), (6, 12, 24, 24), (1, 2, 12, 12), 384),
}
