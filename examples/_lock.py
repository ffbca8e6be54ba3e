"""One demo run at a time per output folder: a second `make demo` started meanwhile waits for the
first instead of deleting the folder under it (an advisory flock on a sibling file; Linux/macOS)."""
from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path


@contextlib.contextmanager
def exclusive(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another demo run is writing {out}; waiting for it to finish", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
