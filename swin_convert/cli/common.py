"""What every command of the CLI shares: the Typer app, option types, the console and the one
error renderer. Nothing heavy is imported here (no torch): `swin-convert --help` stays instant."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SwinConvertError, UsageError

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
MaxShardOpt = Annotated[Optional[str], typer.Option("--max-shard-size", help="Folder output: split the weights into "
                                                    "shards of at most this size (5GB = 10**9 bytes, 10MiB = 2**20, "
                                                    "or bytes), named and indexed as transformers does.",
                                                    rich_help_panel="Output", show_default=False)]
FormatOpt = Annotated[str, typer.Option("--format", help="human or json (one JSON document on stdout, talk on "
                                        "stderr).", rich_help_panel="Output")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No talk on stderr (progress bars, notes); errors and "
                                        "warnings still print.", rich_help_panel="Output")]
FORMATS = ("human", "json")
CastDtypeOpt = Annotated[Optional[str], typer.Option("--dtype", help="Cast every floating tensor to fp32 | fp16 | bf16 "
                                                     "while writing (integer tensors never); default: as the source.",
                                                     rich_help_panel="Output", show_default=False)]


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


class Output:
    """Where a command's output goes: stdout is data, stderr is talk.

    human: the command prints its result lines on stdout itself. json: the command hands its
    result document to :meth:`result` and it is printed, alone, when the command ends; if the
    command fails, stdout gets ``{"error": {...}}`` instead (plus what the command had already
    done, e.g. remap's written output when a --push-to fails). ``quiet``: no talk (bars, notes).
    """

    def __init__(self, fmt: str = "human", quiet: bool = False):
        self.fmt, self.quiet = fmt, quiet
        self.doc: dict | None = None
        self.printed = False
        self.main = True            # False on the other ranks of a torchrun job: they print no data

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    def check_format(self) -> None:
        if self.fmt not in FORMATS:
            raise UsageError(f"Unknown --format '{self.fmt}'.", "Use human or json.", option="--format")

    def result(self, doc: dict) -> None:
        """The command's JSON document (printed at the end, in json mode only)."""
        self.doc = doc

    def talk(self, line: str) -> None:
        """An informational line on stderr (not with --quiet)."""
        if not self.quiet and self.main:
            typer.echo(line, err=True)

    def print_json(self, doc: dict) -> None:
        if self.json and self.main and not self.printed:
            self.printed = True         # one document, even if writing it fails (a closed pipe)
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            sys.stdout.flush()

    def finish(self) -> None:
        if self.doc is not None:
            self.print_json(self.doc)

    def fail(self, error: dict) -> None:
        try:
            self.print_json({**(self.doc or {}), "error": error})
        except OSError:
            pass                        # stdout is gone; the Error: line on stderr still says it


def _os_error_message(e: OSError) -> str:
    return f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}."


def error_dict(e: BaseException) -> dict:
    """The JSON error object: SwinConvertError.to_dict(), or the same fields for an OSError."""
    if isinstance(e, SwinConvertError):
        return e.to_dict()
    return {"type": type(e).__name__, "message": _os_error_message(e), "hint": None, "exit_code": 1,
            "path": None if getattr(e, "filename", None) is None else str(e.filename)}


@contextlib.contextmanager
def errors(fmt: str = "human", quiet: bool = False):
    """User mistakes: one `Error:` line plus a hint on stderr, no traceback (SWIN_CONVERT_DEBUG=1 shows it).

    Yields the command's :class:`Output`; with ``--format json`` the error also goes to stdout as
    ``{"error": {...}}`` (see ``Output``); the exit code is the same in both formats."""
    from ..io.hub import set_download_progress
    out = Output(fmt, quiet)
    set_download_progress(None if quiet else download_bar, hub_bars=not quiet)
    try:
        out.check_format()
        yield out
        out.finish()
    except (SwinConvertError, OSError) as e:
        if os.environ.get("SWIN_CONVERT_DEBUG"):
            raise
        if isinstance(e, SwinConvertError):
            render_error(e.message, e.hint)
        else:
            render_error(_os_error_message(e))
        out.fail(error_dict(e))
        raise typer.Exit(e.exit_code if isinstance(e, SwinConvertError) else 1) from None
    except KeyboardInterrupt as e:
        raise typer.Exit(getattr(e, "exit_code", 130)) from None


def warn_token(token: Optional[str]) -> None:
    if token:
        console(stderr=True).print("[yellow]Warning:[/] --token leaves your token in your shell history and in "
                                    "process listings. Run `hf auth login` once, or export HF_TOKEN.", markup=True)


