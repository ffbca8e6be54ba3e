"""Top-1/top-5 of a checkpoint on an image folder, with timm's eval transform and validate.py's log."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..core.checkpoint import CanonicalCheckpoint
from ..errors import UsageError
from .dist import Dist, current_dist, reduce_max, reduce_sum, resolve_device, shard_indices
from .report import AccuracyReport, Progress, _NoProgress
from .runtimes import build_runtime, resolve_runtimes
from .running import (DTYPES, RunOptions, _check_dtype, _data_stats, _positive, _sync, _to_device, image_hw,
                      load_checkpoint, precision, prepare)


# ----------------------------------------------------------------------------------------
# accuracy on an image folder
# ----------------------------------------------------------------------------------------
def eval_data_config(ckpt: CanonicalCheckpoint, *, crop_pct: float | None = None, interpolation: str | None = None,
                     mean=None, std=None) -> dict:
    """The checkpoint's eval preprocessing (swin_convert.writing.data_config), flags override."""
    cfg = _data_stats(ckpt)
    for key, value in (("crop_pct", crop_pct), ("interpolation", interpolation), ("mean", mean), ("std", std)):
        if value is not None:
            cfg[key] = value
    cfg["mean"], cfg["std"] = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    cfg["input_size"] = (ckpt.spec.in_chans, *image_hw(ckpt.spec.img_size))
    return cfg


def data_config_lines(cfg: dict) -> list[str]:
    """timm's ``resolve_data_config(verbose=True)`` block."""
    lines = ["Data processing configuration for current model + dataset:"]
    for key in ("input_size", "interpolation", "mean", "std", "crop_pct"):
        lines.append(f"\t{key}: {cfg[key]}")
    lines.append("\tcrop_mode: center")
    return lines


@dataclass
class _Meter:
    """Running Acc@1/Acc@5 and batch time, as timm's AverageMeter."""

    correct1: float = 0.0
    correct5: float = 0.0
    count: int = 0
    seconds: float = 0.0
    batches: int = 0

    def update(self, c1: float, c5: float, n: int, seconds: float) -> None:
        self.correct1, self.correct5, self.count = self.correct1 + c1, self.correct5 + c5, self.count + n
        self.seconds, self.batches = self.seconds + seconds, self.batches + 1


def evaluate_accuracy(candidate, data: str | Path, *, labels: str | Path | None = None, runtime: str = "reference",
                      device: str = "auto", dtype: str = "fp32", batch_size: int = 32, workers: int | None = None,
                      crop_pct: float | None = None, interpolation: str | None = None, mean=None, std=None,
                      log_freq: int = 10, compile: bool = False, channels_last: bool = False,
                      on_log: Callable[[str], None] | None = None, progress: Progress | None = None) -> AccuracyReport:
    """Top-1/top-5 of the candidate on an image folder, with timm's eval transform.

    Args:
        candidate: A path, Hub id, URL or CanonicalCheckpoint.
        data: An ImageFolder tree, or a flat folder with ``labels``.
        labels: File of ``filename label`` lines for a flat folder.
        runtime: reference, timm or transformers.
        crop_pct, interpolation, mean, std: Override the checkpoint's data config.
        log_freq: A ``Test: [...]`` line every this many batches (through ``on_log``).
        on_log: Receives the header, progress and result lines (timm validate.py's wording).

    Returns:
        The accuracy report (under torchrun: over every rank's share).
    """
    from . import imagedata
    ckpt = load_checkpoint(candidate)
    if not ckpt.spec.num_classes:
        raise UsageError("--data needs a model with a classification head; this one has none.", option="--data")
    opts = RunOptions(resolve_device(device), _check_dtype(dtype), _positive(batch_size, "--batch-size"),
                      channels_last, compile)
    cfg = eval_data_config(ckpt, crop_pct=crop_pct, interpolation=interpolation, mean=mean, std=std)
    samples = imagedata.find_samples(data, labels)
    _check_labels(samples, ckpt.spec.num_classes)
    d, log = current_dist(), on_log or (lambda line: None)
    loader = _make_loader(samples, cfg, image_hw(ckpt.spec.img_size)[0], opts.batch_size, workers, d)
    model = prepare(_runtime_or_raise(runtime, ckpt), opts)
    _log_header(log, ckpt, opts, cfg)
    meter = _accumulate(model, loader, cfg["input_size"], opts, log, max(1, log_freq), progress or _NoProgress())
    c1, c5, count = reduce_sum([meter.correct1, meter.correct5, meter.count], d)
    seconds = reduce_max(meter.seconds, d)
    report = AccuracyReport(ckpt.source, 100 * c1 / count, 100 * c5 / count, int(count), ckpt.num_params,
                            ckpt.spec.img_size, cfg["crop_pct"], cfg["interpolation"], cfg["mean"], cfg["std"],
                            runtime, opts.device, opts.dtype, count / seconds if seconds else 0.0, str(data))
    log(report.summary())
    return report


