"""The ViT family's layouts: each module holds a two-way key table (``LAYOUT``) and pure functions.

Per module: ``LAYOUT`` (a schema Layout: rules, prefix per variant, limits, loads_with),
``limits(spec)``, ``caveats(spec)``, ``variant(spec)`` / ``variant_of_keys(keys)`` (the
``version`` argument of the key map), ``detect(keys)``, ``read_hints(config)``,
``config_json(spec, ...)``, ``extra_tensors(spec)`` (tensors a layout needs that the
canonical form does not hold). Rules that only read (legacy or newer spellings) come after
the rule that writes the same canonical name: writers take the first matching rule.
"""
from . import deit, hf, timm, torchvision

LAYOUTS = {m.LAYOUT.name: m for m in (timm, hf, torchvision, deit)}
# try the most specific first: deit uses timm's names and differs only by extra markers
DETECT_ORDER = (hf, torchvision, deit, timm)


def detect(keys):
    """The layout module whose signature the keys carry, or None (not a ViT we know)."""
    keys = list(keys)
    return next((m for m in DETECT_ORDER if m.detect(keys)), None)


__all__ = ["LAYOUTS", "DETECT_ORDER", "detect", "timm", "hf", "torchvision", "deit"]
