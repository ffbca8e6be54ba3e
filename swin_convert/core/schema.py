"""Declarative, two-way layout tables, and the shape of a layout and of a model family.

A layout is a list of rules, each pairing canonical key templates with layout key templates
through a named invertible tensor op (``core.ops``): a rename, a q/k/v row split, a block
permutation, ... Templates hold placeholders:

* ``{s}``, ``{b}`` - integers (stage, block); arithmetic such as ``{s+1}`` or ``{2*s+1}`` is
  solved in both directions (timm keeps patch merging at the start of the next stage);
* ``{w}`` - one key segment (``weight``, ``bias``);
* ``{*}`` - the rest of the key.

The reverse direction is derived from the same rule, never written by hand. Persisted
buffers (e.g. Swin's relative position index) are declared per layout: they are consumed on
read (and may be used to infer the geometry) and regenerated on write by the layout's family.

This module knows no family: a family (``swin_convert.families.<name>``) fills a
:class:`Family` with its hooks and its :class:`Layout` objects, one file per layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .ops import Op, SplitRows, identity

_PLACEHOLDER = re.compile(r"\{(?:(\d+)\*)?([a-z])(?:([+-])(\d+))?\}|\{\*\}")
INVALID = object()


@dataclass(frozen=True)
class Template:
    """A key pattern such as ``layers.{s+1}.downsample.{*}``."""

    text: str
    pattern: str = field(init=False, repr=False, compare=False)
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
        object.__setattr__(self, "pattern", pattern + r"\Z")
        object.__setattr__(self, "slots", tuple(slots))

    @property
    def regex(self) -> re.Pattern:
        """Compiled on first use (a run reads one layout: most templates are never matched)."""
        rx = self.__dict__.get("_regex")
        if rx is None:
            rx = re.compile(self.pattern)
            object.__setattr__(self, "_regex", rx)
        return rx

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
    """canonical key(s) <-> layout key(s) through ``op`` (a rename when both sides are one key).

    ``op.to_layout`` turns the canonical tensors (in the order of ``canonical``) into the layout
    tensors (in the order of ``layout``); ``op.to_canonical`` is its inverse.
    """

    canonical: tuple[Template, ...]
    layout: tuple[Template, ...]
    versions: tuple[int, ...] = (1, 2)
    prefixed: bool = True
    op: Op = identity

    @property
    def is_rename(self) -> bool:
        return len(self.canonical) == 1 and len(self.layout) == 1 and self.op is identity


def rule(canonical: str | tuple[str, ...], layout: str | tuple[str, ...], *, versions=(1, 2), prefixed=True,
         op: Op | None = None) -> Rule:
    """One rule; three layout templates and no ``op`` mean a q/k/v split along rows."""
    canonical = (canonical,) if isinstance(canonical, str) else tuple(canonical)
    layout = (layout,) if isinstance(layout, str) else tuple(layout)
    if op is None:
        op = SplitRows(len(layout)) if len(canonical) == 1 and len(layout) > 1 else identity
    if (op.n_canonical, op.n_layout) != (len(canonical), len(layout)):
        raise ValueError(f"op {op.name} takes {op.n_canonical} canonical and {op.n_layout} layout keys, "
                         f"the rule has {len(canonical)} and {len(layout)}")
    return Rule(tuple(Template(t) for t in canonical), tuple(Template(t) for t in layout), tuple(versions),
                prefixed, op)


@dataclass(frozen=True)
class Buffer:
    """A persisted buffer of a layout: ``kind`` is a name the family knows (Swin:
    relative_position_index, relative_coords_table, attn_mask). ``write`` False: accepted on
    read, never written."""

    kind: str
    template: Template
    write: bool = True
    versions: tuple[int, ...] = (1, 2)
    flat: bool = False  # stored flattened (torchvision's relative position index)


def buffer(kind: str, template: str, *, write=True, versions=(1, 2), flat=False) -> Buffer:
    return Buffer(kind, Template(template), write, tuple(versions), flat)


@dataclass(frozen=True)
class Signature:
    """How a layout is recognised from key names alone (regular expressions, ``re.search``).

    Score 0 when a ``required`` pattern matches no key or an ``excluded`` one matches any;
    otherwise 1 + the number of ``preferred`` patterns that match. The highest score wins;
    a tie goes to the layout registered first.
    """

    required: tuple[str, ...] = ()
    preferred: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def score(self, keys) -> float:
        keys = list(keys)

        def hit(p):
            rx = re.compile(p)
            return any(rx.search(k) for k in keys)
        if not all(hit(p) for p in self.required) or any(hit(p) for p in self.excluded):
            return 0.0
        return 1.0 + sum(hit(p) for p in self.preferred)

    def closeness(self, keys) -> float:
        """Fraction of required patterns present (to name the closest candidates on failure)."""
        keys = list(keys)
        if not self.required:
            return 0.0
        return sum(any(re.search(p, k) for k in keys) for p in self.required) / len(self.required)


@dataclass(frozen=True)
class Runtime:
    """How ``check`` builds this layout's model in its own library and loads it strictly.

    ``build(ckpt, output, workdir)`` returns an ``nn.Module`` taking images and returning
    logits (``output="logits"``) or pooled features (``"features"``); it imports the library
    itself, so nothing heavy is imported before a check asks for it.
    """

    name: str                                   # the runtime's name in `check --runtime`
    module: str                                 # what must be importable
    install: str                                # how to install it
    build: Callable[..., Any]


@dataclass(frozen=True)
class Layout:
    """Everything about one checkpoint layout of one family.

    rules, buffers and prefix map keys; the rest are hooks the family-neutral code calls:
    ``limits(spec)`` says why the layout cannot express a spec (None: it can);
    ``configs(ckpt)`` the JSON files of a folder output; ``read_hints(config)`` geometry
    facts from such a config.json; ``wrap`` the container of a ``.pth`` output;
    ``runtime`` the library ``check`` loads it with; ``library_name`` the model card's;
    ``needs`` the source facts (flag names such as ``img_size``) its files never record, which a
    read must get from the user or a config; ``container(ckpt)`` extra top-level entries of a
    ``.pth`` output beside ``wrap`` (OpenMMLab's ``meta``);
    ``on_read(tensors, notes) -> (tensors, other)`` runs before the rules (a whole-model file's
    neck/heads, or keys no rule can take such as OpenMMLab's per-stage output norms, go to
    ``other``, keyed as in a whole OpenMMLab model, ``backbone.`` included);
    ``on_write(spec, tensors) -> tensors`` runs after them; ``write_notes(spec, other)`` says what
    an output in this layout lacks or where its runtime computes differently; ``whole_model(tensors,
    other, spec) -> tensors`` puts ``other`` beside the backbone (None: this layout holds no whole models).
    """

    name: str
    title: str
    rules: tuple[Rule, ...]
    buffers: tuple[Buffer, ...] = ()
    prefix: dict = field(default_factory=dict)           # version -> prefix of prefixed rules
    limits: Callable | None = None                       # spec -> reason it cannot be expressed, or None
    loads_with: str = ""
    family: str = ""
    signature: Signature = Signature()
    aliases: tuple[str, ...] = ()
    configs: Callable | None = None                      # ckpt -> {file name: JSON object}
    read_hints: Callable | None = None                   # config.json dict -> family hints, or None
    wrap: str | None = "model"                           # .pth container key (None: a bare state dict)
    runtime: Runtime | None = None
    library_name: str = "swin-convert"
    needs: tuple[str, ...] = ()
    container: Callable | None = None                    # ckpt -> {top-level key: object} of a .pth
    on_read: Callable | None = None                      # (tensors, notes) -> (tensors, other)
    on_write: Callable | None = None                     # (spec, tensors) -> tensors
    write_notes: Callable | None = None                  # (spec, other) -> [note]
    whole_model: Callable | None = None                  # (tensors, other, spec) -> tensors
    drops: tuple[str, ...] = ()                          # canonical-key regexes it does not hold (e.g. a head)

    def rules_for(self, version: int) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if version in r.versions)

    def buffers_for(self, version: int) -> tuple[Buffer, ...]:
        return tuple(b for b in self.buffers if version in b.versions)

    def cannot_express(self, spec) -> str | None:
        return self.limits(spec) if self.limits else None


@dataclass
class Family:
    """What is specific to one model family; everything else reaches it through the registry.

    Hooks (all take and return plain objects; heavy imports happen inside them):
      detect_version(keys) -> int
      read(raw, layout, version, flags, notes) -> (spec, canonical tensors)   parse + infer + validate
      to_layout(layout, spec, tensors) -> {layout key: source}                incl. persisted buffers
      reference(spec) -> nn.Module                                            state_dict keys = canonical
      transfer(ckpt, request) -> result                                       (upscale)
      compare(cand, src) -> (truth, gated, description, notes)                (check --against)
      card_facts(spec) -> dict                                                citation, tags, title...
      describe(spec) -> dict                                                  for inspect
      write_notes(layout, spec, tensors) -> [str]   optional: what writing ``layout`` drops or creates
    """

    name: str
    title: str
    layouts: dict = field(default_factory=dict)
    spec_type: type | None = None
    detect_version: Callable = lambda keys: 1
    read: Callable | None = None
    to_layout: Callable | None = None
    reference: Callable | None = None
    reference_features: Callable | None = None
    transfer: Callable | None = None
    compare: Callable | None = None
    card_facts: Callable | None = None
    describe: Callable | None = None
    metadata_key: str = ""
    write_notes: Callable | None = None

    def add_layout(self, layout: Layout, *, overwrite: bool = False) -> None:
        if layout.name in self.layouts and not overwrite:
            raise ValueError(f"Layout '{layout.name}' is already registered in family '{self.name}'; "
                             "pass overwrite=True to replace it.")
        object.__setattr__(layout, "family", self.name)
        self.layouts[layout.name] = layout
