"""The `swin-convert` command line: parse, call swin_convert.api, render with rich.

Nothing heavy is imported at start-up (no torch): `swin-convert --help` stays instant.
"""
from __future__ import annotations

import os
import sys

from . import app as _commands  # noqa: F401  (registers inspect, remap, upscale, push)
from . import check_cmd as _check  # noqa: F401  (registers check)
from .common import app


def main() -> None:
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if "torch" not in sys.modules:
            raise
        # Every output is complete and renamed into place by now. Tearing torch down costs
        # about a second and a ~180 MB RSS spike (CUDA wheels) for nothing: skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


__all__ = ["app", "main"]
