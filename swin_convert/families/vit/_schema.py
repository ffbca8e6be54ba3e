"""The one import of the key-table schema for the ViT family's layouts, and the hooks several
layouts share."""
from ...core.schema import INVALID, Layout, Rule, Runtime, Signature, Template, rule  # noqa: F401

EPS = 1e-6    # LayerNorm eps of timm, DeiT / old timm and torchvision ViTs


def eps_caveat(runtime: str):
    """A layout's ``caveats(spec)``: the output's runtime fixes LayerNorm eps at 1e-6."""
    def caveats(spec) -> list[str]:
        if abs(spec.layer_norm_eps - EPS) > 1e-12:
            return [f"{runtime} LayerNorm eps is 1e-6 (source {spec.layer_norm_eps:g}): outputs move by ~1e-6"]
        return []
    return caveats


def single_variant(_spec_or_keys) -> int:
    """``variant(spec)`` / ``variant_of_keys(keys)`` of a layout with one key table."""
    return 1


__all__ = ["INVALID", "Layout", "Rule", "Runtime", "Signature", "Template", "rule", "EPS", "eps_caveat",
           "single_variant"]
