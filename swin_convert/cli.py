"""The `swin-convert` command line: parse, call swin_convert.api, render with rich.

Nothing heavy is imported at start-up (no torch): `swin-convert --help` stays instant.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import SwinConvertError

app = typer.Typer(
    name="swin-convert",
    help="Convert Swin Transformer checkpoints between layouts (official, timm, transformers), "
         "move them to new window sizes and resolutions, and check the result numerically.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)

LAYOUT_NAMES = "official | timm | hf"
SourceArg = Annotated[str, typer.Argument(help="Local file or folder, Hub repo id (org/name[@rev]) or http(s) URL.",
                                          show_default=False)]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="OUT: x.safetensors, x.pth, or a folder ready to load.",
                                      rich_help_panel="Output", show_default=False)]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists (never the input).",
                                            rich_help_panel="Output")]
ImgSizeOpt = Annotated[Optional[int], typer.Option("--img-size", help="Source image size, when the checkpoint "
                                                   "and its config do not record it.", rich_help_panel="Source")]
SrcWindowOpt = Annotated[Optional[str], typer.Option("--src-window", help="Source window (V2 checkpoints without "
                                                     "buffers or config), e.g. 8 or 16,16,16,8.",
                                                     rich_help_panel="Source")]
PretrainedOpt = Annotated[Optional[str], typer.Option("--pretrained-window", help="V2 pretrained window(s) the "
                                                      "CPB coordinates are normalised by; 0 = each stage's own.",
                                                      rich_help_panel="Source")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.",
                                                    rich_help_panel="Hub")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="Hub token (prefer HF_TOKEN or `hf auth login`).",
                                                 rich_help_panel="Hub")]
PushOpt = Annotated[Optional[str], typer.Option("--push-to", help="Also upload the output folder to this Hub repo.",
                                                rich_help_panel="Hub")]
FormatOpt = Annotated[str, typer.Option("--format", help="human or json.", rich_help_panel="Output")]


def _console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _errors():
    """User mistakes: one `Error:` line plus a hint on stderr, no traceback (SWIN_CONVERT_DEBUG=1 shows it)."""
    try:
        yield
    except (SwinConvertError, OSError) as e:
        if os.environ.get("SWIN_CONVERT_DEBUG"):
            raise
        err = _console(stderr=True)
        if isinstance(e, SwinConvertError):
            err.print(f"[bold red]Error:[/] {e.message}", markup=True)
            if e.hint:
                err.print(f"[dim]Hint:[/] {e.hint}", markup=True)
            raise typer.Exit(e.exit_code) from None
        err.print(f"[bold red]Error:[/] {e.strerror or e}{f': {e.filename}' if e.filename else ''}.", markup=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _warn_token(token: Optional[str]) -> None:
    if token:
        _console(stderr=True).print("[yellow]Warning:[/] --token leaves your token in your shell history and in "
                                    "process listings. Run `hf auth login` once, or export HF_TOKEN.", markup=True)


@app.command(epilog="Examples: swin-convert inspect ckpt.pth | swin-convert inspect timm/swin_tiny_patch4_window7_224.ms_in1k")
def inspect(source: SourceArg,
            from_layout: Annotated[str, typer.Option("--from", help=f"Source layout: auto | {LAYOUT_NAMES}.",
                                                     rich_help_panel="Source")] = "auto",
            img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
            revision: RevisionOpt = None, token: TokenOpt = None, fmt: FormatOpt = "human"):
    """Show a checkpoint's layout, version, per-stage geometry, size and what was assumed."""
    _warn_token(token)
    with _errors():
        from . import api
        from ._render import render_inspect
        report = api.inspect(source, from_layout, img_size=img_size, window=src_window,
                             pretrained_window=pretrained_window, revision=revision, token=token)
        render_inspect(report, _console(), fmt)


@app.command(epilog="Example: swin-convert remap official timm swin_tiny_patch4_window7_224.pth -o swin-t-timm/")
def remap(from_layout: Annotated[str, typer.Argument(metavar="FROM", help=f"auto | {LAYOUT_NAMES}")],
          to_layout: Annotated[str, typer.Argument(metavar="TO", help=LAYOUT_NAMES)],
          source: SourceArg, out: OutOpt, overwrite: OverwriteOpt = False,
          img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
          revision: RevisionOpt = None, token: TokenOpt = None, push_to: PushOpt = None):
    """Convert a checkpoint from one key layout to another (same weights, same geometry)."""
    _warn_token(token)
    with _errors():
        from . import api
        from ._render import render_written
        ckpt, result = api.remap(source, to_layout, out, from_layout=from_layout, overwrite=overwrite,
                                 img_size=img_size, window=src_window, pretrained_window=pretrained_window,
                                 revision=revision, token=token)
        render_written(ckpt, to_layout, result, _console())
        _maybe_push(result, push_to, token)


