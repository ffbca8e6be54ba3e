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
from .core.dtypes import FLOAT_DTYPES, parse_dtype, short_name
from .core.checkpoint import CanonicalCheckpoint
from .core.values import parse_ints  # noqa: F401  (part of the face)
from .errors import SwinConvertError, UsageError
from .families import family_of, get_family, get_layout, read_checkpoint, to_layout
from .io.reading import RawCheckpoint, open_raw, stored_format
from .io.shards import parse_size, plan_shards
from .io.writing import WriteResult, check_expressible, check_output, output_kind, write


READ_ONLY = ("simmim",)      # layouts read, never written


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
            raise UsageError("--revision applies to Hub sources, not to local paths.", "Drop --revision.",
                             option="--revision")
        return Source(Path(source), str(source))
    from .io.hub import resolve_source
    resolved = resolve_source(str(source), revision=revision, token=token, sha256=sha256)
    path = Path(resolved.path) / resolved.filename if resolved.filename else Path(resolved.path)
    return Source(path, resolved.display, resolved)


def flags(img_size: int | None = None, window=None, pretrained_window=None, num_heads=None, **family_flags) -> dict:
    """Source facts the user gave (the family parses them): Swin window, pretrained_window; ViT
    num_heads; a family's own ``family_flags`` (CSWin: ``split``, ``heads``, ``ema``), None when not given."""
    out = {"img_size": img_size, "window": window, "pretrained_window": pretrained_window, **family_flags}
    if num_heads is not None:
        out["num_heads"] = num_heads
    return out


def load(source: str | Path, layout: str = "auto", *, img_size: int | None = None, window=None,
         pretrained_window=None, num_heads: int | None = None, revision: str | None = None,
         token: str | None = None, **family_flags) -> CanonicalCheckpoint:
    """Read any supported checkpoint into the canonical form (spec + lazy tensors).

    ``family_flags``: source facts of one family, e.g. CSWin's ``split="1,2,7,7"``, ``heads``,
    ``ema=False`` (a file with plain and EMA weights: the plain ones)."""
    src = resolve(source, revision=revision, token=token)
    raw = open_raw(src.path, ema=family_flags.get("ema"))
    ckpt = read_checkpoint(raw, layout, flags(img_size, window, pretrained_window, num_heads, **family_flags),
                           src.display)
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
        out = {"source": self.ckpt.source, "path": str(self.path), "format": self.format,
               "family": self.ckpt.family, "layout": self.ckpt.source_layout,
               "version": getattr(spec, "version", None), "file_size": self.file_size,
               "num_params": self.ckpt.num_params, "dtypes": self.dtypes, "spec": spec.to_dict()}
        if hasattr(spec, "resolutions"):
            out.update(stage_resolutions=list(spec.resolutions), shift_sizes=list(getattr(spec, "shift_sizes", ())))
        return {**out, "assumed": list(self.ckpt.assumptions.notes), "notes": list(self.ckpt.notes),
                "other_tensors": len(self.ckpt.other or {})}


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
    fmt, size = stored_format(path)
    return InspectReport(ckpt, path, fmt, size, dtypes)


