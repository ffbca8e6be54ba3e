"""Benchmark `swin-convert upscale` on a Swin-L-size checkpoint (time and peak memory).

Generates an official-layout Swin V1 (or, with ``--version 2``, V2) large checkpoint (embed 192, depths 2,2,18,2, heads
6,12,24,48, window 12, 384 px, 21841-class head: ~929 MB fp32) as .pth and .safetensors
with swin_convert's own writer, then runs, each in a fresh process:

* baseline: ``torch.load`` + ``safetensors.torch.save_file`` of the .pth (what a user
  would do by hand to merely re-save the file), and the same from the .safetensors;
* ``swin-convert upscale SRC --window 24 --res 768 -o OUT.safetensors`` from each file;
* ``python -c 'import torch'``: the RSS floor of any process that imports torch (V1 table
  resizes do; V2 transfers do not).

Peak RSS is measured by a small wrapper process around each run
(``resource.getrusage(RUSAGE_CHILDREN)``), so runs do not see each other's peaks. Inputs
are freshly written, so reads come from the page cache in every run alike; before each run
the previous output is deleted and dirty pages are flushed (``os.sync``), so no run pays
for another's write-back. Runs are interleaved and repeated; the table shows the median
time and the largest peak RSS.

    .venv/bin/python benchmarks/upscale.py [--version 1|2] [--res 768] [--window 24] [--repeat 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.families.swin.shapes import canonical_shapes  # noqa: E402
from swin_convert.families import get_layout  # noqa: E402
from swin_convert.families.swin.spec import SwinSpec  # noqa: E402
from swin_convert.core.tensors import ArraySource  # noqa: E402
from swin_convert.api import save as _save


def write(ckpt, layout, out, **kw):
    return _save(ckpt, layout.name, out, **kw)  # noqa: E402

LARGE = SwinSpec(version=1, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=(12,) * 4,
                 img_size=384, num_classes=21841)
LARGE_V2 = LARGE.replace(version=2, pretrained_window_sizes=(0,) * 4)

# Runs the command given as JSON argv, then prints its wall time and peak RSS (KiB) as JSON.
WRAPPER = r"""
import json, resource, subprocess, sys, time
argv = json.loads(sys.argv[1])
start = time.perf_counter()
done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "rc": done.returncode, "stderr": done.stderr[-2000:]}))
"""

BASELINE = r"""
import sys, torch
from safetensors.torch import load_file, save_file
src, out = sys.argv[1], sys.argv[2]
if src.endswith(".pth"):
    state = torch.load(src, map_location="cpu", weights_only=True)["model"]
else:
    state = load_file(src)
save_file({k: v.contiguous() for k, v in state.items()}, out)
"""


def generate(folder: Path, spec: SwinSpec) -> dict[str, Path]:
    """Write the Swin-L checkpoint as .safetensors and .pth (seeded random values)."""
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in canonical_shapes(spec).items():
        scale = 0.02 if len(shape) > 1 else 0.1
        tensors[name] = ArraySource((rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32))
    ckpt = CanonicalCheckpoint(spec, tensors, source="benchmark", source_layout="official")
    stem = f"swin{'v2' if spec.version == 2 else ''}_large_w12_384"
    paths = {"safetensors": folder / f"{stem}.safetensors", "pth": folder / f"{stem}.pth"}
    for path in paths.values():
        write(ckpt, get_layout("official"), path, overwrite=True)
    return paths


def measure(argv: list[str], out: Path) -> dict:
    """Run ``argv`` under the wrapper: wall seconds and peak RSS of that process tree's largest child."""
    out.unlink(missing_ok=True)
    os.sync()
    done = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(argv)], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result['stderr']}")
    out.unlink(missing_ok=True)
    return result


def runs(paths: dict[str, Path], folder: Path, window: int, res: int) -> list[tuple[str, list[str], Path]]:
    """(label, argv, output path) of every measured run; the first is the baseline."""
    py, cli = sys.executable, str(ROOT / "cli.py")
    flags = ["--window", str(window), "--res", str(res)]
    out = {k: folder / f"{k}.safetensors" for k in ("base_pth", "base_st", "up_pth", "up_st")}
    return [
        ("baseline torch.load+save_file (.pth)", [py, "-c", BASELINE, str(paths["pth"]), str(out["base_pth"])],
         out["base_pth"]),
        ("baseline load_file+save_file (.st)", [py, "-c", BASELINE, str(paths["safetensors"]), str(out["base_st"])],
         out["base_st"]),
        ("upscale from .pth", [py, cli, "upscale", str(paths["pth"]), *flags, "-o", str(out["up_pth"])],
         out["up_pth"]),
        ("upscale from .safetensors", [py, cli, "upscale", str(paths["safetensors"]), *flags, "-o",
                                       str(out["up_st"])], out["up_st"]),
        ("(floor) python -c 'import torch'", [py, "-c", "import torch"], folder / "none"),
    ]


def report(results: dict[str, list[dict]], file_size: int, title: str) -> None:
    seconds = {name: statistics.median(r["seconds"] for r in rs) for name, rs in results.items()}
    base = next(iter(seconds.values()))
    print(f"\n{title}, {file_size / 2 ** 20:.0f} MiB ({file_size / 1e6:.0f} MB); "
          "targets: upscale time <= 1.0x baseline, peak RSS < file size")
    print(f"{'run':40s} {'seconds':>8s} {'peak RSS MB':>12s} {'time/baseline':>14s} {'RSS/file':>9s}")
    for name, rs in results.items():
        rss = max(r["peak_kib"] for r in rs) * 1024
        print(f"{name:40s} {seconds[name]:8.2f} {rss / 1e6:12.0f} {seconds[name] / base:14.2f} "
              f"{rss / file_size:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--res", type=int, default=768)
    parser.add_argument("--version", type=int, choices=(1, 2), default=1, help="Swin V1 (default) or V2.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each command (median time reported).")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep the input files.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="swin_convert_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        spec = LARGE if args.version == 1 else LARGE_V2
        paths = generate(folder, spec)
        size = paths["pth"].stat().st_size
        print(f"generated {paths['pth'].name} ({size / 2 ** 20:.0f} MiB) and "
              f"{paths['safetensors'].name} ({paths['safetensors'].stat().st_size / 2 ** 20:.0f} MiB) in {folder}")
        plan = runs(paths, folder, args.window, args.res)
        results: dict[str, list[dict]] = {name: [] for name, _, _ in plan}
        for _ in range(args.repeat):          # interleaved: drift hits every command alike
            for name, argv, out in plan:
                results[name].append(measure(argv, out))
        report(results, size, f"Swin-L V{args.version} official, window 12/384 px -> {args.window}/{args.res} px")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