@app.command(epilog="Example: swin-convert upscale swin_base_patch4_window12_384.pth --window 24 --res 768 -o out/")
def upscale(source: SourceArg, out: OutOpt,
            window: Annotated[Optional[str], typer.Option("--window", help="New window, or one per stage "
                                                          "(24 or 24,24,24,12).", rich_help_panel="Transfer")] = None,
            res: Annotated[Optional[int], typer.Option("--res", help="New image size.",
                                                       rich_help_panel="Transfer")] = None,
            to_layout: Annotated[Optional[str], typer.Option("--to", help=f"Output layout ({LAYOUT_NAMES}); "
                                                             "default: the source's.", rich_help_panel="Output")] = None,
            method: Annotated[str, typer.Option("--method", help="V1 bias-table resize: bicubic (official) or "
                                                "geometric (timm).", rich_help_panel="Transfer")] = "bicubic",
            new_pretrained_window: Annotated[Optional[str], typer.Option(
                "--pretrained-window", help="V2: pretrained window(s) to record; 0 = stretch semantics. "
                "Default: the source's own pretrained windows, else its windows.", rich_help_panel="Transfer")] = None,
            num_classes: Annotated[Optional[int], typer.Option("--num-classes", help="0 drops the head.",
                                                               rich_help_panel="Head")] = None,
            map_22k_to_1k: Annotated[bool, typer.Option("--map-22k-to-1k", help="Keep the 1000 ImageNet-1k rows of "
                                                        "a 21841-class head.", rich_help_panel="Head")] = False,
            head_map: Annotated[Optional[Path], typer.Option("--head-map", help="File of row indices to keep from "
                                                             "the head (one per line).", rich_help_panel="Head")] = None,
            bake_cpb: Annotated[bool, typer.Option("--bake-cpb", help="V2: evaluate the CPB MLP into static bias "
                                                   "tables (inference only; official layout).",
                                                   rich_help_panel="Transfer")] = False,
            overwrite: OverwriteOpt = False, img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None,
            pretrained_window: Annotated[Optional[str], typer.Option(
                "--src-pretrained-window", help="V2: the source's pretrained windows, when not recorded.",
                rich_help_panel="Source")] = None,
            revision: RevisionOpt = None, token: TokenOpt = None, push_to: PushOpt = None):
    """Move a checkpoint to a new window size and/or resolution (V1 tables resized, V2 CPB re-evaluated)."""
    _warn_token(token)
    with _errors():
        from . import api
        from ._render import render_upscaled
        from .transfer import TransferRequest, upscale_checkpoint
        ckpt = api.load(source, "auto", img_size=img_size, window=src_window, pretrained_window=pretrained_window,
                        revision=revision, token=token)
        request = TransferRequest(window=api.parse_ints(window, "--window"), img_size=res, method=method,
                                  pretrained_window=api.parse_ints(new_pretrained_window, "--pretrained-window"),
                                  num_classes=num_classes, map_22k_to_1k=map_22k_to_1k, head_map=head_map,
                                  bake_cpb=bake_cpb)
        result = upscale_checkpoint(ckpt, request)
        written = api.save(result.checkpoint, to_layout or ckpt.source_layout, out, overwrite=overwrite,
                           card_info=result.card_info, extra_meta=result.metadata)
        render_upscaled(result, to_layout or ckpt.source_layout, written, _console())
        _maybe_push(written, push_to, token)


@app.command()
def push(folder: Annotated[Path, typer.Argument(help="An output folder of remap/upscale.")],
         repo_id: Annotated[str, typer.Argument(help="Hub repo id, org/name.")],
         private: Annotated[bool, typer.Option("--private", help="Create the repo private (ignored if it exists).")] = False,
         revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to (created if needed).")] = None,
         create_pr: Annotated[bool, typer.Option("--create-pr", help="Open a pull request instead of committing.")] = False,
         commit_message: Annotated[Optional[str], typer.Option("--commit-message")] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; change nothing.")] = False,
         overwrite_card: Annotated[bool, typer.Option("--overwrite-card", help="Replace the repo's README.md.")] = False,
         token: TokenOpt = None):
    """Upload an output folder (safetensors, config, model card) to the Hugging Face Hub in one commit."""
    _warn_token(token)
    with _errors():
        from ._render import render_push
        from .api import push as push_folder
        result = push_folder(folder, repo_id, private=private, revision=revision, create_pr=create_pr,
                             commit_message=commit_message, dry_run=dry_run, overwrite_card=overwrite_card,
                             token=token)
        render_push(result, _console())


def _maybe_push(result, repo_id: Optional[str], token: Optional[str]) -> None:
    if not repo_id:
        return
    if result.kind != "folder":
        raise SwinConvertError("--push-to needs a folder output.", "Give -o a folder path (no file suffix).")
    from ._render import render_push
    from .api import push as push_folder
    render_push(push_folder(result.out, repo_id, token=token), _console())


def _register_check():
    try:
        from .check_cli import check  # noqa: F401  (registers itself on `app`)
    except ImportError:
        pass


_register_check()


def main() -> None:
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if "torch" not in sys.modules:
            raise
        # Every output is complete and renamed into place by now. Tearing torch down costs
        # about a second and a ~180 MB RSS spike (CUDA wheels) for nothing: skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
