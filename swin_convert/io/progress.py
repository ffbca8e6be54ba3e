"""Where downloads report progress: the hook the CLI installs and io.hub reads.

Kept apart from io.hub so a command on a local file sets it without importing the Hub client
code (hashlib, logging, ...: ~20 ms of every command's start-up)."""
from __future__ import annotations

from contextlib import contextmanager

_state = {"factory": None,    # set by the CLI: (label, total, initial) -> context manager yielding advance(n)
          "hub_bars": True}   # huggingface_hub's own tqdm bars (stderr) on Hub downloads


def set_download_progress(factory, *, hub_bars: bool = True) -> None:
    """Where URL downloads report progress (the CLI passes a rich bar; the library draws nothing);
    ``hub_bars=False`` also silences huggingface_hub's bars on Hub downloads (the CLI's --quiet)."""
    _state["factory"], _state["hub_bars"] = factory, hub_bars


def hub_bars() -> bool:
    return bool(_state["hub_bars"])


@contextmanager
def progress_bar(label: str, total: int | None, initial: int, enabled: bool):
    """The download bar the caller installed (``set_download_progress``); yields ``advance(n)``."""
    factory = _state["factory"]
    if not enabled or factory is None:
        yield lambda n: None
        return
    with factory(label or "download", total, initial) as advance:
        yield advance


__all__ = ["set_download_progress", "progress_bar", "hub_bars"]
