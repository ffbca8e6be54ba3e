"""The conversion commands' options: inspect, remap, upscale, push as typer declares them (help,
panels, types); each hands its parsed parameters to cli/commands.py, which calls swin_convert.api
and renders. Nothing heavy is imported before a command runs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import commands
from .common import (CastDtypeOpt, EmaOpt, FROM_NAMES, FormatOpt, HeadsOpt, ImgSizeOpt, KeepOtherOpt, LAYOUT_NAMES, NumHeadsOpt,
                     MaxShardOpt, OutOpt, OverwriteOpt, PretrainedOpt, PushOpt, QuietOpt, RevisionOpt, SourceArg, SplitOpt,
                     SrcWindowOpt, TokenOpt, app)


@app.command(epilog="Examples: swin-convert inspect ckpt.pth | swin-convert inspect timm/swin_tiny_patch4_window7_224.ms_in1k")
def inspect(source: SourceArg,
            from_layout: Annotated[str, typer.Option("--from", help=f"Source layout: auto | {FROM_NAMES}.",
                                                     rich_help_panel="Source")] = "auto",
            img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
            split: SplitOpt = None, heads: HeadsOpt = None, ema: EmaOpt = None, num_heads: NumHeadsOpt = None,
            revision: RevisionOpt = None, token: TokenOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Show a checkpoint's family, layout, geometry (Swin: per stage; ViT: grid and pos-embed provenance;
    CSWin: stripes per stage), size and what was assumed."""
    return commands.inspect(**locals())   # the parameters, as parsed


@app.command(epilog="Example: swin-convert remap official timm swin_tiny_patch4_window7_224.pth -o swin-t-timm/")
def remap(from_layout: Annotated[str, typer.Argument(metavar="FROM", help=f"auto | {FROM_NAMES}")],
          to_layout: Annotated[str, typer.Argument(metavar="TO", help=LAYOUT_NAMES)],
          source: SourceArg, out: OutOpt, overwrite: OverwriteOpt = False,
          img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
          split: SplitOpt = None, heads: HeadsOpt = None, ema: EmaOpt = None, num_heads: NumHeadsOpt = None,
          revision: RevisionOpt = None, token: TokenOpt = None, push_to: PushOpt = None,
          keep_other: KeepOtherOpt = None, max_shard_size: MaxShardOpt = None, dtype: CastDtypeOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Convert a checkpoint from one key layout to another (same weights, same geometry)."""
    return commands.remap(**locals())   # the parameters, as parsed


@app.command(epilog="Example: swin-convert upscale swin_base_patch4_window12_384.pth --window 24 --res 768 -o out/")
def upscale(source: SourceArg, out: OutOpt,
            window: Annotated[Optional[str], typer.Option("--window", help="New window, or one per stage "
                                                          "(24 or 24,24,24,12).", rich_help_panel="Transfer")] = None,
            res: Annotated[Optional[str], typer.Option("--res", help="New image size (ViT: H,W for a non-square "
                                                       "grid).", rich_help_panel="Transfer", show_default=False)] = None,
            split: Annotated[Optional[str], typer.Option("--split", help="CSWin: new stripe width per stage "
                                                         "(1,2,12,12). Default: each stage keeps its stripe/map "
                                                         "ratio.", rich_help_panel="Transfer")] = None,
            to_layout: Annotated[Optional[str], typer.Option("--to", help=f"Output layout ({LAYOUT_NAMES}); "
                                                             "default: the source's.", rich_help_panel="Output")] = None,
            method: Annotated[Optional[str], typer.Option(
                "--method", help="Swin V1 bias-table resize: bicubic (official, default) | geometric (timm). "
                "ViT pos-embed resampler: timm | hf | hf-legacy | torchvision | bilinear (default: the target "
                "runtime's own).", rich_help_panel="Transfer")] = None,
            patch_size: Annotated[Optional[str], typer.Option(
                "--patch-size", help="ViT: new patch size (16 or H,W); the patch kernel is resampled (FlexiViT).",
                rich_help_panel="Transfer")] = None,
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
            src_split: Annotated[Optional[str], typer.Option("--src-split", help="CSWin: the source's split, "
                                                             "when not recorded.", rich_help_panel="Source")] = None,
            heads: HeadsOpt = None, ema: EmaOpt = None, num_heads: NumHeadsOpt = None,
            revision: RevisionOpt = None, token: TokenOpt = None, push_to: PushOpt = None,
            keep_other: KeepOtherOpt = None, max_shard_size: MaxShardOpt = None, dtype: CastDtypeOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Move a checkpoint to a new window size and/or resolution (Swin: V1 tables resized, V2 CPB
    re-evaluated; ViT: position embedding resampled, optionally a new patch size; CSWin: new image
    size and stripe widths, no tensor changes)."""
    return commands.upscale(**locals())   # the parameters, as parsed


@app.command()
def push(folder: Annotated[Path, typer.Argument(help="An output folder of remap/upscale.")],
         repo_id: Annotated[str, typer.Argument(help="Hub repo id, org/name.")],
         private: Annotated[bool, typer.Option("--private", help="Create the repo private (ignored if it exists).")] = False,
         revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to (created if needed).")] = None,
         create_pr: Annotated[bool, typer.Option("--create-pr", help="Open a pull request instead of committing.")] = False,
         commit_message: Annotated[Optional[str], typer.Option("--commit-message")] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; change nothing.")] = False,
         overwrite_card: Annotated[bool, typer.Option("--overwrite-card", help="Replace the repo's README.md.")] = False,
         token: TokenOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Upload an output folder (safetensors, config, model card) to the Hugging Face Hub in one commit."""
    return commands.push(**locals())   # the parameters, as parsed