def _remote_inspect(source, layout: str, *, img_size=None, window=None, pretrained_window=None, num_heads=None,
                    revision=None, token=None, **family_flags) -> InspectReport | None:
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
    shards = header.get("shards", 1)
    note = "read the remote safetensors header only (no download)" + (f"; {shards} shards" if shards > 1 else "")
    raw = RawCheckpoint(Path(header["filename"]), "safetensors", tensors, header.get("metadata") or {},
                        header.get("config"), notes=[note])
    ckpt = read_checkpoint(raw, layout, flags(img_size, window, pretrained_window, num_heads, **family_flags),
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
         command: str | None = None, card_info: dict | None = None, extra_meta: dict | None = None,
         keep_other: bool | None = None, max_shard_size: int | str | None = None,
         dtype: str | None = None) -> WriteResult:
    """Write ``ckpt`` in ``layout``; a folder output also gets a model card.

    ``max_shard_size`` (a folder output: bytes, or ``"5GB"``, ``"10MiB"``): split the weights
    into ``model-0000k-of-0000n.safetensors`` + ``model.safetensors.index.json`` as transformers does.

    ``keep_other``: carry the tensors beside the model (a detector's neck and heads, OpenMMLab's
    earlier output norms) through byte for byte; default: when the target layout holds whole
    models (mmpretrain, mmdet, mmseg). Otherwise they are dropped and counted in the notes.
    ``dtype``: fp32 | fp16 | bf16, every floating tensor cast to it while it is written
    (integer tensors never); recorded in the metadata, the config and the card.
    """
    target_dtype = None if dtype is None else parse_dtype(dtype)
    target = get_layout(layout, ckpt.family)
    check_expressible(target, ckpt.spec)
    fam = family_of(target)
    if fam.write_notes:   # what this layout drops or creates (printed with the read notes)
        ckpt.notes += [n for n in fam.write_notes(target, ckpt.spec, ckpt.tensors) if n not in ckpt.notes]
    tensors = to_layout(target, ckpt.spec, ckpt.tensors)
    tensors, notes = _other_tensors(ckpt, target, tensors, keep_other)
    if card_info is None:    # a plain remap: an earlier upscale's record travels on (metadata and card)
        card_info, carried = carried_transfer(ckpt.metadata)
        if target_dtype is not None:   # cast again: this write's own record replaces the earlier one
            carried = {k: v for k, v in carried.items() if k not in ("dtype", "source_dtype")}
        extra_meta = {**carried, **(extra_meta or {})}
    if target_dtype is not None:
        tensors, cast_meta, cast_card = _cast_tensors(tensors, target_dtype, (extra_meta or {}).get("source_dtype"))
        extra_meta, card_info = {**(extra_meta or {}), **cast_meta}, {**(card_info or {}), **cast_card}
    shards = None
    if max_shard_size is not None:
        _check_shardable(out, max_shard_size)
        shards, shard_notes = plan_shards(target, tensors, max_shard_size)
        notes += shard_notes
    card = None
    if output_kind(out) == "folder":
        info = dict(card_info or {}, **({"shards": len(shards)} if shards else {}))
        info["layout_caveats"] = list(info.get("layout_caveats") or []) + notes
        card = render_card(ckpt, target.name, command or current_command(), info)
    result = write(ckpt, target, out, tensors, overwrite=overwrite, inputs=ckpt.input_paths,
                   extra_meta=extra_meta, card=card, spec_key=family_of(target).metadata_key, shards=shards,
                   dtype=target_dtype)
    result.notes = notes
    return result


def _check_shardable(out, max_shard_size) -> None:
    parse_size(max_shard_size)
    if output_kind(out) != "folder":
        raise UsageError(f"--max-shard-size splits a folder output, and '{out}' is a single file.",
                         "Give -o a folder path (no file suffix), or drop --max-shard-size.")


def _float_dtypes(tensors: dict) -> str:
    """The floating dtypes of ``tensors`` by their CLI names (fp32, or bf16,fp32 when mixed)."""
    return ",".join(sorted({short_name(s.dtype) for s in tensors.values() if s.dtype in FLOAT_DTYPES}))


def _cast_tensors(tensors: dict, dtype: str, source_dtype: str | None = None) -> tuple[dict, dict, dict]:
    """(tensors cast lazily to ``dtype``, metadata, card facts); integer tensors are kept as they are."""
    source_dtype = source_dtype or _float_dtypes(tensors)
    from .core.cast import cast     # numpy: only when asked to cast
    cast_tensors = {k: cast(v, dtype) for k, v in tensors.items()}
    meta = {"dtype": short_name(dtype), "source_dtype": source_dtype}
    card = {"dtype": ",".join(sorted({s.dtype for s in cast_tensors.values()}))}
    if source_dtype != short_name(dtype):
        card["dtype_note"] = f"cast from {source_dtype} to {short_name(dtype)} by swin-convert"
    return cast_tensors, meta, card


