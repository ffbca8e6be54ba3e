"""Parsing of user-given values shared by every family (no torch)."""
from __future__ import annotations

from ..errors import UsageError


def _option(flag: str) -> str | None:
    return flag if flag.startswith("--") else None


def parse_size(value, flag: str) -> int | tuple[int, int] | None:
    """A size as the CLI takes it: ``"384"`` -> 384, ``"384,320"`` / ``"384x320"`` -> (384, 320) (height, width)."""
    if value is None or value == "" or isinstance(value, (int, tuple)):
        return value or None
    parts = str(value).lower().replace("x", ",").replace(" ", "").split(",")
    if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
        raise UsageError(f"{flag} takes a size, one number or H,W, got '{value}'.",
                         f"For example {flag} 384 or {flag} 384,512.", option=_option(flag))
    sizes = tuple(int(p) for p in parts)
    return sizes[0] if len(sizes) == 1 else sizes


def square_size(value, flag: str, family: str) -> int | None:
    """``value`` (an int or an (h, w) pair) as one side; a family of square images refuses h != w."""
    if value is None or isinstance(value, int):
        return value
    h, w = (int(v) for v in value)
    if h != w:
        raise UsageError(f"{family} takes square images; {flag} {h},{w} is not square.", f"Give one number: {flag} {h}.",
                         option=_option(flag))
    return h


def parse_ints(value, flag: str) -> tuple[int, ...] | None:
    """``"12"`` / ``"12,12,12,6"`` / ``12`` / ``(12, 6)`` -> tuple of ints."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    try:
        out = tuple(int(v) for v in str(value).replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"{flag} takes an integer or a comma-separated list of integers, got '{value}'.",
                         f"For example {flag} 12 or {flag} 12,12,12,6.", option=_option(flag)) from None
    if any(v < 0 for v in out):
        raise UsageError(f"{flag} values must not be negative, got '{value}'.", option=_option(flag))
    return out
