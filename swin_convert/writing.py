"""Write a canonical checkpoint in a layout: one safetensors file, a .pth, or a loadable folder.

Every write is atomic: it goes to a hidden temporary sibling that is renamed into place only
when complete, so an error leaves no partial output; the input is never written to.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .canonical import CanonicalCheckpoint
from .errors import IncompatibleSpecError, OutputExistsError, UsageError
from .keymap import from_canonical
from .layouts import Layout
from .reading import META_SPEC
from .spec import SwinSpec, clamp_windows
from .tensors import write_safetensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass
class WriteResult:
    out: Path
    kind: str                      # "safetensors" | "pth" | "folder"
    files: list = field(default_factory=list)
    tensors: int = 0


def provenance(ckpt: CanonicalCheckpoint, layout: Layout, extra: dict | None = None) -> dict[str, str]:
    meta = {"format": "pt", "swin_convert.version": __version__, "swin_convert.source": ckpt.source,
            "swin_convert.source_layout": ckpt.source_layout, "swin_convert.layout": layout.name,
            META_SPEC: ckpt.spec.to_json()}
    meta.update({f"swin_convert.{k}": str(v) for k, v in (extra or {}).items()})
    return meta


def check_output(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse to write over the input (ever) or over an existing OUT (without --overwrite)."""
    out_r = out.resolve()
    for inp in inputs:
        inp_r = inp.resolve()
        if out_r == inp_r or inp_r.is_relative_to(out_r) or (out_r.is_relative_to(inp_r) and inp_r.is_dir()):
            raise OutputExistsError(f"The output '{out}' would overwrite the input.", "Choose another output path.")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"'{out}' already exists.", "Choose another path or pass --overwrite.")


