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
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import compile_package, generate, measure_all, table

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


def run(work: Path, repeat: int, skip_runtimes: bool = False) -> None:
    compile_package()
    pth, st = work / "swin_l.pth", work / "swin_l.safetensors"
    if not (pth.is_file() and st.is_file()):     # a --workdir of an earlier run keeps them
        pth, st = generate(work)
    else:
        subprocess.run(["cat", str(pth), str(st)], stdout=subprocess.DEVNULL, check=True)
    size_mb = st.stat().st_size / 2 ** 20
    out = {k: work / k for k in ("b.safetensors", "t.safetensors", "o1", "copy.safetensors", "o2", "o3.safetensors",
                                 "o4.safetensors")}
    remap = CLI + ["remap", "official", "timm"]
    cases = [
        ("torch.load + save_file (.pth)  [baseline]", [PY, "-c", BASELINE, str(pth), str(out["b.safetensors"])],
         out["b.safetensors"]),
        ("timm: create_model + filter + load + save", [PY, "-c", TIMM_PATH, str(pth), str(out["t.safetensors"])],
         out["t.safetensors"]),
        ("swin-convert remap official timm  .pth -> folder", remap + [str(pth), "-o", str(out["o1"])], out["o1"]),
        ("cp .safetensors", ["cp", str(st), str(out["copy.safetensors"])], out["copy.safetensors"]),
        ("swin-convert remap official timm  .safetensors -> folder", remap + [str(st), "-o", str(out["o2"])],
         out["o2"]),
        ("swin-convert remap official timm  .safetensors -> file", remap + [str(st), "-o", str(out["o3.safetensors"])],
         out["o3.safetensors"]),
        ("swin-convert remap official timm  .pth -> file", remap + [str(pth), "-o", str(out["o4.safetensors"])],
         out["o4.safetensors"]),
    ]
    if skip_runtimes:     # only the commands with targets against cp
        cases = cases[2:]
    rows = measure_all(cases, repeat)
    if skip_runtimes:
        rows[0:0] = [("torch.load + save_file (.pth)  [baseline]", float("nan"), float("nan")),
                     ("timm: create_model + filter + load + save", float("nan"), float("nan"))]
    base, timm_s, ours_pth, cp_s, ours_st, ours_st_file, ours_pth_file = (r[1] for r in rows)
    print(f"Swin-L 384 w12, 21841 classes: {size_mb:.0f} MB fp32; median of {repeat} run(s); page cache warm\n")
    print(table(rows, base, size_mb))
    print(f"\n.pth remap / torch.load+save_file = {ours_pth / base:.2f}  (target <= 1.0)")
    print(f"timm path / .pth remap            = {timm_s / ours_pth:.2f}  (target >= 3)")
    print(f"safetensors remap / cp            = {ours_st / cp_s:.2f}  (target <= 2)")
    print(f".safetensors -> file / cp         = {ours_st_file / cp_s:.2f}  (target <= 2)")
    print(f".pth -> file / cp                 = {ours_pth_file / cp_s:.2f}  (target <= 2)")
    print(f".pth -> folder / cp               = {ours_pth / cp_s:.2f}")
    print(f"peak RSS / file size (.pth, .st)  = {rows[2][2] / size_mb:.2f}, {rows[4][2] / size_mb:.2f}  (target <= 0.5)")
    print(f".safetensors -> folder / file     = {ours_st / ours_st_file:.2f}  (a file is no slower than a folder)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-runtimes", action="store_true",
                        help="Leave out the torch.load and timm paths (the slow ones).")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.repeat, args.skip_runtimes)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
