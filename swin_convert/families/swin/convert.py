"""Swin's side of the key-table engine: canonical <-> layout tensors with persisted buffers."""
from __future__ import annotations

import re

from ...core.keymap import from_canonical
from ...core.tensors import ArraySource
from . import geometry


def to_layout(layout, spec, tensors: dict) -> dict:
    """``{canonical name: source}`` -> ``{layout key: source}`` plus the layout's buffers."""
    if layout.drops:
        tensors = {k: v for k, v in tensors.items() if not any(re.match(p, k) for p in layout.drops)}
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
                if arr is not None:
                    arr = arr.reshape(-1) if b.flat else arr
                    out[prefix + b.template.format({"s": s, "b": blk})] = ArraySource(arr)
    return out
