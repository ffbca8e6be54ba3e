"""ViT test helpers: a tiny key map applying the family's tables by direct rename, random weights,
and ``load_runtime(layout, spec, sd)`` building each layout's real runtime and loading it strictly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from swin_convert.families.vit.layouts import LAYOUTS


# -- key map: the family's own (lazy) key map, on torch tensors ---------------------------
def _layout(name: str):
    from swin_convert.families import get_layout
    return get_layout(name, "vit")


def to_layout(layout: str, spec, canonical: dict) -> dict:
    """Canonical torch tensors -> ``layout``'s keys through the family's writer (extra tensors included)."""
    from swin_convert.core.tensors import TorchSource
    from swin_convert.core.torch_io import to_torch
    from swin_convert.families.vit.convert import to_layout as family_to_layout
    out = family_to_layout(_layout(layout), spec, {k: TorchSource(v.contiguous()) for k, v in canonical.items()})
    return {k: to_torch(v).clone() for k, v in out.items()}


def from_layout(layout: str, sd: dict) -> tuple[dict, list]:
    """(canonical tensors, unexpected keys) through the family's reader's key map."""
    from swin_convert.core.keymap import to_canonical
    from swin_convert.core.tensors import TorchSource
    from swin_convert.core.torch_io import to_torch
    mod = LAYOUTS[layout]
    parsed = to_canonical(_layout(layout), mod.variant_of_keys(sd), {k: TorchSource(v) for k, v in sd.items()})
    return {k: to_torch(v).clone() for k, v in parsed.tensors.items()}, parsed.unexpected


# -- random weights -----------------------------------------------------------------------
def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Re-draw every tensor of the state dict (norm weights near 1, small biases, pos-embed O(0.5))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=g)
            if name.endswith("gamma"):
                t.copy_(0.5 + 0.5 * r.abs())
            elif t.dim() >= 2 and t.shape[0] != 1:
                fan_in = int(np.prod(t.shape[1:]))
                t.copy_(r / fan_in ** 0.5)
            elif t.dim() >= 2:
                t.copy_(0.5 * r)                       # tokens, position embeddings
            elif any(s in name for s in ("norm", "ln", "layernorm")) and name.endswith("weight"):
                t.copy_(1 + 0.2 * r)
            else:
                t.copy_(0.1 * r)
    return module


def random_canonical(spec, seed: int = 0) -> dict:
    from swin_convert.families.vit.reference import ReferenceViT
    return {k: v.clone() for k, v in randomize_(ReferenceViT(spec), seed).state_dict().items()}


# -- runtimes ------------------------------------------------------------------------------
def timm_model(spec):
    import timm
    from swin_convert.families.vit.layouts import timm as T
    return timm.create_model(T.architecture(spec), pretrained=False, **T.model_args(spec))


def torchvision_model(spec):
    from torchvision.models import VisionTransformer
    from swin_convert.families.vit.layouts import torchvision as TV
    return VisionTransformer(**TV.constructor_args(spec))


def build_runtime(layout: str, spec) -> torch.nn.Module:
    """An untrained runtime model for ``spec`` whose ``state_dict`` keys are ``layout``'s, in eval mode
    (for a check engine: ``build_runtime(...).load_state_dict(to_layout(...), strict=True)``).

    hf builds from the same config.json the writer emits; deit is timm's class (timm >= 0.9 reads
    DeiT's names unchanged), or the reference where only timm < 0.9 holds the model (pre_logits)."""
    mod = LAYOUTS[layout]
    reason = mod.limits(spec)
    if reason:
        raise ValueError(reason)
    if layout == "timm":
        return timm_model(spec).eval()
    if layout == "torchvision":
        return torchvision_model(spec).eval()
    if layout == "hf":
        import transformers
        cfg = mod.config_json(spec)
        config = transformers.AutoConfig.for_model(cfg["model_type"], **{
            k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
        cls = getattr(transformers, cfg["architectures"][0])
        return cls(config).eval()
    if layout == "deit":
        if spec.representation_size:
            from swin_convert.families.vit.reference import ReferenceViT
            return ReferenceViT(spec).eval()
        return timm_model(spec).eval()
    raise ValueError(layout)


def load_runtime(layout: str, spec, sd: dict, folder: Path | None = None) -> torch.nn.Module:
    """The layout's real runtime holding ``sd`` (layout keys), loaded strictly, in eval mode.

    timm and hf go through the on-disk folder their users load (config.json + model.safetensors)."""
    from safetensors.torch import save_file
    mod = LAYOUTS[layout]
    assert mod.limits(spec) is None, mod.limits(spec)
    if layout in ("timm", "hf"):
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(mod.config_json(spec)))
        if layout == "hf":
            (folder / "preprocessor_config.json").write_text(json.dumps(mod.preprocessor_json(spec)))
    if layout == "timm":
        import timm
        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
        _assert_same(model.state_dict(), sd)
    elif layout == "hf":
        import transformers
        model, info = transformers.AutoModelForImageClassification.from_pretrained(
            str(folder), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        assert model.config.layer_norm_eps == spec.layer_norm_eps
        processor = transformers.AutoImageProcessor.from_pretrained(str(folder))
        assert processor.size == {"height": spec.img_size[0], "width": spec.img_size[1]}
    elif layout == "torchvision":
        model = torchvision_model(spec)
        model.load_state_dict(sd, strict=True)
    elif layout == "deit":
        if spec.representation_size:   # only timm < 0.9 holds it: use the reference
            from swin_convert.families.vit.reference import ReferenceViT
            model = ReferenceViT(spec)
        else:
            model = timm_model(spec)
        model.load_state_dict(sd, strict=True)
    else:
        raise ValueError(layout)
    return model.eval()


def _assert_same(got: dict, want: dict):
    assert set(got) == set(want), set(got) ^ set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def logits(model, x):
    with torch.no_grad():
        out = model(x) if not hasattr(model, "config") else model(pixel_values=x).logits
    return out
