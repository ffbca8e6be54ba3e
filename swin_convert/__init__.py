"""swin-convert: Swin Transformer (and, as families, ViT and CSWin) checkpoints between layouts,
windows and resolutions, checked numerically.

The library face (keyword-only where it matters, documented in ``swin_convert.api``)::

    swin_convert.load / save / inspect / remap / upscale / check / push
"""
from ._version import __version__  # noqa: F401

_FACE = ("load", "save", "remap", "inspect", "resolve", "upscale", "check", "evaluate_accuracy", "push")


def __getattr__(name):  # keep `import swin_convert` (and the CLI's --help) free of torch
    if name in _FACE:
        from . import api
        return getattr(api, name)
    if name == "SwinSpec":
        from .families.swin.spec import SwinSpec
        return SwinSpec
    raise AttributeError(name)
