"""The conversion commands: inspect, remap, upscale, push. Each parses, calls swin_convert.api,
and renders; nothing heavy is imported before a command runs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SwinConvertError
from .common import (CastDtypeOpt, EmaOpt, FROM_NAMES, FormatOpt, HeadsOpt, ImgSizeOpt, KeepOtherOpt, LAYOUT_NAMES, NumHeadsOpt,
                     MaxShardOpt, OutOpt, OverwriteOpt, PretrainedOpt, PushOpt, QuietOpt, RevisionOpt, SourceArg, SplitOpt,
                     SrcWindowOpt, TokenOpt, app, errors, family_flags, warn_token)


@app.command(epilog="Examples: swin-convert inspect ckpt.pth | swin-convert inspect timm/swin_tiny_patch4_window7_224.ms_in1k")
def inspect(source: SourceArg,
            from_layout: Annotated[str, typer.Option("--from", help=f"Source layout: auto | {FROM_NAMES}.",
                                                     rich_help_panel="Source")] = "auto",
            img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
            split: SplitOpt = None, heads: HeadsOpt = None, ema: EmaOpt = None, num_heads: NumHeadsOpt = None,
            revision: RevisionOpt = None, token: TokenOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Show a checkpoint's family, layout, geometry (Swin: per stage; ViT: grid and pos-embed provenance;
    CSWin: stripes per stage), size and what was assumed."""
    warn_token(token)
    with errors(fmt, quiet) as output:
        from .. import api
        from ..core.values import parse_size
        from .render import show_inspect
        report = api.inspect(source, from_layout, img_size=parse_size(img_size, "--img-size"), window=src_window,
                             pretrained_window=pretrained_window, num_heads=num_heads, revision=revision,
                             token=token, **family_flags(split, heads, ema))
        show_inspect(output, report)


@app.command(epilog="Example: swin-convert remap official timm swin_tiny_patch4_window7_224.pth -o swin-t-timm/")
def remap(from_layout: Annotated[str, typer.Argument(metavar="FROM", help=f"auto | {FROM_NAMES}")],
          to_layout: Annotated[str, typer.Argument(metavar="TO", help=LAYOUT_NAMES)],
          source: SourceArg, out: OutOpt, overwrite: OverwriteOpt = False,
          img_size: ImgSizeOpt = None, src_window: SrcWindowOpt = None, pretrained_window: PretrainedOpt = None,
          split: SplitOpt = None, heads: HeadsOpt = None, ema: EmaOpt = None, num_heads: NumHeadsOpt = None,
          revision: RevisionOpt = None, token: TokenOpt = None, push_to: PushOpt = None,
          keep_other: KeepOtherOpt = None, max_shard_size: MaxShardOpt = None, dtype: CastDtypeOpt = None, fmt: FormatOpt = "human", quiet: QuietOpt = False):
    """Convert a checkpoint from one key layout to another (same weights, same geometry)."""
    warn_token(token)
    with errors(fmt, quiet) as output:
        from .. import api
        from ..core.values import parse_size
        from .render import show_written
        ckpt, result = api.remap(source, to_layout, out, from_layout=from_layout, overwrite=overwrite,
                                 img_size=parse_size(img_size, "--img-size"), window=src_window, pretrained_window=pretrained_window,
                                 num_heads=num_heads, revision=revision, token=token, keep_other=keep_other,
                                 max_shard_size=max_shard_size, dtype=dtype, **family_flags(split, heads, ema))
        show_written(output, ckpt, to_layout, result)
        _maybe_push(result, push_to, token, output)


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
    warn_token(token)
    with errors(fmt, quiet) as output:
        from .. import api
        from ..core.values import parse_size
        from .render import show_upscaled
        result, written = api.upscale(source, out, to=to_layout, overwrite=overwrite, 
                                      img_size=parse_size(img_size, "--img-size"),
                                      src_window=src_window, src_pretrained_window=pretrained_window,
                                      num_heads=num_heads, revision=revision, token=token, window=window,
                                      res=parse_size(res, "--res"),
                                      method=method, patch_size=patch_size, pretrained_window=new_pretrained_window,
                                      num_classes=num_classes, map_22k_to_1k=map_22k_to_1k, head_map=head_map,
                                      bake_cpb=bake_cpb, split=split, src_flags=family_flags(src_split, heads, ema),
                                      keep_other=keep_other, max_shard_size=max_shard_size, dtype=dtype)
        show_upscaled(output, result, to_layout or result.checkpoint.source_layout, written)
        _maybe_push(written, push_to, token, output)


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
    warn_token(token)
    with errors(fmt, quiet) as output:
        from .render import show_push
        from ..api import push as push_folder
        result = push_folder(folder, repo_id, private=private, revision=revision, create_pr=create_pr,
                             commit_message=commit_message, dry_run=dry_run, overwrite_card=overwrite_card,
                             token=token)
        show_push(output, result, repo_id, revision)


def _maybe_push(result, repo_id: Optional[str], token: Optional[str], output) -> None:
    if not repo_id:
        return
    if result.kind != "folder":
        raise SwinConvertError("--push-to needs a folder output.", "Give -o a folder path (no file suffix).")
    from .render import show_push
    from ..api import push as push_folder
    show_push(output, push_folder(result.out, repo_id, token=token), repo_id, nested=True)
