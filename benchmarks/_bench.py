"""Shared benchmark helpers: a Swin-L-size checkpoint generator and per-child time / peak RSS."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
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


def measure(cmd: list[str], env: dict | None = None, out: Path | None = None,
            warm: tuple = ()) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one command, run by a small wrapper process.

    ``out``: the command's output, removed first so every run (cp's too) writes a new file; the
    dirty pages of earlier runs are flushed first (``sync``, not timed), so no run pays for
    another's write-back. ``warm``: the inputs, read (not timed) before every run, so that reads
    come from a warm page cache in every run alike (these VMs reclaim cold page cache: kdamond).
    """
    if out is not None:
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
    for path in warm:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    os.sync()
    done = subprocess.run([sys.executable, "-S", "-c", _WRAPPER, json.dumps(cmd)], env=dict(os.environ, **(env or {})),
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    return result["seconds"], result["peak_kib"] / 1024


# Runs the command given as JSON argv and prints its wall time and peak RSS (KiB). A child's peak
# RSS starts at its parent's at fork (Linux keeps the high-water mark across fork and exec), so the
# measuring process, which has imported numpy and the package, must not be the command's parent.
_WRAPPER = r"""
import json, resource, subprocess, sys, time
argv = json.loads(sys.argv[1])
start = time.perf_counter()
rc = subprocess.run(argv, stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "rc": rc}))
"""


def compile_package() -> None:
    """Byte-compile the package as an install does (a checkout run with PYTHONDONTWRITEBYTECODE=1
    would otherwise compile every module from source in every measured run)."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "swin_convert")], check=True,
                   stdout=subprocess.DEVNULL)


def measure_all(cases: list[tuple], repeat: int, warm: tuple = (), rounds: dict | None = None
                ) -> list[tuple[str, float, float]]:
    """(name, median seconds, largest peak RSS MB) of each ``(name, argv, out)`` case; the cases run
    interleaved, ``repeat`` rounds, so drift in the machine's load hits every command alike.
    ``rounds``: filled with every run's seconds per case (for paired ratios, round by round)."""
    runs: dict[str, list] = {name: [] for name, *_ in cases}
    for _ in range(repeat):
        for name, cmd, out in cases:
            runs[name].append(measure(cmd, out=out, warm=warm))
    if rounds is not None:
        rounds.update({name: [r[0] for r in rs] for name, rs in runs.items()})
    return [(name, statistics.median(r[0] for r in rs), max(r[1] for r in rs)) for name, rs in runs.items()]


def paired(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """(median of the round-by-round ratios, ratio of the medians, ratio of the fastest runs).

    On these machines a run is now and then 5-30x slower for reasons outside it (the host's disk
    stalling write-back, the VM reclaiming page cache), in any command, cp's too. The ratio of the
    fastest runs is each command's own cost with the stalls out of the way; the other two say how
    a typical run compares."""
    ratios = [a / b for a, b in zip(num, den)]
    return statistics.median(ratios), statistics.median(num) / statistics.median(den), min(num) / min(den)


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
