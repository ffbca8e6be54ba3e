"""A procedural image-classification task where *relative position* decides the class.

Each scene is a Glass pattern: a few dozen pairs of small dots scattered at random, where
every pair of an image shares one displacement -- its class: the pair axis (horizontal,
vertical, the two diagonals) times the pair length (near or far), 4 x 2 = 8 classes. Each
pair has a random colour; unpaired dots, a randomly tinted, faintly striped background and
pixel noise are added on top. No single dot, colour or absolute position says anything
about the class: a model has to relate dots to other dots at a given *offset*. A Swin
without absolute position embedding can see an offset through its relative position bias,
or -- when both dots of a pair fall inside one cell -- through the 4x4 px patch embedding
and the 2x2-token patch merging. (results.md shows the toy models took the second route:
removing their bias costs them almost nothing. Variants with longer pairs or one colour for
all dots, which only the bias can solve, did not train in a few CPU minutes.)

A scene is a handful of numbers in image-relative units (centres in [0, 1], radii and
displacements as fractions of the side), so the same scene renders at any resolution: at
128 px it is the 64 px picture drawn twice as large, pair lengths included. Scene ``i`` of
a split depends only on ``(seed, i)``, never on the batch it is drawn in or on the size.

    images, labels = render_split(seed=1, start=0, count=256, size=64)   # float32 (N,3,S,S) in [0,1]
    write_image_folder("data/", seed=1, count=1000, size=128)             # NN_class/NNNN.png

``python examples/toy_transfer/data.py sheet.png`` draws a few scenes of every class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AXES = {"horizontal": 0.0, "diagonal": 45.0, "vertical": 90.0, "antidiagonal": 135.0}  # degrees, y down
LENGTHS = {"near": (0.07, 0.09), "far": (0.14, 0.18)}     # pair displacement, fraction of the side
CLASSES = [f"{a}_{n}" for a in AXES for n in LENGTHS]     # class i = CLASSES[i]
FOLDERS = [f"{i:02d}_{name}" for i, name in enumerate(CLASSES)]   # ImageFolder sorts these in class order

PAIRS = (24, 36)             # dot pairs per scene (inclusive)
SINGLES = (4, 10)            # unpaired dots per scene (inclusive)
RADIUS = (0.015, 0.022)      # dot radius, fraction of the side (1-1.4 px at 64 px)
ANGLE_JITTER = 8.0           # degrees either side of the class axis
PIXEL_NOISE = 0.04           # std of per-pixel noise on [0, 1] intensities
WAVES = 3                    # faint gratings in the background

# ImageNet statistics: the preprocessing swin-convert assumes for a checkpoint without config
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class Scene:
    """One image, resolution-free. Positions are (x, y) in [0, 1] with y pointing down."""

    label: int
    background: np.ndarray       # (3,) base colour
    waves: np.ndarray            # (WAVES, 4): angle, wavelength, phase, amplitude
    dots: np.ndarray             # (K, 6): x, y, radius, r, g, b
    noise_seed: int


def make_scene(seed: int, index: int, label: int | None = None, part: int = 0) -> Scene:
    """Scene ``index`` of split ``seed``; its label is drawn uniformly at random unless given.

    ``part`` > 0 draws further, independent scenes of the same index (the tiles of a mosaic).
    """
    rng = np.random.default_rng([seed, index] + ([part] if part else []))
    drawn = int(rng.integers(len(CLASSES)))
    label = drawn if label is None else label
    axis, length = divmod(label, len(LENGTHS))
    base = math.radians(list(AXES.values())[axis])
    lo, hi = list(LENGTHS.values())[length]
    background = _background(rng)

    pairs = int(rng.integers(PAIRS[0], PAIRS[1] + 1))
    angle = base + np.radians(rng.uniform(-ANGLE_JITTER, ANGLE_JITTER, pairs))
    step = rng.uniform(lo, hi, pairs)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    # centre each pair on a random point, so both dots lie inside the image
    middle = rng.uniform(0.0, 1.0, (pairs, 2)) * (1 - 2 * (np.abs(step) / 2 + 0.03)) + np.abs(step) / 2 + 0.03
    radius = rng.uniform(*RADIUS, pairs)
    colour = _contrasting(rng, background, pairs)
    first = np.concatenate([middle - step / 2, radius[:, None], colour], 1)
    second = np.concatenate([middle + step / 2, radius[:, None], colour], 1)

    singles = int(rng.integers(SINGLES[0], SINGLES[1] + 1))
    lone = np.concatenate([rng.uniform(0.03, 0.97, (singles, 2)), rng.uniform(*RADIUS, (singles, 1)),
                           _contrasting(rng, background, singles)], 1)
    dots = np.concatenate([first, second, lone])[rng.permutation(2 * pairs + singles)]  # paint order
    waves = np.stack([rng.uniform(0, math.pi, WAVES), rng.uniform(0.15, 0.5, WAVES),
                      rng.uniform(0, 2 * math.pi, WAVES), rng.uniform(0.02, 0.05, WAVES)], 1)
    return Scene(label, background, waves, dots, int(rng.integers(2**31)))


def _background(rng) -> np.ndarray:
    """A random, moderately saturated colour of middling brightness."""
    grey = rng.uniform(0.3, 0.7)
    return np.clip(grey + rng.uniform(-0.15, 0.15, 3), 0, 1)


def _contrasting(rng, background: np.ndarray, count: int) -> np.ndarray:
    """``count`` random colours, each > 0.35 away from the background in some channel."""
    out = rng.uniform(0.0, 1.0, (count, 3))
    for i in range(count):
        while np.abs(out[i] - background).max() <= 0.35:
            out[i] = rng.uniform(0.0, 1.0, 3)
    return out


def render(scenes: list[Scene], size: int) -> np.ndarray:
    """Draw scenes at ``size`` x ``size`` px: float32 (N, 3, size, size) in [0, 1].

    Dots are drawn from their distance function with one pixel of anti-aliasing, so they look
    the same at every resolution. Each dot is evaluated only in a small box around it, on a
    canvas padded by the box size so no box leaves it.
    """
    n = len(scenes)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = centres[None, None, :], centres[None, :, None]          # broadcast against (N, 1, 1)
    shade = np.zeros((n, size, size), dtype=np.float32)          # faint gratings
    for k in range(WAVES):
        angle, wavelength, phase, amp = (np.array([s.waves[k, j] for s in scenes], np.float32).reshape(n, 1, 1)
                                         for j in range(4))
        shade += amp * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / wavelength + phase)
    background = np.stack([s.background for s in scenes]).astype(np.float32)
    box = int(math.ceil(RADIUS[1] * size)) + 2                   # half side of a dot's box, px
    pad = box + 1
    canvas = np.zeros((n, size + 2 * pad, size + 2 * pad, 3), dtype=np.float32)
    canvas[:, pad:pad + size, pad:pad + size] = background[:, None, None, :] + shade[..., None]

    slots = max(len(s.dots) for s in scenes)                     # pad every scene to the same count
    table = np.zeros((n, slots, 6), dtype=np.float32)
    for i, s in enumerate(scenes):
        table[i, :len(s.dots)] = s.dots
    offsets = np.arange(-box, box + 1)
    rows = np.arange(n)[:, None, None]
    for k in range(slots):
        cx, cy, r = table[:, k, 0] * size, table[:, k, 1] * size, table[:, k, 2] * size   # in pixels
        ix = np.floor(cx).astype(int)[:, None] + offsets                                  # (N, B) columns
        iy = np.floor(cy).astype(int)[:, None] + offsets
        dist = np.hypot(ix[:, None, :] + 0.5 - cx[:, None, None], iy[:, :, None] + 0.5 - cy[:, None, None])
        cover = np.clip(r[:, None, None] + 0.5 - dist, 0.0, 1.0)[..., None]             # (N, B, B, 1)
        pixels = canvas[rows, iy[:, :, None] + pad, ix[:, None, :] + pad]
        canvas[rows, iy[:, :, None] + pad, ix[:, None, :] + pad] = \
            pixels * (1 - cover) + table[:, k, None, None, 3:6] * cover
    img = canvas[:, pad:pad + size, pad:pad + size].transpose(0, 3, 1, 2)
    noise = np.stack([np.random.default_rng([s.noise_seed, size]).standard_normal((3, size, size), np.float32)
                      for s in scenes])
    return np.clip(img + PIXEL_NOISE * noise, 0.0, 1.0)


def render_split(seed: int, start: int, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scenes ``start .. start+count-1`` of split ``seed`` at ``size`` px: (images, labels)."""
    scenes = [make_scene(seed, i) for i in range(start, start + count)]
    return render(scenes, size), np.array([s.label for s in scenes], dtype=np.int64)


