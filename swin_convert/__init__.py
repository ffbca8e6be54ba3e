"""swin-convert: Swin Transformer (and, as families, ViT and CSWin) checkpoints between layouts,
windows and resolutions, checked numerically.

The library face (keyword-only where it matters, documented in ``swin_convert.api``)::

    swin_convert.load / save / inspect / remap / upscale / check / push

and the errors they raise (``swin_convert.LayoutError``...; see ``swin_convert.errors``), which
carry their data as attributes (``e.missing``, ``e.repo_id``, ``e.diff``...) and ``to_dict()``.
"""
import sys as _sys
import types as _types

from ._version import __version__  # noqa: F401
from .errors import (BadInputError, CheckFailedError, HubError, IncompatibleSpecError, LayoutError,  # noqa: F401
                     OutputExistsError, RuntimeLoadError, SwinConvertError, UsageError)

_FACE = ("load", "save", "remap", "inspect", "resolve", "upscale", "check", "evaluate_accuracy", "push")


def __getattr__(name):  # keep `import swin_convert` (and the CLI's --help) free of torch
    if name in _FACE:
        from . import api
        return getattr(api, name)
    if name == "SwinSpec":
        from .families.swin.spec import SwinSpec
        return SwinSpec
    raise AttributeError(name)


class _Face(_types.ModuleType):
    """The package object: ``swin_convert.check`` stays the function of the face even after the
    ``swin_convert.check`` subpackage is imported (the import system would set the attribute to the
    submodule; ``from swin_convert.check import engine`` still finds it through sys.modules)."""

    def __setattr__(self, name, value):
        if name in _FACE and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Face
