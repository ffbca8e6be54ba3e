"""Exceptions of swin-convert.

Every error a user can cause is a :class:`SwinConvertError`: one sentence saying what is
wrong, plus a hint saying what to do. The CLI prints ``Error: <message>`` and
``Hint: <hint>`` on stderr and exits with ``exit_code`` (1 by default, 2 for bad requests,
3 for a numerical check over tolerance). No other module of the package imports this one's
dependencies: it has none.

Errors also carry what they are about as attributes, so library code can act on them
without parsing the message (every attribute has a default, None or an empty list)::

    try:
        swin_convert.remap("ckpt.pth", "timm", "out/")
    except swin_convert.LayoutError as e:
        print(e.missing, e.unexpected, e.mismatched)   # tensor names; (key, expected, got) shapes

``to_dict()`` gives all of it as plain JSON values (the CLI's ``--format json`` error object).
"""
from __future__ import annotations

import math


def _plain(value):
    """A JSON value: paths as strings, tuples as lists, NaN / inf as None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)


def _rebuild(cls, state):
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message"))
    err.__dict__.update(state)
    return err


class SwinConvertError(Exception):
    """A user-facing error: what is wrong (``message``) and what to do (``hint``).

    Attributes:
        message: One sentence, what is wrong.
        hint: What to do about it, or None.
        exit_code: The CLI's exit status (1 bad file, 2 bad request, 3 check over tolerance).
    """

    exit_code = 1
    fields: tuple = ()      # the attributes a subclass adds (listed by to_dict)

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # one line, hint included, for library users
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def __reduce__(self):      # survives pickling (multiprocessing workers) with its attributes
        return _rebuild, (type(self), dict(self.__dict__))

    def to_dict(self) -> dict:
        """``{"type", "message", "hint", "exit_code", <fields>...}`` as plain JSON values."""
        out = {"type": type(self).__name__, "message": self.message, "hint": self.hint,
               "exit_code": self.exit_code}
        seen = set()
        for cls in type(self).__mro__:
            for name in getattr(cls, "fields", ()):
                if name not in seen:
                    seen.add(name)
                    out[name] = _plain(getattr(self, name, None))
        return out


class BadInputError(SwinConvertError, ValueError):
    """The input file is unreadable, corrupt, unsafe or not a Swin checkpoint.

    Attributes:
        path: The file (or folder) at fault, when known.
    """

    fields = ("path",)

    def __init__(self, message: str, hint: str | None = None, *, path=None, exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.path = path


class LayoutError(BadInputError):
    """Keys do not fit the layout (missing, unexpected, wrong shape), or no layout fits.

    Attributes:
        missing: Canonical tensor names the layout needs and the file lacks.
        unexpected: Keys of the file no rule of the layout takes.
        mismatched: ``(key, expected_shape, got_shape)`` of tensors with another shape.
        layout: The layout the keys were read as (None: no layout fits).
        path: The file (see :class:`BadInputError`).
    """

    fields = ("layout", "missing", "unexpected", "mismatched")

    def __init__(self, message: str, hint: str | None = None, *, missing=(), unexpected=(), mismatched=(),
                 layout: str | None = None, path=None, exit_code: int | None = None):
        super().__init__(message, hint, path=path, exit_code=exit_code)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = [tuple(m) for m in mismatched]
        self.layout = layout


class IncompatibleSpecError(SwinConvertError, ValueError):
    """The target layout or runtime cannot express this model (e.g. per-stage windows in HF)."""


class UsageError(SwinConvertError, ValueError):
    """A request that cannot be carried out as asked (bad window, resolution, flags).

    Attributes:
        option: The command-line option at fault (``"--window"``), when one is.
    """

    exit_code = 2
    fields = ("option",)

    def __init__(self, message: str, hint: str | None = None, *, option: str | None = None,
                 exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.option = option


class OutputExistsError(SwinConvertError):
    """The output path exists and --overwrite was not given, or it is the input.

    Attributes:
        path: The output path.
    """

    fields = ("path",)

    def __init__(self, message: str, hint: str | None = None, *, path=None, exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.path = path


class HubError(SwinConvertError):
    """A Hub or URL download/upload failed (not found, gated, offline, network).

    Attributes:
        repo_id: The Hub repo (None for a plain URL).
        revision: The revision asked for (None: the default branch).
        status: The HTTP status the server answered, when it answered.
        url: The URL (credentials and query left out), for URL sources.
    """

    fields = ("repo_id", "revision", "status", "url")

    def __init__(self, message: str, hint: str | None = None, *, repo_id: str | None = None,
                 revision: str | None = None, status: int | None = None, url: str | None = None,
                 exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.repo_id = repo_id
        self.revision = revision
        self.status = status
        self.url = url


class CheckFailedError(SwinConvertError):
    """A numerical check ran and exceeded its tolerance.

    Attributes:
        diff: The worst measured value of ``metric`` over the failed runtimes (None when they
            failed to load rather than to agree).
        tolerance: The bound ``diff`` had to stay within.
        metric: What ``diff`` measures: ``"tol_ratio"`` = max |out - ref| / (atol + rtol |ref|),
            which passes at <= 1.
        runtimes: The runtimes that failed.
        max_abs_diff: Their worst max |out - ref|.
        atol, rtol: The tolerances of the check.
    """

    exit_code = 3
    fields = ("diff", "tolerance", "metric", "runtimes", "max_abs_diff", "atol", "rtol")

    def __init__(self, message: str, hint: str | None = None, *, diff: float | None = None,
                 tolerance: float | None = None, metric: str | None = None, runtimes=(),
                 max_abs_diff: float | None = None, atol: float | None = None, rtol: float | None = None,
                 exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.diff = diff
        self.tolerance = tolerance
        self.metric = metric
        self.runtimes = list(runtimes)
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        self.rtol = rtol


class RuntimeLoadError(SwinConvertError):
    """A runtime could not build the model or load the weights strictly.

    Attributes:
        runtime: The runtime (``"timm"``, ``"transformers"``...).
        missing, unexpected, mismatched: The keys its strict load reported.
    """

    fields = ("runtime", "missing", "unexpected", "mismatched")

    def __init__(self, message: str, hint: str | None = None, *, runtime: str | None = None, missing=(),
                 unexpected=(), mismatched=(), exit_code: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.runtime = runtime
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


__all__ = ["SwinConvertError", "BadInputError", "LayoutError", "IncompatibleSpecError", "UsageError",
           "OutputExistsError", "HubError", "CheckFailedError", "RuntimeLoadError"]
