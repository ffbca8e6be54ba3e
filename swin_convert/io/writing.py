"""Write a checkpoint in a layout: one safetensors file, a .pth, or a loadable folder.

Knows no family: the caller maps the tensors to the layout's keys (``families.to_layout``);
the layout object supplies its folder configs and ``.pth`` container.

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

from .._version import __version__
from ..core.checkpoint import CanonicalCheckpoint
from ..core.schema import Layout
from ..core.tensors import write_safetensors
from ..errors import IncompatibleSpecError, OutputExistsError, UsageError

FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass
class WriteResult:
    out: Path
    kind: str                      # "safetensors" | "pth" | "folder"
    files: list = field(default_factory=list)
    tensors: int = 0
    notes: list = field(default_factory=list)     # what the output lacks / carries / drops


def provenance(ckpt: CanonicalCheckpoint, layout: Layout, extra: dict | None = None,
               spec_key: str = "swin_convert.spec") -> dict[str, str]:
    meta = {"format": "pt", "swin_convert.version": __version__, "swin_convert.source": ckpt.source,
            "swin_convert.source_layout": ckpt.source_layout, "swin_convert.layout": layout.name,
            spec_key: ckpt.spec.to_json()}
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


def check_expressible(layout: Layout, spec) -> None:
    reason = layout.cannot_express(spec)
    if reason:
        hint = ("Pick another target layout (timm holds every ViT but a representation layer; deit and "
                "torchvision hold that)." if layout.family == "vit" else
                "Pick another target layout (official or timm keep per-stage windows).")
        raise IncompatibleSpecError(f"Cannot write {layout.name}: {reason}.", hint)


def write(ckpt: CanonicalCheckpoint, layout: Layout, out: str | Path, tensors: dict, *, overwrite: bool = False,
          inputs: list[Path] = (), extra_meta: dict | None = None, card: str | None = None,
          spec_key: str = "swin_convert.spec") -> WriteResult:
    """Write ``tensors`` (already in ``layout``'s keys) to ``out`` (kind chosen by its suffix)."""
    out = Path(out)
    check_expressible(layout, ckpt.spec)
    check_output(out, list(inputs), overwrite)
    meta = provenance(ckpt, layout, extra_meta, spec_key)
    if out.suffix in (".pth", ".pt", ".bin"):
        with _atomic_file(out) as tmp:
            bare = out.suffix == ".bin"
            _save_pth(tmp, tensors, wrap=None if bare else layout.wrap,
                      extra=layout.container(ckpt) if layout.container and layout.wrap and not bare else None)
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


def _save_pth(path: Path, tensors: dict, wrap: str | None, extra: dict | None = None) -> None:
    """``{wrap: state, **extra}`` (OpenMMLab: ``{'state_dict': ..., 'meta': {...}}``), or the bare state."""
    import torch

    from ..core.torch_io import to_torch
    state = {k: to_torch(v).clone() for k, v in tensors.items()}
    torch.save({wrap: state, **(extra or {})} if wrap else state, path)


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
    return layout.configs(ckpt) if layout.configs else {}


def output_kind(out: str | Path) -> str:
    suffix = Path(out).suffix
    if suffix in FILE_SUFFIXES:
        return "pth" if suffix != ".safetensors" else "safetensors"
    if suffix in (".json", ".yaml", ".txt"):
        raise UsageError(f"Output '{out}' has a {suffix} suffix, which is not a checkpoint format.",
                         "Use .safetensors, .pth, or a folder path.")
    return "folder"
