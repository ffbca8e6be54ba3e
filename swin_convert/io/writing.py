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
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..core.checkpoint import CanonicalCheckpoint
from ..core.schema import Layout
from ..core.tensors import write_safetensors
from ..errors import IncompatibleSpecError, OutputExistsError, SwinConvertError, UsageError
from .shards import SAFE_INDEX, index_json

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
            raise OutputExistsError(f"The output '{out}' would overwrite the input.", "Choose another output path.",
                                    path=out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"'{out}' already exists.", "Choose another path or pass --overwrite.", path=out)
    if out.exists() and not (out.is_file() or out.is_dir()):
        raise OutputExistsError(f"'{out}' is not a regular file or folder (a device, pipe or socket); "
                                "refusing to replace it.", "Choose an output path for a file or a folder.", path=out)


def check_expressible(layout: Layout, spec) -> None:
    reason = layout.cannot_express(spec)
    if reason:
        hint = ("Pick another target layout (timm holds every ViT but a representation layer; deit and "
                "torchvision hold that)." if layout.family == "vit" else
                "Pick another target layout (official or timm keep per-stage windows).")
        raise IncompatibleSpecError(f"Cannot write {layout.name}: {reason}.", hint)


def write(ckpt: CanonicalCheckpoint, layout: Layout, out: str | Path, tensors: dict, *, overwrite: bool = False,
          inputs: list[Path] = (), extra_meta: dict | None = None, card: str | None = None,
          spec_key: str = "swin_convert.spec", shards: list | None = None, dtype: str | None = None) -> WriteResult:
    """Write ``tensors`` (already in ``layout``'s keys) to ``out`` (kind chosen by its suffix);
    ``shards`` (``io.shards.plan_shards``): a folder's weights as those shard files + their index;
    ``dtype``: the safetensors dtype they were cast to, recorded in a transformers config."""
    try:
        return _write(ckpt, layout, Path(out), tensors, overwrite, inputs, extra_meta, card, spec_key, shards,
                      dtype)
    except OSError as e:
        if e.filename is None and e.errno is not None:   # copy_file_range/write name no file: say which
            raise OSError(e.errno, e.strerror or str(e), str(out)) from None
        raise