def write(ckpt: CanonicalCheckpoint, layout: Layout, out: str | Path, *, overwrite: bool = False,
          inputs: list[Path] = (), extra_meta: dict | None = None, card: str | None = None) -> WriteResult:
    """Write ``ckpt`` in ``layout`` to ``out`` (kind chosen by its suffix)."""
    out = Path(out)
    reason = layout.cannot_express(ckpt.spec)
    if reason:
        raise IncompatibleSpecError(f"Cannot write {layout.name}: {reason}.",
                                    "Pick another target layout (official or timm keep per-stage windows).")
    check_output(out, list(inputs), overwrite)
    tensors = from_canonical(layout, ckpt.spec, ckpt.tensors)
    meta = provenance(ckpt, layout, extra_meta)
    if out.suffix in (".pth", ".pt", ".bin"):
        with _atomic_file(out) as tmp:
            _save_pth(tmp, tensors, wrap=out.suffix != ".bin")
        return WriteResult(out, "pth", [out], len(tensors))
    if out.suffix == ".safetensors":
        with _atomic_file(out) as tmp:
            write_safetensors(tmp, tensors.items(), meta)
        return WriteResult(out, "safetensors", [out], len(tensors))
    with _atomic_dir(out) as tmp:
        write_safetensors(tmp / "model.safetensors", tensors.items(), meta)
        for name, content in folder_configs(ckpt, layout).items():
            (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
        if card:
            (tmp / "README.md").write_text(card)
        files = sorted(p.name for p in tmp.iterdir())
    return WriteResult(out, "folder", [out / f for f in files], len(tensors))


def _save_pth(path: Path, tensors: dict, wrap: bool) -> None:
    import torch

    from .torch_io import to_torch
    state = {k: to_torch(v).clone() for k, v in tensors.items()}
    torch.save({"model": state} if wrap else state, path)


@contextlib.contextmanager
def _atomic_file(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _atomic_dir(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "previous")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# configs of loadable folders
# ----------------------------------------------------------------------------------------
def folder_configs(ckpt: CanonicalCheckpoint, layout: Layout) -> dict[str, dict]:
    if layout.name == "timm":
        return {"config.json": timm_config(ckpt)}
    if layout.name == "hf":
        return {"config.json": hf_config(ckpt), "preprocessor_config.json": hf_preprocessor(ckpt)}
    return {"config.json": {"swin_convert_spec": ckpt.spec.to_dict(), "layout": layout.name}}


def data_config(ckpt: CanonicalCheckpoint) -> dict:
    """Eval preprocessing carried from the source config where known, else timm's Swin defaults."""
    src = ckpt.config or {}
    pre = src.get("pretrained_cfg") or {}
    img = ckpt.spec.img_size
    return {
        "interpolation": pre.get("interpolation", "bicubic"),
        "crop_pct": pre.get("crop_pct", 0.9 if img <= 256 else 1.0),
        "mean": list(pre.get("mean") or src.get("image_mean") or IMAGENET_MEAN),
        "std": list(pre.get("std") or src.get("image_std") or IMAGENET_STD),
    }


def label_names(ckpt: CanonicalCheckpoint) -> list | None:
    src = ckpt.config or {}
    names = (src.get("pretrained_cfg") or {}).get("label_names")
    if names is None and isinstance(src.get("id2label"), dict):
        names = [src["id2label"][k] for k in sorted(src["id2label"], key=int)]
    return names if names and len(names) == ckpt.spec.num_classes else None


def timm_architecture(spec: SwinSpec) -> str:
    """A registered timm entry point; model_args override its hyper-parameters."""
    return "swinv2_tiny_window8_256" if spec.version == 2 else "swin_tiny_patch4_window7_224"


def timm_window_arg(spec: SwinSpec):
    """One int where the per-stage windows are timm's own clamp of it (every timm version takes
    that); otherwise one [w, w] pair per stage (pairs, so a 2-stage list is not read as (h, w))."""
    big = max(spec.window_size)
    if spec.window_size == clamp_windows(spec.resolutions, (big,) * spec.num_stages):
        return big
    return [[w, w] for w in spec.window_size]


def timm_model_args(spec: SwinSpec) -> dict:
    args = {"img_size": spec.img_size, "patch_size": spec.patch_size, "in_chans": spec.in_chans,
            "num_classes": spec.num_classes, "embed_dim": spec.embed_dim, "depths": list(spec.depths),
            "num_heads": list(spec.num_heads), "window_size": timm_window_arg(spec),
            "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias}
    if spec.version == 2:
        args["pretrained_window_sizes"] = list(spec.pretrained_window_sizes)
    return args


def timm_config(ckpt: CanonicalCheckpoint) -> dict:
    spec, data = ckpt.spec, data_config(ckpt)
    pre = {"tag": "swin_convert", "custom_load": False, "input_size": [spec.in_chans, spec.img_size, spec.img_size],
           "fixed_input_size": True, "interpolation": data["interpolation"], "crop_pct": data["crop_pct"],
           "crop_mode": "center", "mean": data["mean"], "std": data["std"], "num_classes": spec.num_classes,
           "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head.fc"}
    names = label_names(ckpt)
    if names:
        pre["label_names"] = names
    return {"architecture": timm_architecture(spec), "num_classes": spec.num_classes,
            "num_features": spec.num_features, "global_pool": "avg", "model_args": timm_model_args(spec),
            "pretrained_cfg": pre}


def hf_config(ckpt: CanonicalCheckpoint) -> dict:
    spec = ckpt.spec
    v2 = spec.version == 2
    cls = ("Swinv2" if v2 else "Swin") + ("ForImageClassification" if spec.num_classes else "Model")
    names = label_names(ckpt) or [f"LABEL_{i}" for i in range(spec.num_classes)]
    cfg = {"architectures": [cls], "model_type": "swinv2" if v2 else "swin", "image_size": spec.img_size,
           "patch_size": spec.patch_size, "num_channels": spec.in_chans, "embed_dim": spec.embed_dim,
           "depths": list(spec.depths), "num_heads": list(spec.num_heads), "window_size": max(spec.window_size),
           "mlp_ratio": spec.mlp_ratio, "qkv_bias": spec.qkv_bias, "hidden_act": "gelu",
           "use_absolute_embeddings": spec.ape, "layer_norm_eps": 1e-5, "drop_path_rate": 0.0,
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
           "encoder_stride": spec.patch_size * 2 ** (spec.num_stages - 1),
           "id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}
    if v2:
        cfg["pretrained_window_sizes"] = list(spec.pretrained_window_sizes)
    return cfg


def hf_preprocessor(ckpt: CanonicalCheckpoint) -> dict:
    data = data_config(ckpt)
    resample = {"bilinear": 2, "bicubic": 3, "nearest": 0}.get(data["interpolation"], 3)
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True,
            "size": {"height": ckpt.spec.img_size, "width": ckpt.spec.img_size}, "resample": resample,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": data["mean"], "image_std": data["std"]}


def output_kind(out: str | Path) -> str:
    suffix = Path(out).suffix
    if suffix in FILE_SUFFIXES:
        return "pth" if suffix != ".safetensors" else "safetensors"
    if suffix in (".json", ".yaml", ".txt"):
        raise UsageError(f"Output '{out}' has a {suffix} suffix, which is not a checkpoint format.",
                         "Use .safetensors, .pth, or a folder path.")
    return "folder"
