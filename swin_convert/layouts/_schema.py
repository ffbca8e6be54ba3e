"""Declarative, two-way layout tables.

A layout is a list of rules, each pairing a canonical key template with one layout key
template (a rename) or three (a q/k/v row split). Templates hold placeholders:

* ``{s}``, ``{b}`` - integers (stage, block); arithmetic such as ``{s+1}`` or ``{2*s+1}`` is
  solved in both directions (timm keeps patch merging at the start of the next stage);
* ``{w}`` - one key segment (``weight``, ``bias``);
* ``{*}`` - the rest of the key.

The reverse direction is derived from the same rule, never written by hand. Persisted
buffers (relative position index, V2 coordinate table, shift masks) are declared per layout:
they are consumed on read (and used to infer the geometry) and regenerated on write.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_PLACEHOLDER = re.compile(r"\{(?:(\d+)\*)?([a-z])(?:([+-])(\d+))?\}|\{\*\}")
INVALID = object()


@dataclass(frozen=True)
class Template:
    """A key pattern such as ``layers.{s+1}.downsample.{*}``."""

    text: str
    regex: re.Pattern = field(init=False, repr=False, compare=False)
    slots: tuple = field(init=False, repr=False, compare=False)  # (name, mult, offset) per group

    def __post_init__(self):
        pattern, slots, pos = "", [], 0
        for m in _PLACEHOLDER.finditer(self.text):
            pattern += re.escape(self.text[pos:m.start()])
            if m.group(0) == "{*}":
                pattern += "(.+)"
                slots.append(("*", 1, 0))
            elif m.group(2) in "sb":
                pattern += r"(\d+)"
                off = int(m.group(4) or 0) * (-1 if m.group(3) == "-" else 1)
                slots.append((m.group(2), int(m.group(1) or 1), off))
            else:
                pattern += r"([A-Za-z0-9_]+)"
                slots.append((m.group(2), 1, 0))
            pos = m.end()
        pattern += re.escape(self.text[pos:])
        object.__setattr__(self, "regex", re.compile(pattern + r"\Z"))
        object.__setattr__(self, "slots", tuple(slots))

    def match(self, key: str):
        """Variables of ``key`` (None: no match; INVALID: matches but arithmetic gives no index)."""
        m = self.regex.match(key)
        if m is None:
            return None
        out = {}
        for (name, mult, off), value in zip(self.slots, m.groups()):
            if name in "sb":
                num = int(value) - off
                if num < 0 or num % mult:
                    return INVALID
                value = num // mult
            if out.setdefault(name, value) != value:
                return None
        return out

    def format(self, values: dict) -> str:
        slots = iter(self.slots)

        def sub(m):
            name, mult, off = next(slots)
            v = values[name]
            return str(v * mult + off) if name in "sb" else str(v)
        return _PLACEHOLDER.sub(sub, self.text)


@dataclass(frozen=True)
class Rule:
    """canonical <-> layout key(s). Three layout templates mean a q/k/v split along rows."""

    canonical: Template
    layout: tuple[Template, ...]
    versions: tuple[int, ...] = (1, 2)
    prefixed: bool = True

    @property
    def is_split(self) -> bool:
        return len(self.layout) > 1


def rule(canonical: str, layout: str | tuple[str, ...], *, versions=(1, 2), prefixed=True) -> Rule:
    layout = (layout,) if isinstance(layout, str) else tuple(layout)
    return Rule(Template(canonical), tuple(Template(t) for t in layout), tuple(versions), prefixed)


@dataclass(frozen=True)
class Buffer:
    """A persisted buffer of a layout: ``kind`` is one of relative_position_index,
    relative_coords_table (V2), attn_mask. ``write`` False: accepted on read, never written."""

    kind: str
    template: Template
    write: bool = True
    versions: tuple[int, ...] = (1, 2)
    flat: bool = False  # torchvision stores the index flattened


def buffer(kind: str, template: str, *, write=True, versions=(1, 2), flat=False) -> Buffer:
    return Buffer(kind, Template(template), write, tuple(versions), flat)


@dataclass(frozen=True)
class Layout:
    """A checkpoint key layout: rules + buffers + what it cannot express."""

    name: str
    title: str
    rules: tuple[Rule, ...]
    buffers: tuple[Buffer, ...] = ()
    prefix: dict = field(default_factory=dict)           # version -> prefix of prefixed rules
    limits: Callable | None = None                       # spec -> reason it cannot be expressed, or None
    loads_with: str = ""

    def rules_for(self, version: int) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if version in r.versions)

    def buffers_for(self, version: int) -> tuple[Buffer, ...]:
        return tuple(b for b in self.buffers if version in b.versions)

    def cannot_express(self, spec) -> str | None:
        return self.limits(spec) if self.limits else None
