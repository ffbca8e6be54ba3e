"""The one import of the key-table schema for the ViT family (moves to ``core.schema``)."""
from swin_convert.layouts._schema import INVALID, Layout, Rule, Template, rule  # noqa: F401

__all__ = ["INVALID", "Layout", "Rule", "Template", "rule"]