def _check_labels(samples, num_classes: int) -> None:
    bad = [lab for lab in samples.labels if not 0 <= lab < num_classes]
    if bad:
        raise UsageError(f"The data has class index {max(bad, key=abs)} but the model has {num_classes} classes.",
                         "Class subfolders must be named 0..K-1 or be at most K folders; check --labels.")


def _make_loader(samples, cfg: dict, img_size: int, batch_size: int, workers: int | None, d: Dist):
    from . import imagedata
    transform = imagedata.EvalTransform(img_size, float(cfg["crop_pct"]), cfg["interpolation"], cfg["mean"], cfg["std"])
    dataset = imagedata.ImageDataset(samples, transform, shard_indices(len(samples), d.rank, d.world))
    workers = imagedata.default_workers() if workers is None else max(0, int(workers))
    return imagedata.make_loader(dataset, batch_size, workers)


def _runtime_or_raise(runtime: str, ckpt: CanonicalCheckpoint) -> nn.Module:
    names, _ = resolve_runtimes([runtime], ckpt.spec)
    with tempfile.TemporaryDirectory(prefix="swin-convert-acc-") as workdir:
        return build_runtime(names[0], ckpt, "logits", Path(workdir))


def _log_header(log, ckpt: CanonicalCheckpoint, opts: RunOptions, cfg: dict) -> None:
    log(f"Model {ckpt.source} created, param count: {ckpt.num_params}")
    if opts.dtype == "fp32":
        log("Validating in float32. AMP not enabled.")
    else:
        log(f"Validating in mixed precision with native PyTorch AMP ({DTYPES[opts.dtype]}).")
    for line in data_config_lines(cfg):
        log(line)


@torch.inference_mode()
def _accumulate(model, loader, input_size: tuple, opts: RunOptions, log, log_freq: int, progress) -> _Meter:
    meter, total = _Meter(), len(loader)
    advance = progress.task("evaluating images", total)
    with precision(opts.device, opts.dtype):
        model(_to_device(torch.zeros((1,) + tuple(input_size)), opts))   # warm-up, as validate.py
        _sync(opts.device)
        end = time.perf_counter()
        for i, (images, target) in enumerate(loader):
            logits = model(_to_device(images, opts)).float().cpu()
            c1, c5 = _correct(logits, target)
            _sync(opts.device)
            now = time.perf_counter()
            meter.update(c1, c5, len(target), now - end)
            if i % log_freq == 0:
                log(_test_line(i, total, meter, c1, c5, len(target), now - end))
            end = now
            advance(1)
    return meter


def _correct(logits: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    k = min(5, logits.shape[1])
    top = logits.topk(k, 1).indices
    hit = top == target[:, None]
    return float(hit[:, :1].any(1).sum()), float(hit.any(1).sum())


def _test_line(i: int, total: int, m: _Meter, c1: float, c5: float, n: int, seconds: float) -> str:
    avg = m.seconds / m.batches
    return (f"Test: [{i:>4d}/{total}]  Time: {seconds:.3f}s ({avg:.3f}s, {n / avg:>7.2f}/s)  "
            f"Acc@1: {100 * c1 / n:>7.3f} ({100 * m.correct1 / m.count:>7.3f})  "
            f"Acc@5: {100 * c5 / n:>7.3f} ({100 * m.correct5 / m.count:>7.3f})")


