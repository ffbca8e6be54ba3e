"""Build small Swin models in the real runtimes (timm, transformers) and in ours, with every
tensor re-drawn, and save them the way each ecosystem does."""
from __future__ import annotations

from pathlib import Path

import torch

from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.families import get_layout
from swin_convert.families.swin.spec import SwinSpec
from swin_convert.core.tensors import TorchSource
from swin_convert.families.swin.testing import random_reference, randomize_
from swin_convert.api import save as _save


def write(ckpt, layout, out, **kw):
    return _save(ckpt, layout.name, out, **kw)

# expressible in all three layouts: every stage window 4 (maps 16, 8, 4)
SMALL = dict(embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4), img_size=64, num_classes=10)
WINDOW = 4


def small_spec(version: int, **kw) -> SwinSpec:
    base = dict(SMALL, version=version, window_size=(WINDOW,) * 3)
    base.update(kw)
    if version == 2 and "pretrained_window_sizes" not in kw:
        base["pretrained_window_sizes"] = (3,) * len(base["depths"])
    return SwinSpec(**base).validate()


def timm_model(spec: SwinSpec, seed: int = 0):
    import timm
    from swin_convert.families.swin.layouts.timm import architecture as timm_architecture, model_args as timm_model_args
    model = timm.create_model(timm_architecture(spec), pretrained=False, **timm_model_args(spec))
    return randomize_(model, seed).eval()


def hf_model(spec: SwinSpec, seed: int = 0):
    import transformers
    from swin_convert.families.swin.layouts.hf import config as hf_config
    cfg = hf_config(CanonicalCheckpoint(spec, {}))
    cls = transformers.Swinv2Config if spec.version == 2 else transformers.SwinConfig
    config = cls(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    model_cls = transformers.Swinv2ForImageClassification if spec.version == 2 else transformers.SwinForImageClassification
    return randomize_(model_cls(config), seed).eval()


def save_source(layout: str, spec: SwinSpec, folder: Path, seed: int = 0):
    """A checkpoint written the way `layout`'s own ecosystem writes it; returns (path, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "timm":
        from safetensors.torch import save_file
        model = timm_model(spec, seed)
        path = folder / "timm.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        return path, model
    if layout == "hf":
        model = hf_model(spec, seed)
        model.save_pretrained(folder / "hf")
        return folder / "hf", model
    model = random_reference(spec, seed)   # official: our writer (witnessed by timm's filter in tests)
    ckpt = CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()})
    path = folder / "official.pth"
    write(ckpt, get_layout("official"), path)
    return path, model


def logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return getattr(out, "logits", out)


def fixed_input(spec: SwinSpec, n: int = 2) -> torch.Tensor:
    return torch.randn(n, spec.in_chans, spec.img_size, spec.img_size, generator=torch.Generator().manual_seed(7))
