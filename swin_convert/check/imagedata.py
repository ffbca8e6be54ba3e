"""Image folders and the standard evaluation transform, for ``swin-convert check --data``.

The transform is timm's eval transform with ``crop_mode="center"``
(``timm.data.transforms_factory.transforms_imagenet_eval``): resize the shorter side to
``floor(img_size / crop_pct)`` with PIL, center-crop ``img_size`` (torchvision's rounding),
scale to [0, 1] and normalise. It is written with PIL and torch only, so torchvision stays an
optional extra; a test checks it against timm's transform pixel for pixel.

Pillow is the optional extra ``images``; torch and PIL are imported only when used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, SwinConvertError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff", ".gif")
INTERPOLATIONS = ("bicubic", "bilinear")


def require_pil():
    """Import PIL.Image, or say how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise SwinConvertError("Reading images needs Pillow, which is not installed.",
                               "pip install 'swin-convert[images]'") from None
    return Image


# ----------------------------------------------------------------------------------------
# finding samples
# ----------------------------------------------------------------------------------------
@dataclass
class ImageSamples:
    """Image paths with their class indices, and the class names (index order) when known."""

    paths: list
    labels: list
    classes: list
    root: Path

    def __len__(self) -> int:
        return len(self.paths)


def find_samples(root: str | Path, labels_file: str | Path | None = None) -> ImageSamples:
    """Samples of an ImageFolder tree, or of a flat folder described by a labels file.

    Args:
        root: A folder with one subfolder per class (sorted names give the class index;
            names that are all integers are used as the indices themselves), or a flat
            folder of images when ``labels_file`` is given.
        labels_file: Lines ``filename label`` (filename relative to ``root``, integer label).

    Returns:
        The samples, sorted by path.
    """
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"The data folder '{root}' does not exist or is not a folder.",
                            "Pass a folder with one subfolder of images per class, or a flat folder plus --labels.",
                            path=root)
    samples = _from_labels_file(root, Path(labels_file)) if labels_file else _from_class_folders(root)
    if not samples.paths:
        raise BadInputError(f"No images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) were found in '{root}'.",
                            "Check the path; class subfolders must hold the image files.", path=root)
    return samples


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _from_class_folders(root: Path) -> ImageSamples:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"'{root}' has no class subfolders.",
                         "Use an ImageFolder layout (root/<class>/<image>), or pass --labels FILE for a flat folder.")
    names = [p.name for p in folders]
    # folders named 0..999 (as ImageNet val is often unpacked) mean those class indices
    numeric = all(n.isdigit() for n in names)
    index = {n: int(n) if numeric else i for i, n in enumerate(names)}
    paths, labels = [], []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if _is_image(p)):
            paths.append(path)
            labels.append(index[folder.name])
    return ImageSamples(paths, labels, [] if numeric else names, root)


def _from_labels_file(root: Path, labels_file: Path) -> ImageSamples:
    if not labels_file.is_file():
        raise BadInputError(f"The labels file '{labels_file}' does not exist.", "Check the --labels path.",
                            path=labels_file)
    pairs = []
    for number, line in enumerate(labels_file.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            pairs.append(_parse_label_line(line, number, labels_file, root))
    pairs.sort(key=lambda pair: str(pair[0]))
    return ImageSamples([p for p, _ in pairs], [lab for _, lab in pairs], [], root)


def _parse_label_line(line: str, number: int, labels_file: Path, root: Path) -> tuple[Path, int]:
    parts = line.strip().rsplit(None, 1)
    name, label = (parts[0].strip(), parts[1]) if len(parts) == 2 else ("", "")
    if not name or not label.lstrip("-").isdigit():
        raise BadInputError(f"Line {number} of '{labels_file}' is not 'filename label': '{line.strip()}'.",
                            "Each line holds an image file name, a space and an integer class index.", path=labels_file)
    path = root / name
    if not path.is_file():
        raise BadInputError(f"Line {number} of '{labels_file}' names '{name}', which is not in '{root}'.",
                            "File names in the labels file are relative to the data folder.", path=labels_file)
    return path, int(label)


# ----------------------------------------------------------------------------------------
# the eval transform
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalTransform:
    """PIL image -> normalised (3, img_size, img_size) float tensor (timm's center-crop eval)."""

    img_size: int
    crop_pct: float
    interpolation: str
    mean: tuple
    std: tuple

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise UsageError(f"Interpolation '{self.interpolation}' is not supported.",
                             f"Use one of: {', '.join(INTERPOLATIONS)}.", option="--interpolation")
        if not 0 < self.crop_pct <= 1:
            raise UsageError(f"crop_pct must be in (0, 1], got {self.crop_pct}.", "For example --crop-pct 0.875.",
                             option="--crop-pct")

    @property
    def scale_size(self) -> int:
        return math.floor(self.img_size / self.crop_pct)

    def __call__(self, image):
        image = center_crop(resize_shorter(image, self.scale_size, self.interpolation), self.img_size)
        return normalize(to_tensor(image), self.mean, self.std)


def resize_shorter(image, size: int, interpolation: str):
    """Resize so the shorter side is ``size`` (torchvision's Resize(int) on a PIL image)."""
    Image = require_pil()
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) == (w, h):
        return image
    method = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
    return image.resize((new_w, new_h), method)


def center_crop(image, size: int):
    """The central ``size`` x ``size`` square (torchvision's rounding; the image is large enough)."""
    w, h = image.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def to_tensor(image):
    """RGB PIL image -> (3, H, W) float32 in [0, 1]."""
    import numpy as np
    import torch
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def normalize(tensor, mean, std):
    import torch
    mean = torch.tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std = torch.tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return (tensor - mean) / std


# ----------------------------------------------------------------------------------------
# dataset and loader
# ----------------------------------------------------------------------------------------
class ImageDataset:
    """Map-style dataset (what DataLoader needs: __len__ and __getitem__) of (image, label)."""

    def __init__(self, samples: ImageSamples, transform: EvalTransform, indices: list | None = None):
        self.samples, self.transform = samples, transform
        self.indices = list(range(len(samples))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = self.indices[i]
        path = self.samples.paths[j]
        Image = require_pil()
        try:
            with Image.open(path) as image:
                tensor = self.transform(image.convert("RGB"))
        except OSError as e:
            raise BadInputError(f"'{path}' cannot be read as an image ({e}).",
                                "Remove or replace the file.", path=path) from None
        return tensor, self.samples.labels[j]


def make_loader(dataset: ImageDataset, batch_size: int, workers: int):
    """A DataLoader decoding with ``workers`` processes (0: in this process)."""
    from torch.utils.data import DataLoader
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=False, persistent_workers=False)


def default_workers() -> int:
    import os
    return min(4, os.cpu_count() or 1)
