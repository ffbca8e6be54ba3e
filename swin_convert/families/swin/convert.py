"""Swin's side of the key-table engine: canonical <-> layout tensors with persisted buffers."""
from __future__ import annotations

import re

from ...core.keymap import from_canonical
from ...core.tensors import ArraySource
from ...errors import UsageError
from . import geometry

MAX_MASK_BYTES = 2 * 2 ** 30


def to_layout(layout, spec, tensors: dict) -> dict:
    """``{canonical name: source}`` -> ``{layout key: source}`` plus the layout's buffers."""
    if layout.drops:
        tensors = {k: v for k, v in tensors.items() if not any(re.match(p, k) for p in layout.drops)}
    check_mask_memory(layout, spec)
    out = from_canonical(layout, spec.version, tensors)
    out.update(synthesize_buffers(layout, spec))
    return layout.on_write(spec, out) if layout.on_write else out


def synthesize_buffers(layout, spec) -> dict:
    """The persisted buffers of ``layout`` for this geometry (numpy, no torch)."""
    out = {}
    wanted = [b for b in layout.buffers_for(spec.version) if b.write]
    if not wanted:
        return out
    prefix = layout.prefix.get(spec.version, "")
    for s in range(spec.num_stages):
        arrays = geometry.stage_buffers(spec, s)
        for blk in range(spec.depths[s]):
            for b in wanted:
                arr = arrays.get((b.kind, blk % 2))
                if isinstance(arr, geometry.MaskSource):
                    out[prefix + b.template.format({"s": s, "b": blk})] = arr
                elif arr is not None:
                    arr = arr.reshape(-1) if b.flat else arr
                    out[prefix + b.template.format({"s": s, "b": blk})] = ArraySource(arr)
    return out


def mask_bytes(layout, spec) -> int:
    """Bytes of the shift masks ``layout`` persists: built once per stage and held until written."""
    if not any(b.kind == "attn_mask" and b.write for b in layout.buffers_for(spec.version)):
        return 0
    return sum(4 * (r // w) ** 2 * (w * w) ** 2 for r, w, shift in
               zip(spec.resolutions, spec.window_size, spec.shift_sizes) if shift and w)


def check_mask_memory(layout, spec) -> None:
    """The official layout stores shift masks ((H/w)^2 x w^2 x w^2 floats a stage, streamed window by
    window into safetensors, held whole for .pth): refuse absurd sizes (--res 22400 asks for ~6 GiB
    a stage) with one line instead of an allocation failure or a file of masks."""
    need = mask_bytes(layout, spec)
    limit = min(MAX_MASK_BYTES, _available_memory() // 2)
    if need > limit:
        raise UsageError(f"The {layout.name} layout stores attention masks, which at {spec.img_size} px take "
                         f"{need / 2 ** 30:.1f} GiB (at most {limit / 2 ** 30:.1f} GiB allowed here).",
                         "Use a smaller --res or a larger --window, or --to timm/hf (they build masks at load time).")


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 * 2 ** 30