def _other_tensors(ckpt: CanonicalCheckpoint, target, tensors: dict, keep_other: bool | None):
    """(tensors, notes) with the checkpoint's other tensors carried or dropped."""
    other = ckpt.other or {}
    keep = target.whole_model is not None if keep_other is None else keep_other
    if keep_other and target.whole_model is None and other:
        raise UsageError(f"The {target.name} layout holds a model's own tensors only, not "
                         f"{len(other)} tensors beside it.", "Drop --keep-other, or pick mmpretrain/mmdet/mmseg.")
    notes = list(target.write_notes(ckpt.spec, other if keep else {}) if target.write_notes else [])
    if other and keep:
        tensors = target.whole_model(tensors, other, ckpt.spec)
        notes.append(f"carried {len(other)} tensors beside the model through unchanged ({_groups(other)})")
    elif other:
        notes.append(f"dropped {len(other)} tensors that {target.name} does not hold ({_groups(other)})")
    return tensors, notes


def _groups(keys) -> str:
    groups: dict[str, int] = {}
    for k in keys:
        parts = k.split(".")
        g = ".".join(parts[:2]) if parts[0] == "backbone" else parts[0]
        groups[g] = groups.get(g, 0) + 1
    return ", ".join(f"{g}.* x{n}" if n > 1 else g for g, n in groups.items())


def remap(source: str | Path, to: str, out: str | Path, *, from_layout: str = "auto", overwrite: bool = False,
          command: str | None = None, keep_other: bool | None = None, max_shard_size: int | str | None = None,
          dtype: str | None = None, **load_kw) -> tuple[CanonicalCheckpoint, WriteResult]:
    """Convert ``source`` to layout ``to`` and write it to ``out`` (``keep_other``, ``max_shard_size``,
    ``dtype``: see ``save``)."""
    if dtype is not None:
        parse_dtype(dtype)                    # before any download
    target = get_layout(to)
    if target.name in READ_ONLY:
        raise UsageError(f"{target.name} is a source layout only (nothing loads it back).",
                         "Pick another TO: official, timm, hf, torchvision, mmpretrain, mmdet or mmseg.")
    check_output(Path(out), [], overwrite)   # before any download
    if max_shard_size is not None:
        _check_shardable(out, max_shard_size)
    ckpt = load(source, from_layout, **load_kw)
    return ckpt, save(ckpt, to, out, overwrite=overwrite, command=command, keep_other=keep_other,
                      max_shard_size=max_shard_size, dtype=dtype)


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
        "version": getattr(spec, "version", 1), "source": ckpt.source, "source_repo": getattr(origin, "repo_id", None),
        "source_commit": getattr(origin, "commit", None), "source_layout": ckpt.source_layout,
        "target_layout": target, "windows_before": _listed(spec, "window_size"),
        "windows_after": _listed(spec, "window_size"),
        "img_size_before": spec.img_size, "img_size_after": spec.img_size, "method": None,
        "pretrained_window_sizes": _listed(spec, "pretrained_window_sizes") or None,
        "dtype": ",".join(sorted({s.dtype for s in ckpt.tensors.values()})), "command": command,
        "tool_version": __version__, "verification": None,
    }
    if hasattr(spec, "window_size"):
        info.update(windows_before=list(spec.window_size), windows_after=list(spec.window_size),
                    pretrained_window_sizes=list(spec.pretrained_window_sizes) or None)
    info.update(get_family(ckpt.family).card_facts(spec))
    info.update((getattr(origin, "card", None) or {}))
    info.update(extra or {})
    return _render(info)


def _listed(spec, name: str):
    value = getattr(spec, name, None)
    return None if value is None else list(value)


