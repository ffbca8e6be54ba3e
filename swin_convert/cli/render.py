"""Rich rendering of command results (stdout); nothing here computes anything."""
from __future__ import annotations

import json
import re

_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _esc(value) -> str:
    """``value`` as text rich prints literally (rich.markup.escape, without importing rich): a
    path like ``out[v2]/`` would otherwise lose its ``[v2]`` as a style tag."""
    text = _TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", str(value))
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _describe(ckpt, spec, before=None) -> dict:
    from ..families import get_family
    return get_family(ckpt.family).describe(spec, before)


def _px(size) -> str:
    if isinstance(size, (tuple, list)):
        return str(size[0]) if size[0] == size[1] else f"{size[0]}x{size[1]}"
    return str(size)


def stage_table(facts: dict) -> "Table":
    from rich.table import Table    # here: a remap prints no table and need not import it
    t = Table(title=None, show_edge=False, pad_edge=False)
    for col in facts["columns"]:
        t.add_column(col, justify="right")
    for row in facts["rows"]:
        t.add_row(*row)
    return t


def render_inspect(report, console, fmt: str = "human") -> None:
    if fmt == "json":
        console.print_json(json.dumps(report.to_dict()))
        return
    ckpt, spec = report.ckpt, report.ckpt.spec
    facts = _describe(ckpt, spec)
    console.print(f"[bold]{_esc(ckpt.source)}[/]")
    console.print(f"  layout        {ckpt.source_layout}  ({facts['label']}{facts['detail']})")
    console.print(f"  file          {_esc(report.path)} ({report.format}, {_size(report.file_size)})")
    console.print(f"  parameters    {ckpt.num_params:,}  dtypes {', '.join(f'{k} x{v}' for k, v in report.dtypes.items())}")
    console.print(f"  image size    {facts['summary']}")
    console.print(stage_table(facts))
    _render_notes(ckpt, console)


def _render_notes(ckpt, console) -> None:
    for note in ckpt.notes:
        console.print(f"  [dim]note[/] {_esc(note)}")
    for note in ckpt.assumptions.notes:
        console.print(f"  [yellow]assumed[/] {_esc(note)}")


def render_written(ckpt, layout: str, result, console) -> None:
    console.print(f"[green]Wrote[/] {_esc(result.out)} ({layout} layout, {_describe(ckpt, ckpt.spec)['label']}, "
                  f"{result.tensors} tensors, from {ckpt.source_layout})")
    for f in result.files if result.kind == "folder" else []:
        console.print(f"  {_esc(f.name)}")
    _render_notes(ckpt, console)
    for note in getattr(result, "notes", ()):
        console.print(f"  [yellow]output[/] {_esc(note)}")


def render_upscaled(result, layout: str, written, console) -> None:
    before, after = result.source_spec, result.checkpoint.spec
    facts = _describe(result.checkpoint, after, before)
    console.print(f"[green]Wrote[/] {_esc(written.out)} ({layout} layout, {facts['label']}): "
                  f"{_px(before.img_size)} -> {_px(after.img_size)} px")
    console.print(stage_table(facts))
    for line in result.summary:
        console.print(f"  {_esc(line)}")
    _render_notes(result.checkpoint, console)
    for note in getattr(written, "notes", ()):
        console.print(f"  [yellow]output[/] {_esc(note)}")


def render_push(result, console) -> None:
    verb = "Would upload" if getattr(result, "dry_run", False) else "Uploaded"
    console.print(f"[green]{verb}[/] {len(result.files)} file(s) to {_esc(result.url)}")
    for f in result.files:
        console.print(f"  {_esc(f)}")
    if getattr(result, "card_kept", False):
        console.print("  kept the repo's existing README.md (pass --overwrite-card to replace it)")


# ----------------------------------------------------------------------------------------
# --format json: one document per command (fields documented in README "Machine-readable output")
# ----------------------------------------------------------------------------------------
def _layout_name(layout: str, family: str) -> str:
    from ..families import get_layout
    return get_layout(layout, family).name


def _plain(value):
    """spec dicts as JSON values (tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def written_doc(ckpt, layout: str, result, command: str = "remap") -> dict:
    """remap's JSON document: what was written and from what, with every note."""
    return {"command": command, "output": str(result.out), "kind": result.kind,
            "files": [str(f) for f in result.files], "layout": _layout_name(layout, ckpt.family),
            "family": ckpt.family, "label": _describe(ckpt, ckpt.spec)["label"], "tensors": result.tensors,
            "source": ckpt.source, "source_layout": ckpt.source_layout, "spec": _plain(ckpt.spec.to_dict()),
            "notes": list(ckpt.notes), "assumed": list(ckpt.assumptions.notes),
            "output_notes": list(getattr(result, "notes", ()))}


def upscaled_doc(result, layout: str, written) -> dict:
    """upscale's JSON document: remap's fields plus the geometry before and what was transferred."""
    doc = written_doc(result.checkpoint, layout, written, command="upscale")
    doc.update(before=_plain(result.source_spec.to_dict()), transfer=list(result.summary))
    return doc


def push_doc(result, repo_id: str, revision: str | None) -> dict:
    """push's JSON document (remap/upscale --push-to nest it under "push")."""
    base = result.url.split(f"/{repo_id}", 1)[0] + f"/{repo_id}"
    return {"command": "push", "repo_id": repo_id, "revision": revision or "main", "url": result.url,
            "commit": result.commit, "commit_url": f"{base}/commit/{result.commit}" if result.commit else None,
            "files": list(result.files), "dry_run": bool(result.dry_run), "card_kept": bool(result.card_kept)}


def show_inspect(out, report) -> None:
    if out.json:
        out.result({"command": "inspect", **report.to_dict()})
    else:
        from .output import result_console as console
        render_inspect(report, console())


def show_written(out, ckpt, layout: str, result) -> None:
    if out.json:
        out.result(written_doc(ckpt, layout, result))
    else:
        from .output import result_console as console
        render_written(ckpt, layout, result, console())


def show_upscaled(out, result, layout: str, written) -> None:
    if out.json:
        out.result(upscaled_doc(result, layout, written))
    else:
        from .output import result_console as console
        render_upscaled(result, layout, written, console())


def show_push(out, result, repo_id: str, revision: str | None = None, nested: bool = False) -> None:
    """push's result; ``nested``: remap/upscale --push-to, added to their document as "push"."""
    if not out.json:
        from .output import result_console as console
        render_push(result, console())
    elif nested and out.doc is not None:
        out.doc["push"] = {k: v for k, v in push_doc(result, repo_id, revision).items() if k != "command"}
    else:
        out.result(push_doc(result, repo_id, revision))
