"""swin-convert: Swin Transformer checkpoints between layouts, windows and resolutions."""
__version__ = "0.1.0"


def __getattr__(name):  # keep `import swin_convert` (and the CLI's --help) free of torch
    if name in ("load", "save", "remap", "inspect", "resolve"):
        from . import api
        return getattr(api, name)
    if name == "SwinSpec":
        from .spec import SwinSpec
        return SwinSpec
    raise AttributeError(name)
