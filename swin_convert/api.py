"""The library API: the operations the CLI exposes, composed from the modules below.

    ckpt = swin_convert.load("microsoft/swin-tiny-patch4-window7-224")
    swin_convert.save(ckpt, "timm", "out/")
    swin_convert.upscale("swin_base_patch4_window12_384.pth", "out/", window=24, res=768)
    report = swin_convert.check("out/", against="swin_base_patch4_window12_384.pth", runtimes=("all",))

The CLI only parses arguments and renders what these functions return.
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ._version import __version__
from .core.checkpoint import CanonicalCheckpoint
from .core.values import parse_ints  # noqa: F401  (part of the face)
from .errors import SwinConvertError, UsageError
from .families import family_of, get_family, get_layout, read_checkpoint, to_layout
from .io.reading import RawCheckpoint, is_safetensors, open_raw
from .io.writing import WriteResult, check_expressible, check_output, output_kind, write


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
    from .io.hub import resolve_source
    resolved = resolve_source(str(source), revision=revision, token=token, sha256=sha256)
    path = Path(resolved.path) / resolved.filename if resolved.filename else Path(resolved.path)
    return Source(path, resolved.display, resolved)


def flags(img_size: int | None = None, window=None, pretrained_window=None, **family_flags) -> dict:
    """Source facts the user gave (the family parses them); ``family_flags`` are a family's own
    (CSWin: ``split``, ``heads``, ``ema``), None when not given."""
    return {"img_size": img_size, "window": window, "pretrained_window": pretrained_window, **family_flags}


def load(source: str | Path, layout: str = "auto", *, img_size: int | None = None, window=None,
         pretrained_window=None, revision: str | None = None, token: str | None = None,
         **family_flags) -> CanonicalCheckpoint:
    """Read any supported checkpoint into the canonical form (spec + lazy tensors).

    ``family_flags``: source facts of one family, e.g. CSWin's ``split="1,2,7,7"``, ``heads``,
    ``ema=False`` (a file with plain and EMA weights: the plain ones)."""
    src = resolve(source, revision=revision, token=token)
    raw = open_raw(src.path, ema=family_flags.get("ema"))
    ckpt = read_checkpoint(raw, layout, flags(img_size, window, pretrained_window, **family_flags), src.display)
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
        return {"source": self.ckpt.source, "family": self.ckpt.family, "path": str(self.path), "format": self.format,
                "layout": self.ckpt.source_layout, "version": spec.version, "file_size": self.file_size,
                "num_params": self.ckpt.num_params, "dtypes": self.dtypes, "spec": spec.to_dict(),
                "stage_resolutions": list(spec.resolutions), "shift_sizes": list(getattr(spec, "shift_sizes", ())),
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
                    token=None, **family_flags) -> InspectReport | None:
    """Inspect a Hub repo from its safetensors header alone (no weights downloaded), when it has one."""
    if isinstance(source, Path) or os.path.exists(source):
        return None
    from .core.tensors import RemoteTensor
    from .io.hub import remote_safetensors_header
    header = remote_safetensors_header(str(source), revision=revision, token=token)
    if header is None:
        return None
    from .core.tensors import DTYPES
    from .errors import BadInputError
    tensors = {}
    for k, v in header["tensors"].items():
        shape = v.get("shape")
        if (v.get("dtype") not in DTYPES or not isinstance(shape, (list, tuple))
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise BadInputError(f"The safetensors header of '{header['repo_id']}/{header['filename']}' has a "
                                f"malformed entry for '{str(k)[:100]}'.", "Report it to the repo owner.")
        tensors[k] = RemoteTensor(v["dtype"], tuple(shape))
    raw = RawCheckpoint(Path(header["filename"]), "safetensors", tensors, header.get("metadata") or {},
                        header.get("config"), notes=["read the remote safetensors header only (no download)"])
    ckpt = read_checkpoint(raw, layout, flags(img_size, window, pretrained_window, **family_flags),
                           f"{header['repo_id']}@{header['commit']}" if header.get("commit") else str(source))
    dtypes: dict[str, int] = {}
    for src in ckpt.tensors.values():
        dtypes[src.dtype] = dtypes.get(src.dtype, 0) + 1
    size = sum(t.nbytes for t in tensors.values())
    return InspectReport(ckpt, Path(f"hf://{header['repo_id']}/{header['filename']}"), "safetensors", size, dtypes)


def push(folder: str | Path, repo_id: str, **kw):
    """Upload an output folder in one commit; the uploaded card's usage snippet gets the repo id
    (the folder itself is left as it is, whether the push succeeds or not)."""
    from .io.hub import push_folder
    return push_folder(Path(folder), repo_id, **kw)


def save(ckpt: CanonicalCheckpoint, layout: str, out: str | Path, *, overwrite: bool = False,
         command: str | None = None, card_info: dict | None = None, extra_meta: dict | None = None) -> WriteResult:
    """Write ``ckpt`` in ``layout``; a folder output also gets a model card."""
    target = get_layout(layout, ckpt.family)
    check_expressible(target, ckpt.spec)
    fam = family_of(target)
    if fam.write_notes:   # what this layout drops or creates (printed with the read notes)
        ckpt.notes += [n for n in fam.write_notes(target, ckpt.spec, ckpt.tensors) if n not in ckpt.notes]
    card = None
    if output_kind(out) == "folder":
        card = render_card(ckpt, target.name, command or current_command(), card_info)
    tensors = to_layout(target, ckpt.spec, ckpt.tensors)
    return write(ckpt, target, out, tensors, overwrite=overwrite, inputs=ckpt.input_paths,
                 extra_meta=extra_meta, card=card, spec_key=family_of(target).metadata_key)


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


def render_card(ckpt: CanonicalCheckpoint, target: str, command: str, extra: dict | None = None) -> str:
    """The model card of an output folder."""
    from .core.card import render_card as _render
    spec, origin = ckpt.spec, ckpt.origin
    info = {
        "library_name": get_layout(target, ckpt.family).library_name,
        "version": spec.version, "source": ckpt.source, "source_repo": getattr(origin, "repo_id", None),
        "source_commit": getattr(origin, "commit", None), "source_layout": ckpt.source_layout,
        "target_layout": target, "windows_before": _listed(spec, "window_size"),
        "windows_after": _listed(spec, "window_size"),
        "img_size_before": spec.img_size, "img_size_after": spec.img_size, "method": None,
        "pretrained_window_sizes": _listed(spec, "pretrained_window_sizes") or None,
        "dtype": ",".join(sorted({s.dtype for s in ckpt.tensors.values()})), "command": command,
        "tool_version": __version__, "verification": None,
    }
    info.update(get_family(ckpt.family).card_facts(spec))
    info.update((getattr(origin, "card", None) or {}))
    info.update(extra or {})
    return _render(info)


def _listed(spec, name: str):
    value = getattr(spec, name, None)
    return None if value is None else list(value)


def upscale(source: str | Path, out: str | Path, *, to: str | None = None, overwrite: bool = False,
            img_size: int | None = None, src_window=None, src_pretrained_window=None, revision: str | None = None,
            token: str | None = None, command: str | None = None, src_flags: dict | None = None, **options):
    """Move ``source`` to a new geometry (family options, e.g. Swin's ``window``, ``res``, ``method``,
    ``pretrained_window``, ``num_classes``, ``map_22k_to_1k``, ``head_map``, ``bake_cpb``; CSWin's
    ``res``, ``split``) and write it. ``src_flags``: a family's own source facts (see :func:`load`).

    Returns:
        (the family's transfer result, the WriteResult).
    """
    ckpt = load(source, "auto", img_size=img_size, window=src_window, pretrained_window=src_pretrained_window,
                revision=revision, token=token, **(src_flags or {}))
    # options not given are left out, so a family refuses only what was asked of it (Swin: --split)
    result = get_family(ckpt.family).transfer(ckpt, {k: v for k, v in options.items() if v is not None})
    written = save(result.checkpoint, to or ckpt.source_layout, out, overwrite=overwrite, command=command,
                   card_info=result.card_info, extra_meta=result.metadata)
    return result, written


def _loaded(source, **flags) -> CanonicalCheckpoint:
    return source if isinstance(source, CanonicalCheckpoint) else load(source, **flags)


def check(candidate, against=None, *, against_flags: dict | None = None, **kw):
    """Compare the candidate's outputs with the source's (see ``swin_convert.check.engine.run_check``).

    ``candidate`` and ``against`` are paths, Hub ids, URLs or loaded checkpoints; ``against_flags``
    are source facts of ``against`` (as :func:`load` takes them: ``img_size``, CSWin's ``split``...).
    """
    from .check.engine import run_check
    src = None if against is None else _loaded(against, **(against_flags or {}))
    return run_check(_loaded(candidate), src, **kw)


def evaluate_accuracy(candidate, data, **kw):
    """Top-1/top-5 on an image folder (see ``swin_convert.check.engine.evaluate_accuracy``)."""
    from .check.engine import evaluate_accuracy as _evaluate
    return _evaluate(_loaded(candidate), data, **kw)


__all__ = ["Source", "resolve", "load", "inspect", "save", "remap", "upscale", "check", "evaluate_accuracy", "push",
           "InspectReport", "SwinConvertError"]
