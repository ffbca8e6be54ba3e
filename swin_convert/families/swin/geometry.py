"""All Swin window geometry: stage maps, clamping, tiling checks and their messages, the
persisted buffers. Shared by spec validation, inference, transfer, the reference forward and
the layout writers.

Everything here is numpy (no torch), so writing an official-layout checkpoint with its
persisted buffers needs no torch import. The formulas follow microsoft/Swin-Transformer
(models/swin_transformer.py, swin_transformer_v2.py) exactly; the V2 coordinate table is
computed in float32 with the same operation order as the official code so the regenerated
buffer is bit-identical to one written by the official model.
"""
from __future__ import annotations

import math

from ...errors import UsageError

MASK_VALUE = -100.0


def relative_position_index(window: int) -> np.ndarray:
    """(N, N) int64 index into a (2W-1)^2 table: (dy+W-1)(2W-1) + (dx+W-1)."""
    import numpy as np
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return (rel[0] * (2 * window - 1) + rel[1]).astype(np.int64)


def relative_coords_table(window: int, pretrained_window: int = 0) -> np.ndarray:
    """V2 log-spaced coordinates (1, 2W-1, 2W-1, 2) float32, normalised by the pretrained window.

    ``pretrained_window`` 0 means the window itself ("stretch" semantics).
    """
    import numpy as np
    norm = pretrained_window if pretrained_window > 0 else window
    axis = np.arange(-(window - 1), window, dtype=np.float32)
    table = np.stack(np.meshgrid(axis, axis, indexing="ij")).transpose(1, 2, 0)[None].copy()
    table /= np.float32(max(norm - 1, 1))
    table *= np.float32(8)
    # log2 in float64 then rounded: torch's float32 log2 is correctly rounded here, numpy's
    # float32 one is not (1 ulp off), and the buffer must match torch's bit for bit.
    log = np.log2((np.abs(table) + np.float32(1.0)).astype(np.float64)).astype(np.float32)
    return ((np.sign(table) * log) / np.float32(math.log2(8))).astype(np.float32)


def infer_pretrained_window(table: np.ndarray, window: int) -> int:
    """Recover the window a persisted V2 coordinate table was normalised by (0 if it is W itself)."""
    import numpy as np
    if window <= 1:
        return 0
    edge = float(np.abs(table[0, 0, 0, 0]))           # coordinate of offset -(W-1)
    ratio = (2.0 ** (edge * 3.0) - 1.0) / 8.0          # = (W-1)/(Wp-1)
    wp = int(round((window - 1) / ratio + 1)) if ratio > 0 else window
    return 0 if wp == window else wp


def attn_mask(resolution: int, window: int, shift: int) -> np.ndarray | None:
    """(nW, N, N) float32 mask of the shifted windows, -100 across regions; None without shift."""
    import numpy as np
    if shift == 0:
        return None
    n = resolution // window
    out = np.zeros((n * n, window * window, window * window), dtype=np.float32)
    for i, block in enumerate(mask_windows(resolution, window, shift)):
        out[i] = block
    return out


def _window_labels(resolution: int, window: int, shift: int) -> np.ndarray:
    import numpy as np
    img = np.zeros((resolution, resolution), dtype=np.int8)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            img[hs, ws] = label
            label += 1
    n = resolution // window
    return img.reshape(n, window, n, window).transpose(0, 2, 1, 3).reshape(n * n, -1)


def mask_windows(resolution: int, window: int, shift: int):
    """The (N, N) float32 masks of attn_mask, one window at a time (no full-size array)."""
    import numpy as np
    for row in _window_labels(resolution, window, shift):
        block = np.zeros((window * window, window * window), dtype=np.float32)
        block[row[None, :] != row[:, None]] = MASK_VALUE
        yield block


class MaskSource:
    """attn_mask as a lazy tensor source: written window by window, so even a stage whose
    mask is gigabytes costs one (N, N) window of memory in a safetensors output."""

    dtype = "F32"

    def __init__(self, resolution: int, window: int, shift: int):
        self.resolution, self.window, self.shift = resolution, window, shift
        n, area = resolution // window, window * window
        self.shape = (n * n, area, area)

    @property
    def nbytes(self) -> int:
        return 4 * self.shape[0] * self.shape[1] * self.shape[2]

    def write_to(self, out) -> None:
        for block in mask_windows(self.resolution, self.window, self.shift):
            out.write(memoryview(block).cast("B"))

    def tobytes(self) -> bytes:
        return attn_mask(self.resolution, self.window, self.shift).tobytes()

    @property
    def array(self) -> np.ndarray:
        return attn_mask(self.resolution, self.window, self.shift)


def windows_from_table_rows(rows: int) -> int | None:
    """Window W of a (2W-1)^2-row V1 bias table, or None when rows is not such a square."""
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        return None
    return (side + 1) // 2


def assumed_img_size(windows, patch_size: int) -> int:
    """The image size released checkpoints use for these windows: the last map equals its window.

    True for every released Swin (w7/224, w12/384, w8/256, w16/256, w24/384, 192/w12 -> 6).
    """
    return windows[-1] * patch_size * 2 ** (len(windows) - 1)


