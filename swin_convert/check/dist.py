"""torchrun: each rank takes every world-th sample, results are gathered."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from ..errors import UsageError


def _world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 outside one)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_dist() -> Dist:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


@contextlib.contextmanager
def distributed(device: str = "auto"):
    """Under torchrun (WORLD_SIZE > 1), join the process group for the block (nccl on CUDA, gloo on CPU).

    Yields:
        The :class:`Dist` of this process.
    """
    import torch.distributed as dist
    if _world() <= 1 or dist.is_initialized():
        yield current_dist()
        return
    device = resolve_device(device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    try:
        yield current_dist()
    finally:
        dist.destroy_process_group()


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """The samples of ``rank``: every ``world``-th one from ``rank`` (no padding, unlike DistributedSampler,
    so every sample counts exactly once)."""
    return list(range(rank, n, world))


def unshard(parts: list, n: int) -> torch.Tensor:
    """Inverse of shard_indices: per-rank row blocks (rank order) -> the rows in sample order."""
    world = len(parts)
    out = torch.empty((n,) + tuple(parts[0].shape[1:]), dtype=parts[0].dtype)
    for rank, part in enumerate(parts):
        out[rank::world] = part
    return out


def gather_rows(local: torch.Tensor, n: int, d: Dist) -> torch.Tensor:
    """Every rank's rows of a sharded (n, ...) tensor, in sample order, on every rank."""
    if d.world == 1:
        return local
    return unshard(_all_objects(local.cpu(), d), n)


def reduce_sum(values: list, d: Dist) -> list:
    """Element-wise sum over ranks of a list of numbers (object collectives: gloo and nccl alike)."""
    return [sum(col) for col in zip(*_all_objects(list(values), d))]


def reduce_max(value: float, d: Dist) -> float:
    return max(_all_objects(float(value), d))


def _all_objects(obj, d: Dist) -> list:
    if d.world == 1:
        return [obj]
    import torch.distributed as dist
    parts = [None] * d.world
    dist.all_gather_object(parts, obj)
    return parts


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; under torchrun, this rank's GPU."""
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"Unknown device '{device}'.", "Use auto, cpu or cuda.", option="--device")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available.", "Use --device cpu or auto.",
                         option="--device")
    if device == "cuda" and _world() > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device
