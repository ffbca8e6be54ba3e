"""Apply a layout table: layout keys <-> canonical keys, lazily (sources are never read here)."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import geometry
from .layouts import Layout
from .layouts._schema import INVALID
from .spec import SwinSpec
from .tensors import ArraySource, concat_rows, row_slice


@dataclass
class Parsed:
    """A layout's tensors mapped to canonical names."""

    tensors: dict = field(default_factory=dict)      # canonical name -> source
    buffers: dict = field(default_factory=dict)      # (kind, stage, block) -> source
    unexpected: list = field(default_factory=list)   # layout keys no rule takes
    used_rules: set = field(default_factory=set)     # indices into layout.rules


def _strip(layout: Layout, version: int, keys) -> str:
    prefix = layout.prefix.get(version, "")
    return prefix if prefix and any(k.startswith(prefix) for k in keys) else ""


def to_canonical(layout: Layout, version: int, raw: dict) -> Parsed:
    """Map ``{layout key: source}`` to canonical names; q/k/v parts are joined back as row ranges."""
    out, parts = Parsed(), {}
    prefix = _strip(layout, version, raw)
    rules = [(i, r) for i, r in enumerate(layout.rules) if version in r.versions]
    for key, src in raw.items():
        if _take_buffer(layout, version, key, prefix, src, out):
            continue
        hit = _match_rule(rules, key, prefix)
        if hit is None:
            out.unexpected.append(key)
            continue
        idx, r, part, values = hit
        out.used_rules.add(idx)
        name = r.canonical.format(values)
        if r.is_split:
            parts.setdefault(name, [None] * len(r.layout))[part] = src
        else:
            out.tensors[name] = src
    for name, pieces in parts.items():
        if any(p is None for p in pieces):
            out.unexpected.append(f"{name} (only {sum(p is not None for p in pieces)} of q/k/v)")
            continue
        out.tensors[name] = concat_rows(pieces)
    return out


def _match_rule(rules, key: str, prefix: str):
    for idx, r in rules:
        candidate = key[len(prefix):] if (r.prefixed and prefix) else key
        if r.prefixed and prefix and not key.startswith(prefix):
            continue
        for part, t in enumerate(r.layout):
            values = t.match(candidate)
            if values is INVALID:
                return None
            if values is not None:
                return idx, r, part, values
    return None


def _take_buffer(layout: Layout, version: int, key: str, prefix: str, src, out: Parsed) -> bool:
    bare = key[len(prefix):] if prefix and key.startswith(prefix) else key
    for b in layout.buffers_for(version):
        values = b.template.match(bare)
        if values is not None and values is not INVALID:
            out.buffers[(b.kind, int(values.get("s", -1)), int(values.get("b", -1)))] = src
            return True
    return False


def from_canonical(layout: Layout, spec: SwinSpec, tensors: dict) -> dict:
    """``{canonical name: source}`` -> ``{layout key: source}`` plus the layout's buffers."""
    prefix = layout.prefix.get(spec.version, "")
    rules = layout.rules_for(spec.version)
    out = {}
    for name, src in tensors.items():
        r, values = next((r, v) for r in rules if (v := r.canonical.match(name)) not in (None, INVALID))
        keys = [(prefix if r.prefixed else "") + t.format(values) for t in r.layout]
        if r.is_split:
            rows = src.shape[0] // len(keys)
            out.update((k, row_slice(src, i * rows, (i + 1) * rows)) for i, k in enumerate(keys))
        else:
            out[keys[0]] = src
    out.update(synthesize_buffers(layout, spec))
    return out


def synthesize_buffers(layout: Layout, spec: SwinSpec) -> dict:
    """The persisted buffers of ``layout`` for this geometry (numpy, no torch)."""
    out = {}
    wanted = [b for b in layout.buffers_for(spec.version) if b.write]
    if not wanted:
        return out
    prefix = layout.prefix.get(spec.version, "")
    for s in range(spec.num_stages):
        arrays = stage_buffers(spec, s)
        for blk in range(spec.depths[s]):
            for b in wanted:
                arr = arrays.get((b.kind, blk % 2))
                if arr is not None:
                    arr = arr.reshape(-1) if b.flat else arr
                    out[prefix + b.template.format({"s": s, "b": blk})] = ArraySource(arr)
    return out


def stage_buffers(spec: SwinSpec, stage: int) -> dict:
    """{(kind, block parity): array} for one stage (even blocks unshifted, odd blocks shifted)."""
    w, r, shift = spec.window_size[stage], spec.resolutions[stage], spec.shift_sizes[stage]
    index = geometry.relative_position_index(w)
    out = {("relative_position_index", 0): index, ("relative_position_index", 1): index}
    if spec.version == 2:
        table = geometry.relative_coords_table(w, spec.pretrained_window_sizes[stage])
        out[("relative_coords_table", 0)] = out[("relative_coords_table", 1)] = table
    mask = geometry.attn_mask(r, w, shift)
    if mask is not None:
        out[("attn_mask", 1)] = mask
    return out


def expected_buffer_shape(kind: str, spec: SwinSpec, stage: int) -> tuple:
    w = spec.window_size[stage]
    return {"relative_position_index": (w * w, w * w), "relative_coords_table": (1, 2 * w - 1, 2 * w - 1, 2),
            "attn_mask": ((spec.resolutions[stage] // w) ** 2, w * w, w * w)}[kind]


__all__ = ["Parsed", "to_canonical", "from_canonical", "synthesize_buffers", "stage_buffers"]
