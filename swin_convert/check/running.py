"""Running a model for a check: options, precision, batches, seeded inputs, and the few argument
checks that the logit check and the accuracy run share."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..core.checkpoint import CanonicalCheckpoint
from ..core.preprocess import data_config
from ..errors import UsageError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
INPUT_KINDS = ("normal", "uniform")


# ----------------------------------------------------------------------------------------
# running models
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """How a runtime runs: device, autocast dtype, batch size, memory format, compilation."""

    device: str = "cpu"
    dtype: str = "fp32"
    batch_size: int = 16
    channels_last: bool = False
    compile: bool = False


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise UsageError(f"Unknown dtype '{dtype}'.", f"Use one of: {', '.join(DTYPES)}.", option="--dtype")
    return dtype


@contextlib.contextmanager
def precision(device: str, dtype: str):
    """Autocast for bf16/fp16; for fp32 on CUDA, TF32 off so fp32 means fp32."""
    kind = torch.device(device).type
    if dtype != "fp32":
        with torch.autocast(device_type=kind, dtype=DTYPES[dtype]):
            yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def prepare(model: nn.Module, opts: RunOptions) -> nn.Module:
    """Move to the device (channels_last, torch.compile as asked)."""
    model = model.to(opts.device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if opts.compile else model


def _to_device(x: torch.Tensor, opts: RunOptions) -> torch.Tensor:
    x = x.to(opts.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if opts.channels_last else x


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def run_batches(model: nn.Module, x: torch.Tensor, opts: RunOptions, advance=None) -> tuple[torch.Tensor, float]:
    """(outputs as fp32 CPU, seconds spent in the model); one untimed warm-up batch first."""
    batches = [_to_device(b, opts) for b in x.split(opts.batch_size)] if len(x) else []
    outs = []
    with precision(opts.device, opts.dtype):
        if batches:
            model(batches[0])            # warm-up: compilation, cuDNN autotuning, lazy init
        _sync(opts.device)
        start = time.perf_counter()
        for b in batches:
            outs.append(model(b))
            (advance or (lambda n=1: None))(1)
        _sync(opts.device)
    seconds = time.perf_counter() - start if batches else 0.0
    return (torch.cat(outs).float().cpu() if outs else torch.empty(0)), seconds


def image_hw(size) -> tuple[int, int]:
    """(height, width) of an image size given as one side (Swin) or a pair (ViT)."""
    return (int(size[0]), int(size[1])) if isinstance(size, (tuple, list)) else (int(size), int(size))


def make_inputs(spec, num_samples: int, seed: int, kind: str = "normal", mean=None, std=None) -> torch.Tensor:
    """Seeded images: N(0, 1), or uniform pixels in [0, 1] normalised with mean/std."""
    if kind not in INPUT_KINDS:
        raise UsageError(f"Unknown input kind '{kind}'.", f"Use one of: {', '.join(INPUT_KINDS)}.", option="--inputs")
    g = torch.Generator().manual_seed(seed)
    shape = (num_samples, spec.in_chans, *image_hw(spec.img_size))
    if kind == "normal":
        return torch.randn(shape, generator=g)
    mean = torch.tensor(mean or (0.5,) * spec.in_chans).view(1, -1, 1, 1)
    std = torch.tensor(std or (0.5,) * spec.in_chans).view(1, -1, 1, 1)
    return (torch.rand(shape, generator=g) - mean) / std


def load_checkpoint(source) -> CanonicalCheckpoint:
    """A loaded checkpoint (``swin_convert.load``); paths are loaded by ``swin_convert.check``."""
    if isinstance(source, CanonicalCheckpoint):
        return source
    raise TypeError("swin_convert.check.engine takes loaded checkpoints; use swin_convert.check() for paths")



def _positive(value: int, flag: str) -> int:
    if value is None or value < 1:
        raise UsageError(f"{flag} must be at least 1, got {value}.", option=flag)
    return int(value)



def _data_stats(ckpt: CanonicalCheckpoint) -> dict:
    return data_config(ckpt)


