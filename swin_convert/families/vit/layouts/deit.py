"""facebookresearch/deit and timm < 0.9 checkpoints: ``{'model': state_dict}`` in timm names.

Names are timm's plus ``pre_logits.fc`` (timm <= 0.5 representation layer) and, read only,
DeiT-III's ``gamma_1`` / ``gamma_2`` layer scales. Files carry no config: the spec comes from
shapes (and hints given by the user). Registers did not exist before timm 0.9.
"""
from __future__ import annotations

from .._schema import EPS, Layout, Signature, eps_caveat, rule, single_variant
from ..shapes import TEMPLATES
from ..spec import ViTSpec

WRAPPER = "model"   # torch.save({'model': state_dict}) as DeiT's main.py does


def limits(spec: ViTSpec) -> str | None:
    if spec.reg_tokens:
        return "DeiT and timm < 0.9 have no register tokens"
    return None


caveats = eps_caveat("DeiT / old timm")
variant = variant_of_keys = single_variant


def detect(keys) -> bool:
    """timm's names plus a marker timm >= 0.9 never writes (the 'model' wrapper is the reader's clue)."""
    keys = list(keys)
    return (any(k.startswith("patch_embed.proj.") for k in keys) and "pos_embed" in keys
            and any(k.startswith("pre_logits.fc.") or k.endswith((".gamma_1", ".gamma_2")) for k in keys))


def read_hints(config: dict | None) -> dict:
    return {"layer_norm_eps": EPS}


def config_json(spec: ViTSpec, **_) -> None:
    return None


def extra_tensors(spec: ViTSpec) -> dict:
    return {}


LAYOUT = Layout(
    name="deit",
    title="facebookresearch/deit and timm < 0.9 ({'model': state_dict}, pre_logits, dist_token)",
    rules=tuple(rule(t, t) for t in TEMPLATES) + (
        rule("blocks.{b}.ls1.gamma", "blocks.{b}.gamma_1"),      # DeiT-III, read only
        rule("blocks.{b}.ls2.gamma", "blocks.{b}.gamma_2"),
    ),
    limits=limits,
    loads_with="torch.load(OUT)['model'] into timm's VisionTransformer (< 0.9 for pre_logits)",
    # timm's names plus a marker timm >= 0.9 never writes (a plain DeiT file reads as timm: same names)
    signature=Signature(required=(r"^patch_embed\.proj\.weight$", r"^pos_embed$", r"^blocks\.\d+\.attn\.qkv\.weight$"),
                        preferred=(r"^pre_logits\.fc\.", r"\.gamma_[12]$"),
                        excluded=()),
    configs=None,
    read_hints=lambda config: None,
    wrap=WRAPPER,
    runtime=None,         # checked with the reference forward (timm reads these names as the timm layout)
    library_name="swin-convert",
)
