"""CSWin geometry: stage maps, branch counts, stripe widths (``split_size``).

Facts from microsoft/CSWin-Transformer @ f111ae2 (models/cswin.py):

* stem ``Conv2d(in, C, 7, stride 4, padding 2)`` followed by a ``Rearrange`` whose grid is
  baked to ``img_size // 4``; every stage's blocks are built with ``reso = img_size // 4, 8,
  16, 32``; merges are ``Conv2d(3, stride 2, padding 1)``. The stem and merge outputs must
  therefore equal those baked sizes, or the model fails in forward.
* a block whose stage map equals its split, and every block of the last stage, has one
  attention branch over the whole map (``attns.0`` with C channels); any other block has two
  half-width branches (``attns.0`` vertical stripes, ``attns.1`` horizontal). This is the
  only geometry that changes tensor shapes.
* the last stage ignores its split (stripe = whole map).
* the classification code needs each stage map divisible by its split (no padding); the
  segmentation backbone zero-pads instead (and never flips a stage to one branch).

Pure Python, no torch.
"""
from __future__ import annotations


from swin_convert.errors import UsageError

NUM_STAGES = 4
STEM_KERNEL, STEM_STRIDE, STEM_PADDING = 7, 4, 2
MERGE_KERNEL, MERGE_STRIDE, MERGE_PADDING = 3, 2, 1
STAGE_STRIDES = (4, 8, 16, 32)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def stage_maps(img_size: int) -> tuple[int, ...]:
    """Side of each stage's token map as the classification model builds it (img // 4..32)."""
    return tuple(int(img_size) // s for s in STAGE_STRIDES)


def computed_maps(img_size: int) -> tuple[int, ...]:
    """Side of each stage's token map as the convolutions actually produce it."""
    side = _conv_out(int(img_size), STEM_KERNEL, STEM_STRIDE, STEM_PADDING)
    maps = [side]
    for _ in range(NUM_STAGES - 1):
        side = _conv_out(side, MERGE_KERNEL, MERGE_STRIDE, MERGE_PADDING)
        maps.append(side)
    return tuple(maps)


def img_size_ok(img_size: int) -> bool:
    """True when the official classification model can run at ``img_size`` (square)."""
    return img_size >= 32 and computed_maps(img_size) == stage_maps(img_size)


def nearest_img_sizes(img_size: int, count: int = 2) -> list[int]:
    """The closest valid image sizes below and above ``img_size`` (for error messages)."""
    below = [s for s in range(img_size - 1, 31, -1) if img_size_ok(s)][:count]
    above = []
    s = img_size + 1
    while len(above) < count and s < img_size + 4096:
        if img_size_ok(s):
            above.append(s)
        s += 1
    return sorted(below) + above


def check_img_size(img_size: int) -> int:
    """Refuse an image size the official classification model cannot run at."""
    if not isinstance(img_size, int) or isinstance(img_size, bool) or img_size <= 0:
        raise UsageError(f"Image size must be a positive integer, got {img_size!r}.",
                         "Use a multiple of 32, e.g. 224 or 384.", exit_code=2)
    if not img_size_ok(img_size):
        near = ", ".join(str(s) for s in nearest_img_sizes(img_size))
        raise UsageError(
            f"CSWin cannot run at {img_size} px: its layers produce token maps "
            f"{list(computed_maps(img_size))} but the model is built for {list(stage_maps(img_size))}.",
            f"Nearest valid sizes: {near} (multiples of 32 always work).")
    return img_size


def branch_counts(maps, split) -> tuple[int, ...]:
    """Attention branches per stage: 1 in the last stage and where the map equals its split."""
    maps, split = tuple(maps), tuple(split)
    return tuple(1 if (s == len(maps) - 1 or maps[s] == split[s]) else 2 for s in range(len(maps)))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def valid_splits(stage_map: int, branches: int, *, padded: bool = False) -> list[int]:
    """Splits a stage (not the last) can take without changing its tensor shapes.

    Two branches: divisors of the map below the map (``padded``: any width below the map).
    One branch: only the map itself.
    """
    if branches == 1:
        return [stage_map]
    if padded:
        return list(range(1, stage_map))
    return [d for d in divisors(stage_map) if d < stage_map]


def split_choices(img_size: int, source_branches=None, *, padded: bool = False) -> list[list[int]]:
    """Per stage, the splits :func:`check_split` accepts at ``img_size`` (last stage: its map)."""
    maps = stage_maps(img_size)
    out = []
    for s in range(NUM_STAGES - 1):
        if source_branches is None:
            out.append(valid_splits(maps[s], 2, padded=padded) + [maps[s]])
        else:
            out.append(valid_splits(maps[s], int(source_branches[s]), padded=padded))
    out.append([maps[-1]])
    return out


def _fmt(values) -> str:
    values = list(values)
    if len(values) > 12:
        return ", ".join(str(v) for v in values[:6]) + ", ..., " + ", ".join(str(v) for v in values[-3:])
    return ", ".join(str(v) for v in values)


def parse_split(text) -> tuple[int, ...]:
    """``"1,2,12,12"`` or a sequence -> a 4-tuple of positive ints (UsageError otherwise)."""
    try:
        if isinstance(text, str):
            parts = [p for p in text.replace(" ", "").split(",") if p != ""]
            values = tuple(int(p) for p in parts)
        else:
            values = tuple(int(v) for v in text)
    except (TypeError, ValueError):
        raise UsageError(f"Split {text!r} is not a list of integers.",
                         "Give four stripe widths, e.g. --split 1,2,12,12.") from None
    if len(values) != NUM_STAGES or any(v <= 0 for v in values):
        raise UsageError(f"Split {text!r} must be four positive integers (one per stage).",
                         "Give four stripe widths, e.g. --split 1,2,12,12.")
    return values


def check_split(img_size: int, split, source_branches=None, *, padded: bool = False):
    """Validate a requested split at ``img_size``; returns ``(split, notes)``.

    ``source_branches``: the branch count per stage of the weights being placed (their shapes);
    None means the split decides them (building a new model). The last stage's split is ignored
    by the official code and is normalised to the last stage map (with a note when it differs).
    ``padded``: allow non-dividing splits (segmentation backbone only, it zero-pads stripes).
    Raises UsageError listing the valid choices.
    """
    split = parse_split(split)
    check_img_size(img_size)
    maps = stage_maps(img_size)
    notes: list[str] = []
    last = NUM_STAGES - 1
    if split[last] != maps[last]:
        notes.append(f"split[{last}]={split[last]} is ignored by CSWin (the last stage attends over its "
                     f"whole {maps[last]}x{maps[last]} map); recorded as {maps[last]}.")
        split = split[:last] + (maps[last],)
    for s in range(last):
        m, w = maps[s], split[s]
        if source_branches is not None:
            src = int(source_branches[s])
            if src == 2 and w == m:
                raise UsageError(
                    f"Split {w} in stage {s + 1} equals its {m}x{m} map at {img_size} px: CSWin would build one "
                    f"attention branch there, but the weights have two (shapes differ).",
                    f"Valid stage-{s + 1} splits at {img_size} px: {_fmt(valid_splits(m, 2, padded=padded))}.")
            if src == 1 and w != m:
                raise UsageError(
                    f"Stage {s + 1} of the weights has one attention branch, which needs split == map "
                    f"({m} at {img_size} px), got {w}.",
                    f"Use split {m} in stage {s + 1}.")
        if w > m:
            raise UsageError(
                f"Split {w} in stage {s + 1} is wider than its {m}x{m} map at {img_size} px.",
                f"Valid stage-{s + 1} splits at {img_size} px: {_fmt(valid_splits(m, 2, padded=padded))}, or {m} "
                f"(one branch, changes shapes).")
        if not padded and m % w:
            two = valid_splits(m, 2)
            raise UsageError(
                f"Stage {s + 1} map {m} at {img_size} px is not divisible by split {w} "
                f"(the classification model has no padding).",
                f"Valid stage-{s + 1} splits at {img_size} px: {_fmt(two)}.")
    return split, notes


def default_split(src_img: int, src_split, new_img: int, source_branches=None):
    """The split to use at ``new_img`` for weights trained at ``src_img`` with ``src_split``.

    Per stage (not the last): keep the stripe/map ratio where that gives a whole stripe that
    divides the new map; otherwise keep the stripe width itself if it still divides the map;
    otherwise the valid stripe nearest the scaled one (with a note). A one-branch stage keeps
    split == map. The last stage is set to its map. 224 [1,2,7,7] -> 384 [1,2,12,12] (official).
    Returns ``(split, notes)``.
    """
    src_split = parse_split(src_split)
    check_img_size(src_img)
    check_img_size(new_img)
    src_maps, new_maps = stage_maps(src_img), stage_maps(new_img)
    if source_branches is None:
        source_branches = branch_counts(src_maps, src_split)
    out, notes = [], []
    for s in range(NUM_STAGES - 1):
        m0, m1, w0 = src_maps[s], new_maps[s], src_split[s]
        if int(source_branches[s]) == 1:
            out.append(m1)
            continue
        choices = valid_splits(m1, 2)
        if not choices:
            raise UsageError(f"Stage {s + 1} map is {m1}x{m1} at {new_img} px: too small for two stripes.",
                             "Choose a larger image size.")
        from fractions import Fraction   # here: it imports decimal (~3 ms of every command's start-up)
        scaled = Fraction(w0 * m1, m0)
        if scaled.denominator == 1 and int(scaled) in choices:
            out.append(int(scaled))
        elif w0 in choices:
            out.append(w0)
        else:
            pick = min(choices, key=lambda c: (abs(Fraction(c) - scaled), c))
            notes.append(f"stage {s + 1}: stripe {w0} of {m0} has no exact counterpart at {m1}; using {pick}.")
            out.append(pick)
    out.append(new_maps[-1])
    return tuple(out), notes
