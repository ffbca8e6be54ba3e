"""swin-convert: Swin Transformer (and, as families, ViT and CSWin) checkpoints between layouts,
windows and resolutions, checked numerically.

The library face (keyword-only where it matters, documented in ``swin_convert.api``)::

    swin_convert.load / save / inspect / remap / upscale / check / push

and the errors they raise (``swin_convert.LayoutError``...; see ``swin_convert.errors``), which
carry their data as attributes (``e.missing``, ``e.repo_id``, ``e.diff``...) and ``to_dict()``.
"""
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
