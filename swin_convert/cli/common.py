"""What every command of the CLI shares: the Typer app, option types, the console and the one
error renderer. Nothing heavy is imported here (no torch): `swin-convert --help` stays instant."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SwinConvertError

app = typer.Typer(
    name="swin-convert",
    help="Convert Swin Transformer, ViT and CSWin checkpoints between layouts (official, timm, transformers, "
         "torchvision, OpenMMLab, DeiT; SimMIM read), move them to new window sizes and resolutions, and check "
         "the result numerically.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)

LAYOUT_NAMES = ("Swin: official | timm | hf | torchvision | mmpretrain | mmdet | mmseg; ViT: timm | hf | torchvision | "
                "deit; CSWin: official | seg")
FROM_NAMES = LAYOUT_NAMES + "; Swin, as FROM only: simmim"
SourceArg = Annotated[str, typer.Argument(help="Local file or folder, Hub repo id (org/name[@rev]) or http(s) URL.",
                                          show_default=False)]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="OUT: x.safetensors, x.pth, or a folder ready to load.",
                                      rich_help_panel="Output", show_default=False)]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists (never the input).",
                                            rich_help_panel="Output")]
ImgSizeOpt = Annotated[Optional[str], typer.Option("--img-size", help="Source image size, when the checkpoint "
                                                   "and its config do not record it (ViT: H,W for a non-square "
                                                   "grid).", rich_help_panel="Source", show_default=False)]
SrcWindowOpt = Annotated[Optional[str], typer.Option("--src-window", help="Source window (V2 checkpoints without "
                                                     "buffers or config), e.g. 8 or 16,16,16,8.",
                                                     rich_help_panel="Source")]
PretrainedOpt = Annotated[Optional[str], typer.Option("--pretrained-window", help="V2 pretrained window(s) the "
                                                      "CPB coordinates are normalised by; 0 = each stage's own.",
                                                      rich_help_panel="Source")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="CSWin: the source's stripe width per stage "
                                                "(a,b,c,d), when not recorded; default the official one.",
                                                rich_help_panel="Source")]
HeadsOpt = Annotated[Optional[str], typer.Option("--heads", help="CSWin: heads per stage (a,b,c,d), when not "
                                                "recorded and no official model matches.", rich_help_panel="Source")]

def family_flags(split=None, heads=None, ema=None) -> dict:
    """Source flags of one family (left out when not given)."""
    return {k: v for k, v in (("split", split), ("heads", heads), ("ema", ema)) if v is not None}


NumHeadsOpt = Annotated[Optional[int], typer.Option("--num-heads", help="ViT: attention heads, when no config "
                                                    "records them (default: head dim 64).", rich_help_panel="Source")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.",
                                                    rich_help_panel="Hub")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="Hub token (prefer HF_TOKEN or `hf auth login`).",
                                                 rich_help_panel="Hub")]
PushOpt = Annotated[Optional[str], typer.Option("--push-to", help="Also upload the output folder to this Hub repo.",
                                                rich_help_panel="Hub")]
EmaOpt = Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="A training file with plain and EMA "
                                               "weights: which to take (default: EMA, as timm's load_checkpoint).",
                                               rich_help_panel="Source", show_default=False)]
KeepOtherOpt = Annotated[Optional[bool], typer.Option("--keep-other/--no-keep-other", help="Carry a detector's or "
                                                      "segmentor's other tensors (neck, heads) through unchanged "
                                                      "(default: on for mmpretrain/mmdet/mmseg targets, else dropped).",
                                                      rich_help_panel="Output", show_default=False)]
FormatOpt = Annotated[str, typer.Option("--format", help="human or json.", rich_help_panel="Output")]


def console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)   # no :name: codes (or their import)


@contextlib.contextmanager
def download_bar(label: str, total, initial: int):
    """A transient rich download bar on stderr; yields ``advance(n)``. Silent off a terminal."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    err = console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)
    with bar:
        task = bar.add_task(label, total=total, completed=initial)
        yield lambda n: bar.advance(task, n)


def render_error(message: str, hint: str | None = None) -> None:
    """The one renderer of every error: `Error: <message>` and an optional `Hint:` line on stderr."""
    from rich.markup import escape
    err = console(stderr=True)
    err.print(f"[bold red]Error:[/] {escape(' '.join(message.split()))}", markup=True)
    if hint:
        err.print(f"[dim]Hint:[/] {escape(' '.join(hint.split()))}", markup=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every `finally` (temp files, created folders) runs."""

    exit_code = 143


def on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)    # a second SIGTERM kills at once
    raise Terminated()


@contextlib.contextmanager
def errors():
    """User mistakes: one `Error:` line plus a hint on stderr, no traceback (SWIN_CONVERT_DEBUG=1 shows it)."""
    from ..io.hub import set_download_progress
    set_download_progress(download_bar)
    try:
        yield
    except (SwinConvertError, OSError) as e:
        if os.environ.get("SWIN_CONVERT_DEBUG"):
            raise
        if isinstance(e, SwinConvertError):
            render_error(e.message, e.hint)
            raise typer.Exit(e.exit_code) from None
        render_error(f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}.")
        raise typer.Exit(1) from None
    except KeyboardInterrupt as e:
        raise typer.Exit(getattr(e, "exit_code", 130)) from None


def warn_token(token: Optional[str]) -> None:
    if token:
        console(stderr=True).print("[yellow]Warning:[/] --token leaves your token in your shell history and in "
                                    "process listings. Run `hf auth login` once, or export HF_TOKEN.", markup=True)


