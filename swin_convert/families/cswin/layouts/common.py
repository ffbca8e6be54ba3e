"""What both CSWin layouts write beside the weights: a config.json holding the full spec and
the official constructor arguments (the official files record neither), and reading it back."""
from __future__ import annotations

from ..spec import CSWinSpec


def constructor_args(spec: CSWinSpec) -> dict:
    """Arguments of the official ``CSWinTransformer(...)`` (models/cswin.py) for this geometry."""
    return {"img_size": spec.img_size, "patch_size": 4, "in_chans": spec.in_chans, "num_classes": spec.num_classes,
            "embed_dim": spec.embed_dim, "depth": list(spec.depths), "split_size": list(spec.split_size),
            "num_heads": list(spec.num_heads), "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias}


def config(ckpt, layout: str) -> dict:
    return {"family": "cswin", "layout": layout, "swin_convert_spec": ckpt.spec.to_dict(),
            "official_args": constructor_args(ckpt.spec)}


def read_hints(cfg: dict):
    """The spec recorded in our config.json (None: not ours)."""
    if cfg.get("family") != "cswin" or not isinstance(cfg.get("swin_convert_spec"), dict):
        return None
    return CSWinSpec.from_json(cfg["swin_convert_spec"])
