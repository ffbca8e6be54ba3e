"""Time and peak memory of `swin-convert remap official timm` on a Swin-L-size checkpoint.

Swin-L 384 / window 12 with a 21841-class head: 197M parameters, 929 MB in fp32. Every
command runs in its own process (times include interpreter and imports, as a user sees
them); ratios are against baselines measured in the same run:

* torch.load + safetensors.save_file of the same .pth (the cheapest "convert" there is);
* timm's own path: create_model + checkpoint_filter_fn + load_state_dict + save_file;
* cp of the safetensors file (the floor for a safetensors -> safetensors remap).

Usage: python benchmarks/remap.py [--workdir DIR] [--repeat N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _bench import generate, measure, table

PY = sys.executable
CLI = [PY, str(Path(__file__).resolve().parents[1] / "cli.py")]

BASELINE = """
import sys, torch
from safetensors.torch import save_file
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)["model"]
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2], metadata={"format": "pt"})
"""

TIMM_PATH = """
import sys, torch, timm
from safetensors.torch import save_file
from timm.models.swin_transformer import checkpoint_filter_fn
model = timm.create_model("swin_large_patch4_window12_384", pretrained=False, num_classes=21841)
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[2], metadata={"format": "pt"})
"""


def run(work: Path, repeat: int) -> None:
    pth, st = generate(work)
    size_mb = st.stat().st_size / 2 ** 20
    cases = [
        ("torch.load + save_file (.pth)  [baseline]", [PY, "-c", BASELINE, str(pth), str(work / "b.safetensors")]),
        ("timm: create_model + filter + load + save", [PY, "-c", TIMM_PATH, str(pth), str(work / "t.safetensors")]),
        ("swin-convert remap official timm  .pth -> folder", CLI + ["remap", "official", "timm", str(pth), "-o",
                                                                   str(work / "o1"), "--overwrite"]),
        ("cp .safetensors", ["cp", str(st), str(work / "copy.safetensors")]),
        ("swin-convert remap official timm  .safetensors -> folder", CLI + ["remap", "official", "timm", str(st),
                                                                           "-o", str(work / "o2"), "--overwrite"]),
        ("swin-convert remap official timm  .safetensors -> file", CLI + ["remap", "official", "timm", str(st),
                                                                         "-o", str(work / "o3.safetensors"),
                                                                         "--overwrite"]),
        ("swin-convert remap official timm  .pth -> file", CLI + ["remap", "official", "timm", str(pth), "-o",
                                                                 str(work / "o4.safetensors"), "--overwrite"]),
    ]
    rows = []
    for name, cmd in cases:
        runs = [measure(cmd) for _ in range(repeat)]
        rows.append((name, statistics.median(r[0] for r in runs), max(r[1] for r in runs)))
    base, timm_s, ours_pth, cp_s, ours_st, ours_st_file, ours_pth_file = (r[1] for r in rows)
    print(f"Swin-L 384 w12, 21841 classes: {size_mb:.0f} MB fp32; median of {repeat} run(s); page cache warm\n")
    print(table(rows, base, size_mb))
    print(f"\n.pth remap / torch.load+save_file = {ours_pth / base:.2f}  (target <= 1.0)")
    print(f"timm path / .pth remap            = {timm_s / ours_pth:.2f}  (target >= 3)")
    print(f"safetensors remap / cp            = {ours_st / cp_s:.2f}  (target <= 2)")
    print(f".safetensors -> file / cp         = {ours_st_file / cp_s:.2f}  (target <= 2)")
    print(f".pth -> file / cp                 = {ours_pth_file / cp_s:.2f}  (target <= 2)")
    print(f"peak RSS / file size (.pth, .st)  = {rows[2][2] / size_mb:.2f}, {rows[4][2] / size_mb:.2f}  (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.repeat)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
