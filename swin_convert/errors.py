"""Exceptions of swin-convert.

Every error a user can cause is a :class:`SwinConvertError`: one sentence saying what is
wrong, plus a hint saying what to do. The CLI prints ``Error: <message>`` and
``Hint: <hint>`` on stderr and exits with ``exit_code`` (1 by default, 2 for bad requests,
3 for a numerical check over tolerance). No other module of the package imports this one's
dependencies: it has none.
"""
from __future__ import annotations


class SwinConvertError(Exception):
    """A user-facing error: what is wrong (``message``) and what to do (``hint``)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # one line, hint included, for library users
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class BadInputError(SwinConvertError, ValueError):
    """The input file is unreadable, corrupt, unsafe or not a Swin checkpoint."""


class LayoutError(SwinConvertError, ValueError):
    """Keys do not fit the layout (missing, unexpected, wrong shape), or no layout fits."""


class IncompatibleSpecError(SwinConvertError, ValueError):
    """The target layout or runtime cannot express this model (e.g. per-stage windows in HF)."""


class UsageError(SwinConvertError, ValueError):
    """A request that cannot be carried out as asked (bad window, resolution, flags)."""

    exit_code = 2


class OutputExistsError(SwinConvertError):
    """The output path exists and --overwrite was not given, or it is the input."""


class HubError(SwinConvertError):
    """A Hub or URL download/upload failed (not found, gated, offline, network)."""


class CheckFailedError(SwinConvertError):
    """A numerical check ran and exceeded its tolerance."""

    exit_code = 3


class RuntimeLoadError(SwinConvertError):
    """A runtime could not build the model or load the weights strictly."""
