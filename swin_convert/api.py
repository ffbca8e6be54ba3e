"""The library API: the operations the CLI exposes, composed from the modules below.

    ckpt = swin_convert.load("microsoft/swin-tiny-patch4-window7-224")
    swin_convert.save(ckpt, "timm", "out/")
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .canonical import CanonicalCheckpoint, Hints
from .errors import SwinConvertError, UsageError
from .layouts import get_layout
from .reading import is_safetensors
from .reading import canonical_from_raw, open_raw
from .writing import WriteResult, check_output, output_kind, write


@dataclass
class Source:
    """A checkpoint location made local: ``path`` plus where it came from."""

    path: Path
    display: str
    origin: object = None       # hub.ResolvedSource for Hub / URL sources

    @property
    def repo_id(self) -> str | None:
        return getattr(self.origin, "repo_id", None)


def resolve(source: str | Path, *, revision: str | None = None, token: str | None = None,
            sha256: str | None = None) -> Source:
    """A local path as is; a Hub repo id or URL downloaded (cached) through swin_convert.hub."""
    if isinstance(source, Path) or os.path.exists(source):
        if revision:
            raise UsageError("--revision applies to Hub sources, not to local paths.", "Drop --revision.")
        return Source(Path(source), str(source))
    from .hub import resolve_source
    resolved = resolve_source(str(source), revision=revision, token=token, sha256=sha256)
    path = Path(resolved.path) / resolved.filename if resolved.filename else Path(resolved.path)
    return Source(path, resolved.display, resolved)


def hints(img_size: int | None = None, window: str | int | tuple | None = None,
          pretrained_window: str | int | tuple | None = None) -> Hints:
    return Hints(img_size=img_size, window_size=parse_ints(window, "--window"),
                 pretrained_window_sizes=parse_ints(pretrained_window, "--pretrained-window"))


def parse_ints(value, flag: str) -> tuple[int, ...] | None:
    """``"12"`` / ``"12,12,12,6"`` / ``12`` / ``(12, 6)`` -> tuple of ints."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    try:
        out = tuple(int(v) for v in str(value).replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"{flag} takes an integer or a comma-separated list of integers, got '{value}'.",
                         f"For example {flag} 12 or {flag} 12,12,12,6.") from None
    if any(v < 0 for v in out):
        raise UsageError(f"{flag} values must not be negative, got '{value}'.")
    return out


def load(source: str | Path, layout: str = "auto", *, img_size: int | None = None, window=None,
         pretrained_window=None, revision: str | None = None, token: str | None = None) -> CanonicalCheckpoint:
    """Read any supported checkpoint into the canonical form (spec + lazy tensors)."""
    src = resolve(source, revision=revision, token=token)
    raw = open_raw(src.path)
    ckpt = canonical_from_raw(raw, layout, hints(img_size, window, pretrained_window), src.display)
    ckpt.origin = src.origin
    ckpt.input_paths.append(src.path)
    return ckpt


@dataclass
class InspectReport:
    ckpt: CanonicalCheckpoint
    path: Path
    format: str
    file_size: int
    dtypes: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        spec = self.ckpt.spec
        return {"source": self.ckpt.source, "path": str(self.path), "format": self.format,
                "layout": self.ckpt.source_layout, "version": spec.version, "file_size": self.file_size,
                "num_params": self.ckpt.num_params, "dtypes": self.dtypes, "spec": spec.to_dict(),
                "stage_resolutions": list(spec.resolutions), "shift_sizes": list(spec.shift_sizes),
                "assumed": list(self.ckpt.assumptions.notes), "notes": list(self.ckpt.notes)}


def inspect(source: str | Path, layout: str = "auto", **kw) -> InspectReport:
    """Describe a checkpoint; for safetensors only the header is read (remotely, for a Hub repo)."""
    remote = _remote_inspect(source, layout, **kw)
    if remote is not None:
        return remote
    ckpt = load(source, layout, **kw)
    path = ckpt.input_paths[0]
    dtypes: dict[str, int] = {}
    for src in ckpt.tensors.values():
        dtypes[src.dtype] = dtypes.get(src.dtype, 0) + 1
    fmt = "safetensors" if is_safetensors(path) else "pth"
    return InspectReport(ckpt, path, fmt, path.stat().st_size, dtypes)


