"""Eval preprocessing and label names carried from a source's config (every family)."""
from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def data_config(ckpt) -> dict:
    """Eval preprocessing carried from the source config where known, else timm's defaults."""
    src = ckpt.config or {}
    pre = src.get("pretrained_cfg") or {}
    img = ckpt.spec.img_size
    img = max(img) if isinstance(img, (tuple, list)) else img     # (h, w) for ViT
    return {
        "interpolation": pre.get("interpolation", "bicubic"),
        "crop_pct": pre.get("crop_pct", 0.9 if img <= 256 else 1.0),
        "mean": list(pre.get("mean") or src.get("image_mean") or IMAGENET_MEAN),
        "std": list(pre.get("std") or src.get("image_std") or IMAGENET_STD),
    }


def label_names(ckpt) -> list | None:
    src = ckpt.config or {}
    names = (src.get("pretrained_cfg") or {}).get("label_names")
    if names is None and isinstance(src.get("id2label"), dict):
        names = [src["id2label"][k] for k in sorted(src["id2label"], key=int)]
    return names if names and len(names) == ckpt.spec.num_classes else None
