"""The one import of the key-table schema for the ViT family's layouts."""
from ...core.schema import INVALID, Layout, Rule, Runtime, Signature, Template, rule  # noqa: F401

__all__ = ["INVALID", "Layout", "Rule", "Runtime", "Signature", "Template", "rule"]
