"""What every command of the CLI shares: the Typer app and the option types (the console, the one
error renderer and :class:`Output` live in cli/output.py, re-exported here). Nothing heavy is
imported here (no torch): `swin-convert --help` stays instant."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .commands import family_flags  # noqa: F401
from .output import (FORMATS, CommandExit, Output, Terminated, console, download_bar, error_dict,  # noqa: F401
                     errors, on_sigterm, render_error, warn_token)

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
CastDtypeOpt = Annotated[Optional[str], typer.Option("--dtype", help="Cast every floating tensor to fp32 | fp16 | bf16 "
                                                     "while writing (integer tensors never); default: as the source.",
                                                     rich_help_panel="Output", show_default=False)]
