"""How ``check --against`` compares a Swin candidate with its source: same architecture, then
the same geometry (exact), the source's weights at the candidate's geometry where they fit (exact,
V2 and V1 with only a new resolution), else agreement only."""
from __future__ import annotations

import dataclasses

from ...core.checkpoint import CanonicalCheckpoint
from ...errors import IncompatibleSpecError
from .shapes import canonical_shapes

_ARCH_FIELDS = ("version", "embed_dim", "depths", "num_heads", "patch_size", "in_chans", "mlp_ratio",
                "qkv_bias", "patch_norm", "ape")


def _check_same_architecture(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> None:
    for name in _ARCH_FIELDS:
        a, b = getattr(cand.spec, name), getattr(src.spec, name)
        if a != b:
            raise IncompatibleSpecError(
                f"The candidate and the source are different architectures ({name} {a} vs {b}).",
                "Pass the checkpoint the candidate was converted from as --against.")


def compare(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> tuple:
    """What ``check --against`` compares: (truth checkpoint, gated, description, notes)."""
    _check_same_architecture(cand, src)
    c, s = cand.spec, src.spec
    if (c.window_size, c.img_size) == (s.window_size, s.img_size):
        notes = []
        if c.version == 2 and c.effective_pretrained_windows() != s.effective_pretrained_windows():
            notes.append(f"pretrained windows differ at the same geometry: candidate "
                         f"{list(c.effective_pretrained_windows())}, source {list(s.effective_pretrained_windows())}")
        return src, True, "candidate vs the source (reference forward, fp32, CPU) at the same geometry", notes
    change = f"window {list(s.window_size)} -> {list(c.window_size)}, {s.img_size} -> {c.img_size} px"
    moved = s.replace(window_size=c.window_size, img_size=c.img_size,
                      pretrained_window_sizes=c.pretrained_window_sizes if s.version == 2 else ())
    if _weights_fit(moved, src.tensors):
        return _moved_plan(src, moved, change)
    return src, False, (f"geometry changed ({change}) and the bias tables were resized, so outputs "
                        f"cannot match exactly: agreement only (not gated); the source ran at its own "
                        f"{s.img_size} px"), []


def _moved_plan(src: CanonicalCheckpoint, moved, change: str) -> tuple:
    """The source's weights at the candidate's geometry: exact, so gated."""
    truth = dataclasses.replace(src, spec=moved)
    extra = f" (pretrained windows {list(moved.pretrained_window_sizes)})" if moved.version == 2 else ""
    notes = []
    if moved.version == 2 and moved.effective_pretrained_windows() != src.spec.effective_pretrained_windows():
        notes.append(f"the candidate normalises CPB coordinates by {list(moved.effective_pretrained_windows())}, "
                     f"the source by {list(src.spec.effective_pretrained_windows())}; the source ran with the "
                     f"candidate's")
    return truth, True, (f"geometry changed ({change}): the source's weights were evaluated at the "
                         f"candidate's geometry{extra}, an exact comparison"), notes


def _weights_fit(spec, tensors: dict) -> bool:
    want = {k: v for k, v in canonical_shapes(spec).items() if not k.startswith("head.")}
    have = {k: tuple(v.shape) for k, v in tensors.items() if not k.startswith("head.")}
    return want == have
