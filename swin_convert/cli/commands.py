"""What the conversion commands do once their options are parsed: call swin_convert.api and
render. No typer here: typer's commands (cli/app.py) and remap's fast path (cli/fast.py) both
call these, with the same parameters."""
from __future__ import annotations

from ..errors import SwinConvertError
from .output import errors, warn_token


def family_flags(split=None, heads=None, ema=None) -> dict:
    """Source flags of one family (left out when not given)."""
    return {k: v for k, v in (("split", split), ("heads", heads), ("ema", ema)) if v is not None}


def inspect(source, from_layout='auto', img_size=None, src_window=None, pretrained_window=None, split=None, heads=None,
            ema=None, num_heads=None, revision=None, token=None, fmt='human', quiet=False) -> None:
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


def remap(from_layout, to_layout, source, out, overwrite=False, img_size=None, src_window=None, pretrained_window=None,
          split=None, heads=None, ema=None, num_heads=None, revision=None, token=None, push_to=None, keep_other=None,
          max_shard_size=None, dtype=None, fmt='human', quiet=False) -> None:
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


def upscale(source, out, window=None, res=None, split=None, to_layout=None, method=None, patch_size=None,
            new_pretrained_window=None, num_classes=None, map_22k_to_1k=False, head_map=None, bake_cpb=False,
            overwrite=False, img_size=None, src_window=None, pretrained_window=None, src_split=None, heads=None, ema=None,
            num_heads=None, revision=None, token=None, push_to=None, keep_other=None, max_shard_size=None, dtype=None,
            fmt='human', quiet=False) -> None:
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


def push(folder, repo_id, private=False, revision=None, create_pr=False, commit_message=None, dry_run=False,
         overwrite_card=False, token=None, fmt='human', quiet=False) -> None:
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
