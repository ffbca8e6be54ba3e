"""How ``inspect`` / ``remap`` / ``upscale`` describe a Swin spec (plain data; the CLI renders it)."""
from __future__ import annotations


def describe(spec, before=None) -> dict:
    """label: the short model name; summary: one line of hyper-parameters; columns/rows: per stage."""
    columns = ("stage", "depth", "dim", "heads", "map", "window", "shift") + (("pretrained",) if spec.version == 2 else ())
    rows = []
    for i in range(spec.num_stages):
        win = str(spec.window_size[i])
        if before is not None and before.window_size[i] != spec.window_size[i]:
            win = f"{before.window_size[i]} -> {win}"
        row = [str(i), str(spec.depths[i]), str(spec.dims[i]), str(spec.num_heads[i]),
               f"{spec.resolutions[i]}x{spec.resolutions[i]}", win, str(spec.shift_sizes[i])]
        if spec.version == 2:
            row.append(str(spec.pretrained_window_sizes[i] or f"0 (={spec.window_size[i]})"))
        rows.append(row)
    return {"label": f"Swin V{spec.version}", "detail": ", CPB baked" if spec.cpb_baked else "",
            "summary": (f"{spec.img_size}  patch {spec.patch_size}  embed {spec.embed_dim}  "
                        f"mlp_ratio {spec.mlp_ratio:g}  classes {spec.num_classes}  ape {spec.ape}"),
            "columns": columns, "rows": rows}