def _write(ckpt: CanonicalCheckpoint, layout: Layout, out: Path, tensors: dict, overwrite: bool, inputs,
           extra_meta, card, spec_key, shards=None, dtype=None) -> WriteResult:
    check_expressible(layout, ckpt.spec)
    check_output(out, list(inputs), overwrite)
    meta = provenance(ckpt, layout, extra_meta, spec_key)
    if shards and output_kind(out) != "folder":
        raise UsageError(f"'{out}' is a single file; only a folder output can be sharded.", "Give a folder path.")
    if out.suffix in (".pth", ".pt", ".bin"):
        with _atomic_file(out) as tmp:
            bare = out.suffix == ".bin"
            _save_pth(tmp, tensors, wrap=None if bare else layout.wrap,
                      extra=layout.container(ckpt) if layout.container and layout.wrap and not bare else None, shown=out)
        return WriteResult(out, "pth", [out], len(tensors))
    if out.suffix == ".safetensors":
        with _atomic_file(out) as tmp:
            write_safetensors(tmp, tensors.items(), meta)
        return WriteResult(out, "safetensors", [out], len(tensors))
    with _atomic_dir(out) as tmp:
        if shards:     # each shard carries the provenance, as one model.safetensors would
            for name, keys in shards:
                write_safetensors(tmp / name, ((k, tensors[k]) for k in keys), meta)
            (tmp / SAFE_INDEX).write_text(index_json(shards, tensors))
        else:
            write_safetensors(tmp / "model.safetensors", tensors.items(), meta)
        for name, content in record_dtype(folder_configs(ckpt, layout), dtype).items():
            (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
        if card:
            (tmp / "README.md").write_text(card)
        files = sorted(p.name for p in tmp.iterdir())
    return WriteResult(out, "folder", [out / f for f in files], len(tensors))


def _save_pth(path: Path, tensors: dict, wrap: str | None, extra: dict | None = None, shown: Path | None = None) -> None:
    """``{wrap: state, **extra}`` (OpenMMLab: ``{'state_dict': ..., 'meta': {...}}``), or the bare state."""
    import torch

    from ..core.torch_io import to_torch
    state = {k: to_torch(v).clone() for k, v in tensors.items()}
    try:
        torch.save({wrap: state, **(extra or {})} if wrap else state, path)
    except RuntimeError:    # torch's zip writer turns ENOSPC / EFBIG into "unexpected pos ..."
        raise SwinConvertError(f"Could not write '{shown or path}' in full: no space left on the device, or "
                               "a file-size limit.", "Free some space (or raise `ulimit -f`) and run it again.") from None


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p ``folder``; the folders it created, deepest first (removed again if the write fails)."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_created(created: list[Path]) -> None:
    for p in created:
        with contextlib.suppress(OSError):
            p.rmdir()


def _temp_name(out: Path, suffix: str) -> Path:
    return out.parent / f".{out.name}.{os.urandom(4).hex()}{suffix}"


def _temp_dir(out: Path, suffix: str) -> Path:
    """A new hidden sibling folder, made as mkdir makes it (0777 less the umask). Not tempfile's
    mkdtemp (0700, and tempfile imports shutil, random and hashlib: ~8 ms of every remap)."""
    for _ in range(100):
        path = _temp_name(out, suffix)
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(17, "Could not create a temporary folder", str(out.parent))


def _rmtree(path: Path) -> None:
    if os.path.lexists(path):
        import shutil
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _atomic_file(out: Path):
    """An open binary file at a hidden sibling, renamed to ``out`` when the block succeeds.

    Created once, with O_EXCL and mode 0666 less the umask (what cp or torch.save give), and
    written through that descriptor: re-opening it with truncation would make ext4 flush the
    whole file at close (auto_da_alloc), doubling the time of a large write.
    """
    created = _make_parents(out.parent)
    made, done = None, False
    try:    # from before the temp file exists: a signal landing right after its creation still cleans up
        for _ in range(100):
            made = tmp = _temp_name(out, ".tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
                break
            except FileExistsError:
                made = None
        else:
            raise FileExistsError(17, "Could not create a temporary file", str(out.parent))
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, out)
        done = True
    finally:
        if not done:
            if made is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(made)
            _remove_created(created)


@contextlib.contextmanager
def _atomic_dir(out: Path):
    created = _make_parents(out.parent)
    done, tmp = False, None
    try:    # from before the folder exists, like _atomic_file
        tmp = _temp_dir(out, ".tmp")
        yield tmp
        if out.exists():
            old = _temp_dir(out, ".old")
            os.replace(out, old / "previous")
            os.replace(tmp, out)
            _rmtree(old)
        else:
            os.replace(tmp, out)
        done = True
    finally:
        if tmp is not None:
            _rmtree(tmp)
        if not done:
            _remove_created(created)


# ----------------------------------------------------------------------------------------
# configs of loadable folders
# ----------------------------------------------------------------------------------------
def folder_configs(ckpt: CanonicalCheckpoint, layout: Layout) -> dict[str, dict]:
    return layout.configs(ckpt) if layout.configs else {}


def record_dtype(configs: dict[str, dict], dtype: str | None) -> dict[str, dict]:
    """A transformers ``config.json`` (one with a ``model_type``) says the weights' dtype, as
    ``save_pretrained`` writes it: ``dtype`` (transformers >= 4.56) and ``torch_dtype`` (older)."""
    from ..core.dtypes import TORCH_NAMES
    cfg = configs.get("config.json")
    if dtype and isinstance(cfg, dict) and "model_type" in cfg:
        configs = {**configs, "config.json": {**cfg, "dtype": TORCH_NAMES[dtype], "torch_dtype": TORCH_NAMES[dtype]}}
    return configs


def output_kind(out: str | Path) -> str:
    suffix = Path(out).suffix
    if suffix in FILE_SUFFIXES:
        return "pth" if suffix != ".safetensors" else "safetensors"
    if suffix in (".json", ".yaml", ".txt"):
        raise UsageError(f"Output '{out}' has a {suffix} suffix, which is not a checkpoint format.",
                         "Use .safetensors, .pth, or a folder path.", option="--output")
    return "folder"
