"""What a command prints and how it fails, without typer: the console (plain text when rich would
print no styles), the one error renderer, stdout-is-data / stderr-is-talk (:class:`Output`) and
:func:`errors`. The fast path of ``remap`` (cli/fast.py) runs with this and no typer."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import Optional

from ..errors import SwinConvertError, UsageError

FORMATS = ("human", "json")


class CommandExit(SystemExit):
    """A command ended with this exit code (its error already rendered)."""


def console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)   # no :name: codes (or their import)


def result_console():
    """Where a command's result lines go (stdout): rich's console, or a :class:`PlainConsole` where
    rich would print no styles (stdout not a terminal): the same text, without importing rich
    (~20 ms of a remap's start-up)."""
    return PlainConsole() if not _rich_styles(sys.stdout) else console()


def _rich_styles(stream) -> bool:
    """Whether rich would treat ``stream`` as a terminal (``Console.is_terminal``: TTY_COMPATIBLE,
    then FORCE_COLOR, then isatty), or render for Jupyter."""
    if "ipykernel" in sys.modules or "IPython" in sys.modules:
        return True
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    if "FORCE_COLOR" in os.environ:
        return os.environ["FORCE_COLOR"] != ""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# The styles our renderers use; a line with any other markup, a backslash (rich's escapes) or a
# control character is handed to rich itself, so the plain text is always what rich prints.
_PLAIN_TAGS = ("[/]", "[green]", "[bold]", "[dim]", "[yellow]", "[bold red]")
_MARKUP_START = "abcdefghijklmnopqrstuvwxyz#/@"


class PlainConsole:
    """rich's ``Console.print`` of our own markup lines on a non-terminal, without rich: the tags
    dropped, nothing else changed (soft wrap: no line breaking). Anything else goes to rich."""

    def __init__(self):
        self._rich = None

    def _fallback(self):
        if self._rich is None:
            self._rich = console()
        return self._rich

    @staticmethod
    def plain(text: str) -> str | None:
        """``text`` with our tags dropped, or None when rich must render it."""
        if "\\" in text or any(ord(c) < 32 and c != "\n" or c == "\x7f" for c in text):
            return None
        for tag in _PLAIN_TAGS:
            text = text.replace(tag, "")
        at = text.find("[")
        while at != -1:
            if at + 1 < len(text) and text[at + 1] in _MARKUP_START and "]" in text[at + 1:]:
                return None                       # would be read as a tag
            at = text.find("[", at + 1)
        return text

    def print(self, *objects, **kwargs) -> None:
        line = self.plain(objects[0]) if len(objects) == 1 and isinstance(objects[0], str) and not kwargs else None
        if line is None:
            self._fallback().print(*objects, **kwargs)
            return
        sys.stdout.write(line + "\n")

    def __getattr__(self, name):                  # print_json, a Table's print, ...: rich's own
        return getattr(self._fallback(), name)


@contextlib.contextmanager
def download_bar(label: str, total, initial: int):
    """A transient rich download bar on stderr; yields ``advance(n)``. Silent off a terminal."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    err = console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)
    with bar:
        task = bar.add_task(label, total=total, completed=initial)
        yield lambda n: bar.advance(task, n)


def render_error(message: str, hint: str | None = None) -> None:
    """The one renderer of every error: `Error: <message>` and an optional `Hint:` line on stderr."""
    from rich.markup import escape
    err = console(stderr=True)
    err.print(f"[bold red]Error:[/] {escape(' '.join(message.split()))}", markup=True)
    if hint:
        err.print(f"[dim]Hint:[/] {escape(' '.join(hint.split()))}", markup=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every `finally` (temp files, created folders) runs."""

    exit_code = 143


def on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)    # a second SIGTERM kills at once
    raise Terminated()


class Output:
    """Where a command's output goes: stdout is data, stderr is talk.

    human: the command prints its result lines on stdout itself. json: the command hands its
    result document to :meth:`result` and it is printed, alone, when the command ends; if the
    command fails, stdout gets ``{"error": {...}}`` instead (plus what the command had already
    done, e.g. remap's written output when a --push-to fails). ``quiet``: no talk (bars, notes).
    """

    def __init__(self, fmt: str = "human", quiet: bool = False):
        self.fmt, self.quiet = fmt, quiet
        self.doc: dict | None = None
        self.printed = False
        self.main = True            # False on the other ranks of a torchrun job: they print no data

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    def check_format(self) -> None:
        if self.fmt not in FORMATS:
            raise UsageError(f"Unknown --format '{self.fmt}'.", "Use human or json.", option="--format")

    def result(self, doc: dict) -> None:
        """The command's JSON document (printed at the end, in json mode only)."""
        self.doc = doc

    def talk(self, line: str) -> None:
        """An informational line on stderr (not with --quiet)."""
        if not self.quiet and self.main:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def print_json(self, doc: dict) -> None:
        if self.json and self.main and not self.printed:
            self.printed = True         # one document, even if writing it fails (a closed pipe)
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            sys.stdout.flush()

    def finish(self) -> None:
        if self.doc is not None:
            self.print_json(self.doc)

    def fail(self, error: dict) -> None:
        try:
            self.print_json({**(self.doc or {}), "error": error})
        except OSError:
            pass                        # stdout is gone; the Error: line on stderr still says it


def _os_error_message(e: OSError) -> str:
    return f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}."


def error_dict(e: BaseException) -> dict:
    """The JSON error object: SwinConvertError.to_dict(), or the same fields for an OSError."""
    if isinstance(e, SwinConvertError):
        return e.to_dict()
    return {"type": type(e).__name__, "message": _os_error_message(e), "hint": None, "exit_code": 1,
            "path": None if getattr(e, "filename", None) is None else str(e.filename)}


@contextlib.contextmanager
def errors(fmt: str = "human", quiet: bool = False):
    """User mistakes: one `Error:` line plus a hint on stderr, no traceback (SWIN_CONVERT_DEBUG=1 shows it).

    Yields the command's :class:`Output`; with ``--format json`` the error also goes to stdout as
    ``{"error": {...}}`` (see ``Output``); the exit code is the same in both formats."""
    from ..io.progress import set_download_progress
    out = Output(fmt, quiet)
    set_download_progress(None if quiet else download_bar, hub_bars=not quiet)
    try:
        out.check_format()
        yield out
        out.finish()
    except (SwinConvertError, OSError) as e:
        if os.environ.get("SWIN_CONVERT_DEBUG"):
            raise
        if isinstance(e, SwinConvertError):
            render_error(e.message, e.hint)
        else:
            render_error(_os_error_message(e))
        out.fail(error_dict(e))
        raise CommandExit(e.exit_code if isinstance(e, SwinConvertError) else 1) from None
    except KeyboardInterrupt as e:
        raise CommandExit(getattr(e, "exit_code", 130)) from None


def warn_token(token: Optional[str]) -> None:
    if token:
        console(stderr=True).print("[yellow]Warning:[/] --token leaves your token in your shell history and in "
                                    "process listings. Run `hf auth login` once, or export HF_TOKEN.", markup=True)


