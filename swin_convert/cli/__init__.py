"""The `swin-convert` command line: parse, call swin_convert.api, render with rich.

Nothing heavy is imported at start-up (no torch): `swin-convert --help` stays instant. typer
itself is imported only when a command line needs it (cli/fast.py reads a plain remap without).
"""
from __future__ import annotations

import os
import signal
import sys

from ..errors import UsageError
from .output import CommandExit, Output, on_sigterm, render_error


def _typer_app():
    """The typer app, with every command registered."""
    import importlib
    importlib.import_module(f"{__name__}.app")          # registers inspect, remap, upscale, push
    importlib.import_module(f"{__name__}.check_cmd")    # registers check
    from .common import app
    globals()["app"] = app        # importing the submodule cli.app bound the name to it
    return app


def __getattr__(name: str):
    if name == "app":
        return _typer_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _usage_error_types() -> tuple:
    """Usage-error base classes of typer (0.2x vendors click as typer._click) and of click."""
    import typer
    found = [t for t in (getattr(typer, "TyperException", None),) if isinstance(t, type)]
    try:
        import click
        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(found)


def _abort_types() -> tuple:
    import typer
    found = [typer.Abort]
    try:
        import click
        found.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(found)


def _run(args=None) -> int:
    """The app without click's standalone handling: its usage errors go through render_error."""
    app = _typer_app()
    try:
        rv = app(args=args, standalone_mode=False)
    except CommandExit as e:          # a command's error, rendered already
        return e.code
    except _abort_types():
        render_error("Aborted.")
        return 130
    except _usage_error_types() as e:
        if type(e).__name__ == "NoArgsIsHelpError":   # bare `swin-convert` / `swin-convert remap`: the help
            e.show()
            return 2
        ctx = getattr(e, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "swin-convert"
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        hint = f"Run '{cmd} --help' for the options."
        render_error(message, hint)
        code = int(getattr(e, "exit_code", 2) or 2)
        if _wants_json(sys.argv[1:] if args is None else args):   # the same {"error": ...} as a command's
            Output("json").fail(UsageError(message, hint, option=_option_of(e), exit_code=code).to_dict())
        return code
    return rv if isinstance(rv, int) else 0


def _wants_json(argv) -> bool:
    """``--format json`` among the arguments (the command line did not parse, so look at the words)."""
    words = [str(a) for a in argv]
    words = words[:words.index("--")] if "--" in words else words
    return "--format=json" in words or any(a == "--format" and b == "json" for a, b in zip(words, words[1:]))


def _option_of(e) -> str | None:
    """The option a click usage error is about (``--window``), when it names one."""
    name = getattr(e, "option_name", None)
    opts = getattr(getattr(e, "param", None), "opts", None) or []
    found = name or next((o for o in opts if o.startswith("-")), None)
    return found if isinstance(found, str) and found.startswith("-") else None


def main() -> None:
    if threading_main():
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        from .fast import run_fast
        code = run_fast(sys.argv[1:])
        if code is None:
            code = _run()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt as e:   # outside any command's errors() (start-up, option parsing)
        code = getattr(e, "exit_code", 130)
    if "torch" not in sys.modules:
        sys.exit(code)
    # Every output is complete and renamed into place by now. Tearing torch down costs
    # about a second and a ~180 MB RSS spike (CUDA wheels) for nothing: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


__all__ = ["app", "main"]