def _remote_inspect(source, layout: str, *, img_size=None, window=None, pretrained_window=None, revision=None,
                    token=None) -> InspectReport | None:
    """Inspect a Hub repo from its safetensors header alone (no weights downloaded), when it has one."""
    if isinstance(source, Path) or os.path.exists(source):
        return None
    from .hub import remote_safetensors_header
    from .reading import RawCheckpoint
    from .tensors import RemoteTensor
    header = remote_safetensors_header(str(source), revision=revision, token=token)
    if header is None:
        return None
    tensors = {k: RemoteTensor(v["dtype"], tuple(v["shape"])) for k, v in header["tensors"].items()}
    raw = RawCheckpoint(Path(header["filename"]), "safetensors", tensors, header.get("metadata") or {},
                        header.get("config"), notes=["read the remote safetensors header only (no download)"])
    ckpt = canonical_from_raw(raw, layout, hints(img_size, window, pretrained_window),
                              f"{header['repo_id']}@{header['commit']}" if header.get("commit") else str(source))
    dtypes: dict[str, int] = {}
    for src in ckpt.tensors.values():
        dtypes[src.dtype] = dtypes.get(src.dtype, 0) + 1
    size = sum(t.nbytes for t in tensors.values())
    return InspectReport(ckpt, Path(f"hf://{header['repo_id']}/{header['filename']}"), "safetensors", size, dtypes)


def push(folder: str | Path, repo_id: str, **kw):
    """Upload an output folder in one commit; the card's usage snippet gets the repo id."""
    from .card import fill_card_repo_id
    from .hub import push_folder
    readme = Path(folder) / "README.md"
    if readme.is_file():
        text = readme.read_text()
        filled = fill_card_repo_id(text, repo_id)
        if filled != text:
            readme.write_text(filled)
    return push_folder(Path(folder), repo_id, **kw)


def save(ckpt: CanonicalCheckpoint, layout: str, out: str | Path, *, overwrite: bool = False,
         command: str | None = None, card_info: dict | None = None, extra_meta: dict | None = None) -> WriteResult:
    """Write ``ckpt`` in ``layout``; a folder output also gets a model card."""
    target = get_layout(layout)
    card = None
    if output_kind(out) == "folder":
        card = render_card(ckpt, target.name, command or current_command(), card_info)
    return write(ckpt, target, out, overwrite=overwrite, inputs=ckpt.input_paths,
                 extra_meta=extra_meta, card=card)


def remap(source: str | Path, to: str, out: str | Path, *, from_layout: str = "auto", overwrite: bool = False,
          command: str | None = None, **load_kw) -> tuple[CanonicalCheckpoint, WriteResult]:
    """Convert ``source`` to layout ``to`` and write it to ``out``."""
    get_layout(to)
    check_output(Path(out), [], overwrite)   # before any download
    ckpt = load(source, from_layout, **load_kw)
    return ckpt, save(ckpt, to, out, overwrite=overwrite, command=command)


def current_command() -> str:
    argv = [Path(sys.argv[0]).name] + sys.argv[1:]
    if argv[0] in ("cli.py", "__main__.py"):
        argv[0] = "swin-convert"
    return shlex.join(_redact(argv))


def _redact(argv: list[str]) -> list[str]:
    out, hide = [], False
    for a in argv:
        out.append("***" if hide else a.split("=")[0] + "=***" if a.startswith("--token=") else a)
        hide = a == "--token"
    return out


def render_card(ckpt: CanonicalCheckpoint, target: str, command: str, extra: dict | None = None) -> str | None:
    """The model card of an output folder (None when the card module is unavailable)."""
    try:
        from .card import render_card as _render
    except ImportError:
        return None
    spec, origin = ckpt.spec, ckpt.origin
    info = {
        "library_name": {"timm": "timm", "hf": "transformers"}.get(target, "swin-convert"),
        "version": spec.version, "source": ckpt.source, "source_repo": getattr(origin, "repo_id", None),
        "source_commit": getattr(origin, "commit", None), "source_layout": ckpt.source_layout,
        "target_layout": target, "windows_before": list(spec.window_size), "windows_after": list(spec.window_size),
        "img_size_before": spec.img_size, "img_size_after": spec.img_size, "method": None,
        "pretrained_window_sizes": list(spec.pretrained_window_sizes) or None,
        "dtype": ",".join(sorted({s.dtype for s in ckpt.tensors.values()})), "command": command,
        "tool_version": __version__, "verification": None,
    }
    info.update((getattr(origin, "card", None) or {}))
    info.update(extra or {})
    return _render(info)


__all__ = ["Source", "resolve", "load", "inspect", "save", "remap", "InspectReport", "SwinConvertError"]