def upscale(source: str | Path, out: str | Path, *, to: str | None = None, overwrite: bool = False,
            img_size: int | None = None, src_window=None, src_pretrained_window=None, num_heads: int | None = None,
            revision: str | None = None, token: str | None = None, command: str | None = None,
            src_flags: dict | None = None, ema: bool | None = None, keep_other: bool | None = None,
            max_shard_size: int | str | None = None, dtype: str | None = None, **options):
    """Move ``source`` to a new geometry and write it. Family options: Swin's ``window``, ``res``,
    ``method`` (bicubic | geometric), ``pretrained_window``, ``num_classes``, ``map_22k_to_1k``,
    ``head_map``, ``bake_cpb``; ViT's ``res``, ``method`` (timm | hf | hf-legacy | torchvision |
    bilinear), ``patch_size``; CSWin's ``res``, ``split``. Options left at None / False are not
    passed; a family refuses the options it does not take. ``src_flags``: a family's own source
    facts (see :func:`load`); ``ema``: which weights of a training file; ``keep_other``, ``max_shard_size``,
    ``dtype``: see :func:`save` (the transfer computes in fp32 from the source, then the output is cast).

    Returns:
        (the family's transfer result, the WriteResult).
    """
    if to is not None and get_layout(to).name in READ_ONLY:
        raise UsageError(f"{get_layout(to).name} is a source layout only (nothing loads it back).",
                         "Pick another --to.")
    if max_shard_size is not None:
        _check_shardable(out, max_shard_size)
    target_dtype = None if dtype is None else parse_dtype(dtype)
    source_flags = dict(src_flags or {})
    if ema is not None:
        source_flags["ema"] = ema
    ckpt = load(source, "auto", img_size=img_size, window=src_window, pretrained_window=src_pretrained_window,
                num_heads=num_heads, revision=revision, token=token, **source_flags)
    target = to or (ckpt.source_layout if ckpt.source_layout not in READ_ONLY else "official")
    options = {k: v for k, v in options.items() if v is not None and v is not False}
    options["target_layout"] = get_layout(target, ckpt.family).name
    cast_meta = {}
    if target_dtype is not None:
        cast_meta["source_dtype"] = _float_dtypes(ckpt.tensors)
        if target_dtype == "F32":      # widening is exact: the transfer then computes from, and keeps, fp32
            from .core.cast import cast
            ckpt.tensors = {k: cast(v, target_dtype) for k, v in ckpt.tensors.items()}
    result = get_family(ckpt.family).transfer(ckpt, options)
    if not result.checkpoint.other and ckpt.other:
        result.checkpoint.other = ckpt.other
    meta = {**(result.metadata or {}), **cast_meta}
    meta[TRANSFER_RECORD] = transfer_record(result.card_info, command or current_command())
    written = save(result.checkpoint, target, out, overwrite=overwrite, command=command,
                   card_info=result.card_info, extra_meta=meta, keep_other=keep_other,
                   max_shard_size=max_shard_size, dtype=dtype)
    return result, written


TRANSFER_RECORD = "transfer_record"    # metadata key (swin_convert.transfer_record): what an upscale changed
_RECORD_FIELDS = ("windows_before", "img_size_before", "split_before", "method", "method_line", "bias_text",
                  "pretrained_window_sizes")
_PROVENANCE = ("version", "source", "source_layout", "layout")


def transfer_record(card_info: dict, command: str) -> str:
    """The JSON an upscale leaves in its output's metadata, so a later remap's card still says what
    the geometry was before the transfer and how it was moved (not "unchanged")."""
    import json
    record = {k: card_info[k] for k in _RECORD_FIELDS if card_info.get(k) is not None}
    record["command"] = command
    return json.dumps(record, sort_keys=True)


def carried_transfer(metadata: dict) -> tuple[dict | None, dict]:
    """(card facts, metadata to write again) from a source written by an earlier upscale; (None, {})
    for any other source. The record is untrusted text: anything but the expected small JSON object of
    scalars and lists of ints is ignored."""
    import json
    text = (metadata or {}).get(f"swin_convert.{TRANSFER_RECORD}")
    if not isinstance(text, str) or len(text) > 8192:
        return None, {}
    try:
        record = json.loads(text)
    except ValueError:
        return None, {}
    if not isinstance(record, dict):
        return None, {}
    info = {k: v for k, v in record.items() if k in _RECORD_FIELDS and _plain(v)}
    if not info:
        return None, {}
    command = record.get("command")
    if isinstance(command, str) and command:
        info["details"] = [f"Transfer carried forward from the source, made earlier by `{command[:300]}`"]
    carried = {k[len("swin_convert."):]: v for k, v in metadata.items()
               if k.startswith("swin_convert.") and isinstance(v, str)
               and k[len("swin_convert."):] not in _PROVENANCE and not k.endswith("spec")}
    return info, carried


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= 500


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