# ----------------------------------------------------------------------------------------
# stage maps, clamping, tiling (each check and its message written once)
# ----------------------------------------------------------------------------------------
def pyramid(patch_size: int, stages: int) -> int:
    """What an image side must be a multiple of: the patch times 2 per patch merge."""
    return patch_size * 2 ** (stages - 1)


def stage_maps(img_size: int, patch_size: int, stages: int) -> tuple[int, ...]:
    """Side of each stage's token map."""
    return tuple(img_size // patch_size // 2 ** i for i in range(stages))


def img_size_error(img: int, patch_size: int, stages: int, subject: str, merges: str) -> UsageError | None:
    """The error for an image size the patch pyramid does not divide (None when it does)."""
    step = pyramid(patch_size, stages)
    if img > 0 and img % step == 0:
        return None
    return UsageError(f"{subject} is not a multiple of {step} (patch {patch_size} x 2^{stages - 1} {merges}).",
                      f"Use one of {nearest_multiples(max(img, 1), step)}.")


def per_stage(values, stages: int, flag: str = "per-stage values") -> tuple[int, ...]:
    """One value for every stage, or exactly one per stage."""
    values = tuple(int(v) for v in values)
    if len(values) == 1:
        return values * stages
    if len(values) != stages:
        raise UsageError(f"{flag} has {len(values)} values but the model has {stages} stages.",
                         "Give one value, or one per stage.", option=flag if flag.startswith("--") else None)
    return values


def clamp_windows(resolutions, windows) -> tuple[int, ...]:
    """Official clamping: a stage whose map is not larger than the window uses the map size."""
    return tuple(min(r, w) for r, w in zip(resolutions, windows))


def shift_sizes(resolutions, windows) -> tuple[int, ...]:
    """Official rule: no shift where the window covers the whole map."""
    return tuple(0 if r <= w else w // 2 for r, w in zip(resolutions, windows))


def tiles(maps, configured) -> bool:
    """Every stage map is tiled by its (clamped) window."""
    return all(r % min(w, r) == 0 for r, w in zip(maps, configured))


def pretrained_per_stage(values, *, img_size: int, patch_size: int, windows, pretrain_img: int | None = None,
                         flag: str = "pretrained_window_sizes") -> tuple[tuple[int, ...], str | None]:
    """V2 pretrained windows per stage, and how one given value was spread (None: given per stage).

    One window W0 stands for the model it was pretrained as, whose stages clamp W0 by the
    official rule at the pretraining maps: 192 px / window 12 gives (12, 12, 12, 6), the
    value timm and the official configs record for every ``*12to16_192to256`` and
    ``*12to24_192to384`` fine-tune; it is never simply repeated. The pretraining image size
    is ``pretrain_img`` when known (a name's ``_192to256``). Otherwise the window is taken to
    have grown with the resolution, as in every released fine-tune (192 px / 12 -> 256 px /
    16, 384 px / 24): ``img_size x W0 / this model's window``. When that is no image size the
    pyramid divides, W0 is clamped at this model's own maps. ``0`` (stretch) stays 0.
    """
    values = tuple(int(v) for v in values)
    stages = len(windows)
    if len(values) != 1 or values[0] == 0:
        return per_stage(values, stages, flag), None
    w0, step = values[0], pyramid(patch_size, stages)
    if pretrain_img:
        how = f"at the {pretrain_img} px pretraining maps"
    else:
        big = max(windows)
        if (img_size * w0) % big == 0 and (img_size * w0 // big) % step == 0:
            pretrain_img = img_size * w0 // big
            how = (f"at the {pretrain_img} px pretraining maps (assumed: window and image grew together, "
                   f"{img_size} px x {w0}/{big})")
        else:
            pretrain_img = img_size
            how = f"at this model's {img_size} px maps (no pretraining image size scales window {big} to {w0})"
    return clamp_windows(stage_maps(pretrain_img, patch_size, stages), (w0,) * stages), how


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def nearest_multiples(value: int, step: int) -> list[int]:
    lo = max(step, value // step * step)
    return sorted({lo, lo + step} - {value})


# ----------------------------------------------------------------------------------------
# persisted buffers of a spec
# ----------------------------------------------------------------------------------------
def stage_buffers(spec, stage: int) -> dict:
    """{(kind, block parity): array} for one stage (even blocks unshifted, odd blocks shifted)."""
    w, r, shift = spec.window_size[stage], spec.resolutions[stage], spec.shift_sizes[stage]
    index = relative_position_index(w)
    out = {("relative_position_index", 0): index, ("relative_position_index", 1): index}
    if spec.version == 2:
        table = relative_coords_table(w, spec.pretrained_window_sizes[stage])
        out[("relative_coords_table", 0)] = out[("relative_coords_table", 1)] = table
    if shift:
        out[("attn_mask", 1)] = MaskSource(r, w, shift)
    return out


def expected_buffer_shape(kind: str, spec, stage: int) -> tuple:
    w = spec.window_size[stage]
    return {"relative_position_index": (w * w, w * w), "relative_coords_table": (1, 2 * w - 1, 2 * w - 1, 2),
            "attn_mask": ((spec.resolutions[stage] // w) ** 2, w * w, w * w)}[kind]
