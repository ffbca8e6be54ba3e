"""Shared benchmark helpers: a Swin-L-size checkpoint generator and per-child time / peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.families.swin.shapes import canonical_shapes  # noqa: E402
from swin_convert.families import get_layout  # noqa: E402
from swin_convert.families.swin.spec import SwinSpec  # noqa: E402
from swin_convert.core.tensors import ArraySource  # noqa: E402
from swin_convert.api import save as _save


def write(ckpt, layout, out, **kw):
    return _save(ckpt, layout.name, out, **kw)  # noqa: E402

SWIN_L_384 = SwinSpec(version=1, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                      window_size=(12, 12, 12, 12), img_size=384, num_classes=21841)


def make_checkpoint(spec: SwinSpec, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the same random official-layout checkpoint as .pth and .safetensors."""
    rng = np.random.default_rng(seed)
    tensors = {k: ArraySource(rng.standard_normal(s, dtype=np.float32) * 0.02) for k, s in canonical_shapes(spec).items()}
    ckpt = CanonicalCheckpoint(spec, tensors, source="benchmark", source_layout="official")
    pth, st = folder / "swin_l.pth", folder / "swin_l.safetensors"
    write(ckpt, get_layout("official"), pth)
    write(ckpt, get_layout("official"), st)
    return pth, st


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process, via wait4's own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss / 1024


def generate(folder: Path) -> tuple[Path, Path]:
    """Make the Swin-L checkpoint in a child process and warm the page cache with cat.

    The measuring process must stay small: Linux children inherit the parent's peak RSS
    across fork+exec, which would pollute every measurement.
    """
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; "
            f"from _bench import make_checkpoint, SWIN_L_384; make_checkpoint(SWIN_L_384, Path({str(folder)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True)
    pth, st = folder / "swin_l.pth", folder / "swin_l.safetensors"
    subprocess.run(["cat", str(pth), str(st)], stdout=subprocess.DEVNULL, check=True)
    return pth, st


def table(rows: list[tuple], baseline: float, size_mb: float) -> str:
    out = [f"| {'what':<52} | {'s':>6} | {'x base':>6} | {'peak RSS MB':>11} | {'RSS/file':>8} |",
           f"|{'-' * 54}|{'-' * 8}|{'-' * 8}|{'-' * 13}|{'-' * 10}|"]
    for name, secs, rss in rows:
        out.append(f"| {name:<52} | {secs:6.2f} | {secs / baseline:6.2f} | {rss:11.0f} | {rss / size_mb:8.2f} |")
    return "\n".join(out)
