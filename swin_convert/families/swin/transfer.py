"""Move a canonical checkpoint to a new window size and/or resolution (``swin-convert upscale``).

What changes, and how, follows the code that trained the released models:

* V1 relative position bias tables are resized per stage from the source window to the
  target window. ``bicubic`` reproduces microsoft/Swin-Transformer ``utils.load_pretrained``
  (``F.interpolate(mode='bicubic')``, ``align_corners=False``); ``geometric`` reproduces
  ``timm.layers.resize_rel_pos_bias_table`` (the BEiT geometric grid with timm's linear
  ``RegularGridInterpolator``), re-implemented here because timm is optional.
* V2 weights are window independent: nothing is resized. The spec records the pretrained
  windows the CPB coordinates are normalised by (official transfer semantics: the source
  windows), and every layout writer regenerates the coordinate tables, indices and masks.
* An absolute position embedding is resampled bicubically over the patch grid, as official.
* The head is kept, dropped, re-initialised to zeros (official, for a new class count) or
  reduced to a list of rows (ImageNet-22k -> 1k with upstream's ``data/map22kto1k.txt``).
* ``bake_cpb`` evaluates V2's ``16*sigmoid(cpb_mlp(coords))`` into static tables.

Tensors that do not change keep their lazy source objects, so a file-backed tensor still
reaches the output as a byte copy; only bias tables, the head and the position embedding are
ever materialised. torch is imported only where a tensor op is needed (V1 tables, the
position embedding, CPB baking, torch-backed inputs): importing it costs about a second and,
with CUDA wheels, 650-850 MB of RSS, which would dominate a V2 move or a head edit. The V1
resizes stay on torch on purpose: bit-identical results to ``F.interpolate`` cannot be had
elsewhere (its float32 kernel's rounding depends on the CPU build's FMA contraction).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...core.checkpoint import Assumptions, CanonicalCheckpoint
from ...core.tensors import ArraySource, FileSlice, TorchSource
from ...core.tensors import np_dtype as _np_dtype
from ...errors import UsageError
from . import geometry
from .geometry import clamp_windows, divisors, per_stage, pretrained_per_stage
from .shapes import canonical_shapes
from .spec import SwinSpec

if TYPE_CHECKING:
    import torch

METHODS = ("bicubic", "geometric")
IN22K_CLASSES = 21841
IN1K_CLASSES = 1000
MAP_22K_TO_1K = "map22kto1k.txt"
# timm's registered names for the released sizes (embed_dim, depths) -> size word
SIZE_NAMES = {(96, (2, 2, 6, 2)): "tiny", (96, (2, 2, 18, 2)): "small", (128, (2, 2, 18, 2)): "base",
              (192, (2, 2, 18, 2)): "large"}
TABLE = "attn.relative_position_bias_table"


@dataclass(frozen=True)
class TransferRequest:
    """What ``upscale`` should change; every field left at its default keeps the source's value.

    Attributes:
        window: Configured window, one value or one per stage; each stage is clamped by the
            official rule (a map not larger than the window uses the map, with no shift).
        img_size: New image size (None keeps the source's).
        method: V1 table resize, ``bicubic`` (official) or ``geometric`` (timm).
        pretrained_window: V2 pretrained windows to record, one or one per stage; ``(0,)`` =
            stretch (coordinates normalised by each stage's own new window).
        num_classes: New class count; 0 drops the head, another count re-initialises it to zeros.
        map_22k_to_1k: Keep the 1000 ImageNet-1k rows of a 21841-class head.
        head_map: File of head rows to keep (one integer per line, ``#`` comments).
        bake_cpb: V2: evaluate the CPB MLP into static bias tables (inference only).
    """

    window: tuple[int, ...] | None = None
    img_size: int | None = None
    method: str = "bicubic"
    pretrained_window: tuple[int, ...] | None = None
    num_classes: int | None = None
    map_22k_to_1k: bool = False
    head_map: Path | None = None
    bake_cpb: bool = False

    @property
    def changes_head(self) -> bool:
        return self.num_classes is not None or self.map_22k_to_1k or self.head_map is not None

    @property
    def is_empty(self) -> bool:
        return (self.window is None and self.img_size is None and self.pretrained_window is None
                and not self.changes_head and not self.bake_cpb)


@dataclass
class TransferResult:
    """The moved checkpoint plus what the CLI prints and records about the move."""

    checkpoint: CanonicalCheckpoint
    source_spec: SwinSpec
    summary: list[str]
    card_info: dict
    metadata: dict[str, str]
    suggested_name: str


# ----------------------------------------------------------------------------------------
# planning: the target spec
# ----------------------------------------------------------------------------------------
def plan_geometry(spec: SwinSpec, request: TransferRequest) -> SwinSpec:
    """The spec the moved checkpoint will have (geometry, pretrained windows, head, baking).

    Args:
        spec: The source spec (windows per stage, already clamped).
        request: What to change.

    Returns:
        The validated target spec.

    Raises:
        UsageError: The request cannot be carried out (exit code 2); the hint lists what works.
    """
    return _plan(spec, request)[0]


def _plan(spec: SwinSpec, request: TransferRequest) -> tuple[SwinSpec, list[int] | None]:
    """(target spec, head rows to keep or None)."""
    _check_request(spec, request)
    img = _target_img_size(spec, request.img_size)
    windows = _target_windows(spec, img, _configured_windows(spec, request.window))
    rows = _head_rows(spec, request)
    target = spec.replace(img_size=img, window_size=windows, num_classes=_target_classes(spec, request, rows),
                          cpb_baked=spec.cpb_baked or request.bake_cpb)
    if spec.version == 2:
        target = target.replace(pretrained_window_sizes=_target_pretrained(spec, target, request))
        _check_baked_source(spec, target)
    return target.validate(), rows


def _check_request(spec: SwinSpec, request: TransferRequest) -> None:
    if request.is_empty:
        raise UsageError("Nothing to change: give --window, --res or a head option.",
                         "For example --window 24 --res 384, or --num-classes 0.")
    if request.method not in METHODS:
        raise UsageError(f"Unknown --method '{request.method}'.",
                         "Use bicubic (official load_pretrained) or geometric (timm).", option="--method")
    if spec.version == 1 and request.pretrained_window is not None:
        raise UsageError("--pretrained-window applies to Swin V2; this checkpoint is V1.",
                         "Drop it: V1 bias tables are resized instead (see --method).", option="--pretrained-window")
    if spec.version == 1 and request.bake_cpb:
        raise UsageError("--bake-cpb applies to Swin V2; this checkpoint is V1 and has no CPB MLP.",
                         "Drop --bake-cpb.", option="--bake-cpb")


def _pyramid(spec: SwinSpec) -> int:
    return geometry.pyramid(spec.patch_size, spec.num_stages)


def _maps(spec: SwinSpec, img: int) -> tuple[int, ...]:
    return geometry.stage_maps(img, spec.patch_size, spec.num_stages)


def _target_img_size(spec: SwinSpec, requested: int | None) -> int:
    img = spec.img_size if requested is None else int(requested)
    error = geometry.img_size_error(img, spec.patch_size, spec.num_stages, f"--res {img}", "patch merges")
    if error:
        raise error
    return img


def _configured_windows(spec: SwinSpec, requested) -> tuple[int, ...]:
    """The windows before clamping: as requested, else the source's own.

    A source stage whose window equals its map may have been clamped (192 px / window 12 has
    a 6x6 last stage); its configured window is taken to be the largest window of the model,
    which is what the official single ``WINDOW_SIZE`` config gives.
    """
    if requested is not None:
        windows = per_stage(requested, spec.num_stages, "--window")
        if min(windows) <= 0:
            raise UsageError(f"--window values must be positive, got {list(requested)}.", option="--window")
        return windows
    largest = max(spec.window_size)
    return tuple(w if w < r else largest for w, r in zip(spec.window_size, spec.resolutions))


def _tiles(spec: SwinSpec, img: int, configured) -> bool:
    return geometry.tiles(_maps(spec, img), configured)


def _target_windows(spec: SwinSpec, img: int, configured: tuple[int, ...]) -> tuple[int, ...]:
    """Clamp per stage (official rule) and refuse windows that do not tile a map (no padding)."""
    maps = _maps(spec, img)
    windows = clamp_windows(maps, configured)
    for i, (r, w) in enumerate(zip(maps, windows)):
        if r % w:
            raise UsageError(f"Window {w} does not tile stage {i}'s {r}x{r} map at {img} px "
                             "(official Swin does not pad).", _window_hint(spec, img, configured, i))
    return windows


def _window_hint(spec: SwinSpec, img: int, configured: tuple[int, ...], stage: int) -> str:
    """Nearest resolutions that work for these windows, and nearest windows that work at img."""
    pyramid = _pyramid(spec)
    sizes = sorted(range(pyramid, 8 * max(img, pyramid) + 1, pyramid), key=lambda s: (abs(s - img), s))
    good_sizes = sorted([s for s in sizes if _tiles(spec, s, configured)][:2])
    if len(set(configured)) == 1:
        good = [w for w in range(1, _maps(spec, img)[0] + 1) if _tiles(spec, img, (w,) * spec.num_stages)]
        what = "every stage"
    else:
        good, what = divisors(_maps(spec, img)[stage]), f"stage {stage}"
    want = configured[stage]
    near = [w for w in good if w < want][-2:] + [w for w in good if w > want][:2]
    size_text = f"resolutions {good_sizes} fit window {_fmt_windows(configured)}; " if good_sizes else ""
    return f"{size_text}windows that tile {what} at {img} px: {near}."


def _fmt_windows(windows) -> str:
    return str(windows[0]) if len(set(windows)) == 1 else ",".join(map(str, windows))


def _target_pretrained(spec: SwinSpec, target: SwinSpec, request: TransferRequest) -> tuple[int, ...]:
    """Official semantics by default: coordinates keep the source's normalisation."""
    if request.pretrained_window is not None:
        return _requested_pretrained(target, request)[0]
    if target.window_size == spec.window_size:
        return spec.pretrained_window_sizes      # nothing moved: keep what was recorded (identity)
    return spec.effective_pretrained_windows()


def _requested_pretrained(target: SwinSpec, request: TransferRequest) -> tuple[tuple[int, ...], str | None]:
    """--pretrained-window per stage; one value is clamped per stage at its pretraining maps (geometry)."""
    return pretrained_per_stage(request.pretrained_window, img_size=target.img_size, patch_size=target.patch_size,
                                windows=target.window_size, flag="--pretrained-window")


def _check_baked_source(spec: SwinSpec, target: SwinSpec) -> None:
    """A baked table holds the CPB for one window only: it cannot be moved."""
    if spec.cpb_baked and (target.window_size != spec.window_size
                           or target.effective_pretrained_windows() != spec.effective_pretrained_windows()):
        raise UsageError("This V2 checkpoint's CPB is already baked into fixed tables, which cannot be "
                         "re-evaluated for new windows.", "Upscale the original (unbaked) checkpoint instead.")


# ----------------------------------------------------------------------------------------
# planning: the head
# ----------------------------------------------------------------------------------------
def _head_rows(spec: SwinSpec, request: TransferRequest) -> list[int] | None:
    """Head rows to keep (None: no row selection)."""
    if request.map_22k_to_1k and request.head_map is not None:
        raise UsageError("--map-22k-to-1k and --head-map both choose head rows.", "Give only one of them.",
                         option="--head-map")
    if request.map_22k_to_1k:
        if spec.num_classes != IN22K_CLASSES:
            raise UsageError(f"--map-22k-to-1k needs a {IN22K_CLASSES}-class ImageNet-22k head; this checkpoint "
                             f"has {spec.num_classes} classes.", "Use --head-map FILE for other heads.")
        return load_22k_to_1k_rows()
    if request.head_map is None:
        return None
    if not spec.num_classes:
        raise UsageError("--head-map selects head rows, but this checkpoint has no head.", "Drop --head-map.",
                         option="--head-map")
    return _check_rows(read_head_map(request.head_map), spec.num_classes, request.head_map)


def _target_classes(spec: SwinSpec, request: TransferRequest, rows) -> int:
    n = request.num_classes
    if n is not None and n < 0:
        raise UsageError(f"--num-classes must be 0 or more, got {n}.", "Use 0 to drop the head.",
                         option="--num-classes")
    if rows is None:
        return spec.num_classes if n is None else n
    if n not in (None, len(rows)):
        raise UsageError(f"--num-classes {n} disagrees with the {len(rows)} head rows kept.", "Drop --num-classes.",
                         option="--num-classes")
    return len(rows)


def load_22k_to_1k_rows() -> list[int]:
    """The 1000 ImageNet-22k head rows of the ImageNet-1k classes (microsoft/Swin-Transformer).

    Returns:
        Row ``i`` of the 21841-class head that official ``load_pretrained`` uses for 1k class ``i``.
    """
    text = resources.files("swin_convert").joinpath("data", MAP_22K_TO_1K).read_text()
    rows = [int(line) for line in text.split() if not line.startswith("#")]
    if len(rows) != IN1K_CLASSES or len(set(rows)) != IN1K_CLASSES or not all(0 <= r < IN22K_CLASSES for r in rows):
        raise RuntimeError(f"swin_convert/data/{MAP_22K_TO_1K} is damaged: reinstall swin-convert.")
    return rows


def read_head_map(path: str | Path) -> list[int]:
    """Row indices from a text file: one integer per line, ``#`` starts a comment.

    Raises:
        UsageError: The file is missing, empty or holds something other than integers.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"Cannot read --head-map '{path}' ({type(e).__name__}).", "Check the path.",
                         option="--head-map") from None
    rows = []
    for number, line in enumerate(lines, 1):
        item = line.split("#", 1)[0].strip()
        if item:
            try:
                rows.append(int(item))
            except ValueError:
                raise UsageError(f"--head-map '{path}' line {number} is not a row index: '{item[:40]}'.",
                                 "Write one integer per line; '#' starts a comment.", option="--head-map") from None
    if not rows:
        raise UsageError(f"--head-map '{path}' lists no rows.", "Write one integer per line.", option="--head-map")
    return rows


def _check_rows(rows: list[int], classes: int, path) -> list[int]:
    bad = [r for r in rows if not 0 <= r < classes]
    if bad:
        raise UsageError(f"--head-map '{path}' names row {bad[0]}, outside the {classes}-class head.",
                         f"Rows must be in 0..{classes - 1}.")
    return rows


# ----------------------------------------------------------------------------------------
# pure tensor functions
# ----------------------------------------------------------------------------------------
def resize_rel_pos_bias_table(table: torch.Tensor, old_window: int, new_window: int,
                              method: str = "bicubic") -> torch.Tensor:
    """Resize a V1 ``((2W-1)^2, nH)`` relative position bias table to another square window.

    Args:
        table: The source table, rows ordered as ``relative_position_index`` reads them.
        old_window: The window the table was trained for.
        new_window: The window to resize to (larger or smaller).
        method: ``bicubic``: official ``utils.load_pretrained`` (bit-identical);
            ``geometric``: ``timm.layers.resize_rel_pos_bias_table`` (BEiT grid, linear).

    Returns:
        The ``((2*new_window-1)^2, nH)`` table in the source dtype (computed in float32);
        ``table`` itself when the windows are equal.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if table.ndim != 2 or table.shape[0] != (2 * old_window - 1) ** 2:
        raise ValueError(f"a window-{old_window} table has {(2 * old_window - 1) ** 2} rows, got {tuple(table.shape)}")
    if old_window == new_window:
        return table
    grid = table.float().t().reshape(table.shape[1], 2 * old_window - 1, 2 * old_window - 1)
    resize = _bicubic_grid if method == "bicubic" else _geometric_grid
    out = resize(grid, 2 * new_window - 1)
    return _dense(out.reshape(table.shape[1], -1).t().to(table.dtype))


def _dense(t: torch.Tensor) -> torch.Tensor:
    """A copy with row-major strides everywhere.

    ``contiguous()`` is not enough: a (L, 1) transpose is "contiguous" with a last stride of L,
    which ``torch_io.tensor_bytes`` (``view(torch.uint8)``) refuses.
    """
    import torch
    return torch.empty(t.shape, dtype=t.dtype).copy_(t)


def _bicubic_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(nH, S1, S1) -> (nH, S2, S2) exactly as official: bicubic, align_corners False, no antialias."""
    import torch.nn.functional as F
    return F.interpolate(grid.unsqueeze(0), size=(size, size), mode="bicubic", align_corners=False)[0]


def _geometric_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(nH, S1, S1) -> (nH, S2, S2) as timm 1.0.31 ``resize_rel_pos_bias_table`` does it.

    The source offsets are placed on a geometric progression (unilm BEiT
    ``run_class_finetuning.py``, commit 5255d52, L351) and read back at the integer offsets
    of the new window with timm's ``RegularGridInterpolator`` (linear on a non-uniform grid).
    Every float32 operation is kept in timm's order so the result matches it bit for bit.
    """
    import torch
    src = torch.tensor(_geometric_positions(grid.shape[-1], size))
    half = size // 2.0
    dst = torch.arange(-half, half + 0.1, 1.0)
    ys, xs = torch.meshgrid(dst, dst, indexing="ij")
    (yl, yr), (dyl, dyr), ny = _bracket(src, ys)
    (xl, xr), (dxl, dxr), nx = _bracket(src, xs)
    num = 0.0
    for iy, wy in ((yl, dyr), (yr, dyl)):          # timm: product([0, 1], repeat=2), y outer
        for ix, wx in ((xl, dxr), (xr, dxl)):
            num = num + grid[:, iy, ix] * (wy * wx)
    return num / (ny * nx)


def _geometric_positions(src: int, dst: int) -> list[float]:
    """Source offsets ``-cumsum(q^i) .. 0 .. cumsum(q^i)`` with q bisected so the grid spans dst."""
    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src // 2)) / (1.0 - q) > dst // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    return [-d for d in reversed(dis)] + [0] + dis


def _bracket(points: torch.Tensor, x: torch.Tensor):
    """timm RegularGridInterpolator, one axis: (left, right) indices, distances, their sum."""
    import torch
    right = torch.bucketize(x.contiguous(), points)
    right[right >= points.shape[0]] = points.shape[0] - 1
    left = (right - 1).clamp(0, points.shape[0] - 1)
    dist_left, dist_right = x - points[left], points[right] - x
    dist_left[dist_left < 0] = 0.0
    dist_right[dist_right < 0] = 0.0
    both = (dist_left == 0) & (dist_right == 0)
    dist_left[both] = dist_right[both] = 1.0
    return (left, right), (dist_left, dist_right), dist_left + dist_right


def resize_abs_pos_embed(embed: torch.Tensor, new_grid: int) -> torch.Tensor:
    """(1, S1*S1, C) -> (1, S2*S2, C), bicubic over the patch grid as official ``load_pretrained``."""
    import torch.nn.functional as F
    _, length, channels = embed.shape
    old = int(round(length ** 0.5))
    if old == new_grid:
        return embed
    grid = embed.float().reshape(1, old, old, channels).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    return _dense(out.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, channels).to(embed.dtype))


def bake_cpb_table(cpb: dict[str, torch.Tensor], window: int, pretrained_window: int, heads: int) -> torch.Tensor:
    """``16*sigmoid(cpb_mlp(coords))`` as a ``((2W-1)^2, nH)`` table, as official V2 evaluates it.

    Args:
        cpb: ``{"0.weight", "0.bias", "2.weight"}`` of one block's ``attn.cpb_mlp``.
        window: The block's (clamped) window.
        pretrained_window: The window the coordinates are normalised by (0 = ``window``).
        heads: Number of heads.
    """
    import torch
    import torch.nn.functional as F
    coords = torch.from_numpy(geometry.relative_coords_table(window, pretrained_window))
    hidden = F.relu(F.linear(coords, cpb["0.weight"].float(), cpb["0.bias"].float()))
    table = F.linear(hidden, cpb["2.weight"].float()).view(-1, heads)
    return _dense((16 * torch.sigmoid(table)).to(cpb["2.weight"].dtype))


# ----------------------------------------------------------------------------------------
# the transfer
# ----------------------------------------------------------------------------------------
def upscale_checkpoint(ckpt: CanonicalCheckpoint, request: TransferRequest) -> TransferResult:
    """Move ``ckpt`` to the geometry and head ``request`` asks for.

    Args:
        ckpt: The source checkpoint (lazy tensors).
        request: What to change.

    Returns:
        The moved checkpoint (untouched tensors keep their source objects), what to print,
        and what to record in the model card and safetensors metadata.

    Raises:
        UsageError: The request cannot be carried out (exit code 2).
    """
    before = ckpt.spec
    after, rows = _plan(before, request)
    tensors = dict(ckpt.tensors)
    if before.version == 1:
        _resize_tables(tensors, before, after, request.method)
    if before.ape and after.img_size != before.img_size:
        _resize_ape(tensors, after)
    _apply_head(tensors, before, after, rows)
    if after.cpb_baked and not before.cpb_baked:
        _bake_cpb(tensors, after)
    out = _checkpoint(ckpt, after, tensors, rows)
    name = suggested_name(before, after, request)
    info = _card_info(before, after, request, name)
    return TransferResult(out, before, _summary(before, after, request, rows, name), info,
                          _metadata(before, after, info), name)


def _resize_tables(tensors: dict, before: SwinSpec, after: SwinSpec, method: str) -> None:
    for s, (old, new) in enumerate(zip(before.window_size, after.window_size)):
        if old == new:
            continue
        for b in range(before.depths[s]):
            key = f"layers.{s}.blocks.{b}.{TABLE}"
            tensors[key] = TorchSource(resize_rel_pos_bias_table(_torch(tensors[key]), old, new, method))


def _resize_ape(tensors: dict, after: SwinSpec) -> None:
    key = "absolute_pos_embed"
    tensors[key] = TorchSource(resize_abs_pos_embed(_torch(tensors[key]), after.img_size // after.patch_size))


def _apply_head(tensors: dict, before: SwinSpec, after: SwinSpec, rows) -> None:
    """Keep, drop, select rows of, or re-initialise (official: zeros) the classifier."""
    if rows is None and after.num_classes == before.num_classes:
        return
    weight, bias = tensors.pop("head.weight", None), tensors.pop("head.bias", None)
    if not after.num_classes:
        return
    if rows is not None:
        tensors["head.weight"], tensors["head.bias"] = _select_rows(weight, rows), _select_rows(bias, rows)
        return
    like = tensors["norm.weight"]   # the new head takes the checkpoint's dtype
    tensors["head.weight"] = _zeros(like, (after.num_classes, after.num_features))
    tensors["head.bias"] = _zeros(like, (after.num_classes,))


def _torch(source) -> torch.Tensor:
    from ...core.torch_io import to_torch
    return to_torch(source)


def _mapped(source) -> np.ndarray | None:
    """A file range (memory-mapped) or array as numpy; None when it needs torch (BF16/F8, torch tensors).

    Mapping, rather than reading, means selecting 1000 rows of a 21841-class head (134 MB in
    Swin-L) touches only those rows' pages.
    """
    if isinstance(source, ArraySource):
        return source.array
    np_dtype = _np_dtype(source.dtype) if isinstance(source, FileSlice) and source.shape else None
    if np_dtype is None:
        return None
    return np.memmap(source.path, dtype=np_dtype, mode="r", offset=source.offset, shape=source.shape)


def _select_rows(source, rows: list[int]):
    """Rows of a head tensor, as a new (small) in-memory source; numpy where torch is not needed."""
    array = _mapped(source)
    if array is not None:
        return ArraySource(np.array(array[rows]))     # a plain in-memory copy, unmapped
    import torch
    return TorchSource(_dense(_torch(source).index_select(0, torch.tensor(rows, dtype=torch.long))))


def _zeros(like, shape: tuple[int, ...]):
    np_dtype = _np_dtype(like.dtype)
    if np_dtype is not None:
        return ArraySource(np.zeros(shape, dtype=np_dtype))
    import torch
    return TorchSource(torch.zeros(shape, dtype=_torch(like).dtype))


def _bake_cpb(tensors: dict, after: SwinSpec) -> None:
    for s in range(after.num_stages):
        window, pretrained = after.window_size[s], after.pretrained_window_sizes[s]
        for b in range(after.depths[s]):
            p = f"layers.{s}.blocks.{b}.attn."
            cpb = {k: _torch(tensors.pop(f"{p}cpb_mlp.{k}")) for k in ("0.weight", "0.bias", "2.weight")}
            table = bake_cpb_table(cpb, window, pretrained, after.num_heads[s])
            tensors[p + "relative_position_bias_table"] = TorchSource(table)


def _checkpoint(ckpt: CanonicalCheckpoint, spec: SwinSpec, tensors: dict, rows) -> CanonicalCheckpoint:
    """The output checkpoint in canonical order; provenance and input paths carried over."""
    shapes = canonical_shapes(spec)
    wrong = [k for k in shapes if k not in tensors or tuple(tensors[k].shape) != shapes[k]]
    extra = [k for k in tensors if k not in shapes]
    if wrong or extra:  # a bug here, not a user error: say exactly what
        raise RuntimeError(f"transfer produced a checkpoint that does not fit its spec: {(wrong + extra)[:3]}")
    out = CanonicalCheckpoint(spec, {k: tensors[k] for k in shapes}, ckpt.source, ckpt.source_layout,
                              Assumptions(list(ckpt.assumptions.notes)), dict(ckpt.metadata),
                              _config_with_labels(ckpt.config, rows), ckpt.origin)
    if hasattr(ckpt, "input_paths"):   # writing refuses to overwrite these
        out.input_paths = list(ckpt.input_paths)
    return out


def _config_with_labels(config: dict | None, rows) -> dict | None:
    """The source config with its label names reduced to the kept head rows (where it has any)."""
    if not config or rows is None:
        return config
    config = dict(config)
    pre = config.get("pretrained_cfg")
    if isinstance(pre, dict) and isinstance(pre.get("label_names"), list):
        names = pre["label_names"]
        if max(rows) < len(names):
            config["pretrained_cfg"] = {**pre, "label_names": [names[r] for r in rows]}
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and all(str(r) in id2label for r in rows):
        names = [id2label[str(r)] for r in rows]
        config["id2label"] = {str(i): n for i, n in enumerate(names)}
        config["label2id"] = {n: i for i, n in enumerate(names)}
    return config


# ----------------------------------------------------------------------------------------
# naming and reporting
# ----------------------------------------------------------------------------------------
def suggested_name(before: SwinSpec, after: SwinSpec, request: TransferRequest | None = None) -> str:
    """timm-style name: ``swin_large_patch4_window12to24_384to768``, ``swinv2_tiny_window8to16_256to512``."""
    size = SIZE_NAMES.get((after.embed_dim, after.depths),
                          f"e{after.embed_dim}d{'-'.join(map(str, after.depths))}")
    window = _span(max(before.window_size), max(after.window_size))
    res = _span(before.img_size, after.img_size)
    name = f"swinv2_{size}_window{window}_{res}" if after.version == 2 else \
        f"swin_{size}_patch{after.patch_size}_window{window}_{res}"
    if request is not None and request.map_22k_to_1k:
        name += "_22kto1k"          # official config naming, e.g. ..._192to384_22kto1k_ft
    return name


def _span(old: int, new: int) -> str:
    return str(new) if old == new else f"{old}to{new}"


def _method(before: SwinSpec, after: SwinSpec, request: TransferRequest) -> str | None:
    """What happened to the position bias (None: nothing)."""
    if after.cpb_baked and not before.cpb_baked:
        return "CPB baked"
    if before.version == 2:
        moved = (after.window_size, after.effective_pretrained_windows()) != \
            (before.window_size, before.effective_pretrained_windows())
        return "CPB re-evaluated" if moved else None
    return request.method if after.window_size != before.window_size else None


def _card_info(before: SwinSpec, after: SwinSpec, request: TransferRequest, name: str) -> dict:
    return {"windows_before": list(before.window_size), "windows_after": list(after.window_size),
            "img_size_before": before.img_size, "img_size_after": after.img_size,
            "method": _method(before, after, request),
            "pretrained_window_sizes": list(after.pretrained_window_sizes) if after.version == 2 else None,
            "suggested_name": name}


def _metadata(before: SwinSpec, after: SwinSpec, info: dict) -> dict[str, str]:
    meta = {"transfer_method": info["method"] or "none",
            "windows_before": ",".join(map(str, before.window_size)), "img_size_before": str(before.img_size),
            "windows_after": ",".join(map(str, after.window_size)), "img_size_after": str(after.img_size),
            "num_classes_before": str(before.num_classes), "suggested_name": info["suggested_name"]}
    if after.version == 2:
        meta["pretrained_window_sizes"] = ",".join(map(str, after.pretrained_window_sizes))
    return meta


def _summary(before: SwinSpec, after: SwinSpec, request: TransferRequest, rows, name: str) -> list[str]:
    lines = [_bias_line(before, after, request)]
    if before.ape and after.img_size != before.img_size:
        g0, g1 = before.img_size // before.patch_size, after.img_size // after.patch_size
        lines.append(f"absolute position embedding: bicubic {g0}x{g0} -> {g1}x{g1} patches (official)")
    lines.append(_head_line(before, after, request, rows))
    if after.cpb_baked and not before.cpb_baked:
        lines.append("CPB baked into static bias tables: inference only, loadable by the official layout "
                     "and swin-convert's reference (not timm or transformers)")
    lines.append(f"suggested name: {name}")
    return lines


def _bias_line(before: SwinSpec, after: SwinSpec, request: TransferRequest) -> str:
    if before.version == 2:
        return _cpb_line(before, after, request)
    changed = [f"{s}: {a}->{b}" for s, (a, b) in enumerate(zip(before.window_size, after.window_size)) if a != b]
    if not changed:
        return "bias tables: unchanged (same windows)"
    origin = "official utils.load_pretrained" if request.method == "bicubic" else "timm resize_rel_pos_bias_table"
    return f"bias tables: {request.method} resize ({origin}), stage {', '.join(changed)}"


def _cpb_line(before: SwinSpec, after: SwinSpec, request: TransferRequest) -> str:
    windows = list(after.pretrained_window_sizes)
    if request.pretrained_window is not None:
        how = _requested_pretrained(after, request)[1]
        why = ("stretch: each stage's own window" if not any(windows) else
               f"one window {request.pretrained_window[0]}, clamped per stage {how}" if how else "as given")
    elif after.window_size == before.window_size:
        why = "unchanged"
    else:
        why = "official transfer semantics: the source windows"
    return f"CPB MLP weights unchanged; coordinates normalised by pretrained windows {windows} ({why})"


def _head_line(before: SwinSpec, after: SwinSpec, request: TransferRequest, rows) -> str:
    if rows is not None and request.map_22k_to_1k:
        return (f"head: ImageNet-22k -> 1k, kept {len(rows)} of {before.num_classes} rows "
                "(microsoft/Swin-Transformer data/map22kto1k.txt)")
    if rows is not None:
        return f"head: kept {len(rows)} of {before.num_classes} rows listed in {request.head_map}"
    if after.num_classes == before.num_classes:
        return f"head: kept ({after.num_classes} classes)" if after.num_classes else "head: none"
    if not after.num_classes:
        return f"head: dropped (was {before.num_classes} classes)"
    return f"head: new zero-initialised {after.num_classes}-class head, as official (fine-tune before use)"


__all__ = ["TransferRequest", "TransferResult", "plan_geometry", "upscale_checkpoint", "resize_rel_pos_bias_table",
           "resize_abs_pos_embed", "bake_cpb_table", "suggested_name", "read_head_map", "load_22k_to_1k_rows"]