def render_mosaic(seed: int, start: int, count: int, tile: int = 64, grid: int = 2):
    """A control for the 2x evaluation: ``grid`` x ``grid`` scenes of one class, each drawn at
    ``tile`` px, side by side. The image is ``grid * tile`` px but its content keeps the
    trained pixel scale -- a larger field of view instead of a magnified scene.

    Tile (0, 0) of mosaic ``i`` is scene ``i`` of the split; the others share its label.
    """
    images, labels = np.zeros((count, 3, grid * tile, grid * tile), np.float32), []
    for n, index in enumerate(range(start, start + count)):
        first = make_scene(seed, index)
        scenes = [first] + [make_scene(seed, index, first.label, part) for part in range(1, grid * grid)]
        for k, pixels in enumerate(render(scenes, tile)):
            r, c = divmod(k, grid)
            images[n, :, r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = pixels
        labels.append(first.label)
    return images, np.array(labels, dtype=np.int64)


def normalize(images: np.ndarray) -> np.ndarray:
    """[0, 1] images -> the ImageNet-normalised input the models are trained on."""
    return (images - MEAN[:, None, None]) / STD[:, None, None]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) float [0, 1] -> (N, S, S, 3) uint8, as stored in PNGs."""
    return np.round(images.transpose(0, 2, 3, 1) * 255).astype(np.uint8)


def write_image_folder(root: str | Path, seed: int, count: int, size: int, chunk: int = 250,
                       mosaic: bool = False) -> Path:
    """Write an ImageFolder (``NN_class/NNNN.png``) of scenes ``0 .. count-1`` of split ``seed``
    (with ``mosaic``, 2x2 mosaics of ``size // 2`` px scenes: see :func:`render_mosaic`)."""
    from PIL import Image

    root = Path(root)
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        images, labels = render_mosaic(seed, start, n, size // 2) if mosaic else render_split(seed, start, n, size)
        for i, (pixels, label) in enumerate(zip(to_uint8(images), labels)):
            Image.fromarray(pixels).save(root / FOLDERS[label] / f"{start + i:04d}.png")
    return root


def contact_sheet(path: str | Path, seed: int = 0, per_class: int = 3, sizes=(64, 128)) -> Path:
    """A PNG grid: one row per class, ``per_class`` scenes, each drawn at every size in ``sizes``."""
    from PIL import Image

    rows, i = {c: [] for c in range(len(CLASSES))}, 0
    while any(len(v) < per_class for v in rows.values()):
        s = make_scene(seed, i)
        if len(rows[s.label]) < per_class:
            rows[s.label].append(s)
        i += 1
    big, pad = max(sizes), 4
    cell = sum(sizes) + pad * len(sizes)
    sheet = np.full((len(CLASSES) * (big + pad), per_class * cell, 3), 255, np.uint8)
    for c, scenes in rows.items():
        for k, size in enumerate(sizes):
            for j, pixels in enumerate(to_uint8(render(scenes, size))):
                x0 = j * cell + sum(sizes[:k]) + pad * k
                sheet[c * (big + pad): c * (big + pad) + size, x0: x0 + size] = pixels
    Image.fromarray(sheet).save(path)
    return Path(path)


if __name__ == "__main__":
    import sys

    out = contact_sheet(sys.argv[1] if len(sys.argv) > 1 else "toy_scenes.png")
    print(f"wrote {out}: rows = {', '.join(CLASSES)}")
