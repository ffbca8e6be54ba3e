"""The one compiled part of swin-convert, optional: the one-pass casts of ``--dtype``
(swin_convert/core/_castc.c). Where it cannot be built (no C compiler) the install goes on and
core/cast.py does the same casts with numpy. Everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("swin_convert.core._castc", ["swin_convert/core/_castc.c"], optional=True)])
