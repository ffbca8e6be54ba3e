"""Parsing of user-given values shared by every family (no torch)."""
from __future__ import annotations

from ..errors import UsageError


def _option(flag: str) -> str | None:
    return flag if flag.startswith("--") else None


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
