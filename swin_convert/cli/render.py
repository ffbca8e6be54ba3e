"""Rich rendering of command results (stdout); nothing here computes anything."""
from __future__ import annotations

import json


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
    console.print(f"[bold]{ckpt.source}[/]")
    console.print(f"  layout        {ckpt.source_layout}  ({facts['label']}{facts['detail']})")
    console.print(f"  file          {report.path} ({report.format}, {_size(report.file_size)})")
    console.print(f"  parameters    {ckpt.num_params:,}  dtypes {', '.join(f'{k} x{v}' for k, v in report.dtypes.items())}")
    console.print(f"  image size    {facts['summary']}")
    console.print(stage_table(facts))
    _render_notes(ckpt, console)


def _render_notes(ckpt, console) -> None:
    for note in ckpt.notes:
        console.print(f"  [dim]note[/] {note}")
    for note in ckpt.assumptions.notes:
        console.print(f"  [yellow]assumed[/] {note}")


def render_written(ckpt, layout: str, result, console) -> None:
    console.print(f"[green]Wrote[/] {result.out} ({layout} layout, {_describe(ckpt, ckpt.spec)['label']}, "
                  f"{result.tensors} tensors, from {ckpt.source_layout})")
    for f in result.files if result.kind == "folder" else []:
        console.print(f"  {f.name}")
    _render_notes(ckpt, console)
    for note in getattr(result, "notes", ()):
        console.print(f"  [yellow]output[/] {note}")


def render_upscaled(result, layout: str, written, console) -> None:
    before, after = result.source_spec, result.checkpoint.spec
    facts = _describe(result.checkpoint, after, before)
    console.print(f"[green]Wrote[/] {written.out} ({layout} layout, {facts['label']}): "
                  f"{_px(before.img_size)} -> {_px(after.img_size)} px")
    console.print(stage_table(facts))
    for line in result.summary:
        console.print(f"  {line}")
    _render_notes(result.checkpoint, console)
    for note in getattr(written, "notes", ()):
        console.print(f"  [yellow]output[/] {note}")


def render_push(result, console) -> None:
    verb = "Would upload" if getattr(result, "dry_run", False) else "Uploaded"
    console.print(f"[green]{verb}[/] {len(result.files)} file(s) to {result.url}")
    for f in result.files:
        console.print(f"  {f}")
    if getattr(result, "card_kept", False):
        console.print("  kept the repo's existing README.md (pass --overwrite-card to replace it)")
