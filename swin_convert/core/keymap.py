"""Apply a layout table: layout keys <-> canonical keys, lazily (sources are never read here,
except by an op that must check what it drops). Knows no family: persisted buffers are
collected on read and handed to the family, which also synthesises them on write."""
from __future__ import annotations

from dataclasses import dataclass, field

from .schema import INVALID, Layout


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
    """Map ``{layout key: source}`` to canonical names; multi-key rules are joined by their op."""
    out, groups = Parsed(), {}
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
        if len(r.layout) == 1 and len(r.canonical) == 1 and r.op.name == "identity":
            out.tensors[r.canonical[0].format(values)] = src
            continue
        group = groups.setdefault((idx, tuple(sorted(values.items()))), [None] * len(r.layout))
        group[part] = (key, src)
    for (idx, items), pieces in groups.items():
        r, values = layout.rules[idx], dict(items)
        names = [t.format(values) for t in r.canonical]
        if any(p is None for p in pieces):
            have = [p[0] for p in pieces if p is not None]
            out.unexpected.append(f"{names[0]} (only {len(have)} of its {len(pieces)} parts: {', '.join(have)})")
            continue
        results = r.op.to_canonical([p[1] for p in pieces], pieces[0][0])
        out.tensors.update(zip(names, results))
    return out


def _match_rule(rules, key: str, prefix: str):
    for idx, r in rules:
        if r.prefixed and prefix and not key.startswith(prefix):
            continue
        candidate = key[len(prefix):] if (r.prefixed and prefix) else key
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


def from_canonical(layout: Layout, version: int, tensors: dict) -> dict:
    """``{canonical name: source}`` -> ``{layout key: source}`` (without the layout's buffers)."""
    prefix = layout.prefix.get(version, "")
    rules = layout.rules_for(version)
    out, groups = {}, {}
    for name, src in tensors.items():
        r, part, values = _canonical_rule(rules, name)
        keys = [(prefix if r.prefixed else "") + t.format(values) for t in r.layout]
        if len(r.canonical) == 1:
            out.update(zip(keys, r.op.to_layout([src])))
            continue
        group = groups.setdefault((id(r), tuple(sorted(values.items()))), (r, keys, [None] * len(r.canonical)))
        group[2][part] = src
    for r, keys, parts in groups.values():
        if any(p is None for p in parts):
            raise KeyError(f"{r.canonical[parts.index(None)].text}: a part of {keys[0]} is missing")
        out.update(zip(keys, r.op.to_layout(parts)))
    return out


def _canonical_rule(rules, name: str):
    for r in rules:
        for part, t in enumerate(r.canonical):
            v = t.match(name)
            if v is not None and v is not INVALID:
                return r, part, v
    raise KeyError(f"no rule of this layout takes the canonical tensor '{name}'")


__all__ = ["Parsed", "to_canonical", "from_canonical"]
