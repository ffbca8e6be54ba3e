"""Time and peak memory of `swin-convert remap official timm` on a Swin-L-size checkpoint.

Swin-L 384 / window 12 with a 21841-class head: 197M parameters, 929 MB in fp32. Every
command runs in its own process (times include interpreter and imports, as a user sees
them); ratios are against baselines measured in the same run:

* torch.load + safetensors.save_file of the same .pth (the cheapest "convert" there is);
* timm's own path: create_model + checkpoint_filter_fn + load_state_dict + save_file;
* cp of the safetensors file (the floor for a safetensors -> safetensors remap);
* the same remap without ``--dtype bf16`` (the fp32 output), for the bf16 rows.

Usage: python benchmarks/remap.py [--workdir DIR] [--repeat N] [--only KEY,KEY]
(keys: base, timm, pth_folder, cp, st_folder, st_file, pth_file, st_folder_bf16, pth_folder_bf16)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import compile_package, generate, measure_all, paired, table

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


def cases(work: Path, pth: Path, st: Path) -> list[tuple[str, str, list, Path]]:
    """(key, label, argv, output) of every row; each output is removed (and synced) before its run."""
    remap = CLI + ["remap", "official", "timm"]
    o = {k: work / k for k in ("b.safetensors", "t.safetensors", "o1", "copy.safetensors", "o2", "o3.safetensors",
                               "o4.safetensors", "o5", "o6")}
    return [
        ("base", "torch.load + save_file (.pth)  [baseline]", [PY, "-c", BASELINE, str(pth), str(o["b.safetensors"])],
         o["b.safetensors"]),
        ("timm", "timm: create_model + filter + load + save", [PY, "-c", TIMM_PATH, str(pth), str(o["t.safetensors"])],
         o["t.safetensors"]),
        ("pth_folder", "swin-convert remap official timm  .pth -> folder", remap + [str(pth), "-o", str(o["o1"])], o["o1"]),
        ("cp", "cp .safetensors", ["cp", str(st), str(o["copy.safetensors"])], o["copy.safetensors"]),
        ("st_folder", "swin-convert remap official timm  .safetensors -> folder", remap + [str(st), "-o", str(o["o2"])],
         o["o2"]),
        ("st_file", "swin-convert remap official timm  .safetensors -> file",
         remap + [str(st), "-o", str(o["o3.safetensors"])], o["o3.safetensors"]),
        ("pth_file", "swin-convert remap official timm  .pth -> file", remap + [str(pth), "-o", str(o["o4.safetensors"])],
         o["o4.safetensors"]),
        ("st_folder_bf16", "  the same, .safetensors -> folder --dtype bf16",
         remap + [str(st), "-o", str(o["o5"]), "--dtype", "bf16"], o["o5"]),
        ("pth_folder_bf16", "  the same, .pth -> folder --dtype bf16", remap + [str(pth), "-o", str(o["o6"]), "--dtype", "bf16"],
         o["o6"]),
    ]


RATIOS = [  # (label, numerator, denominator, target)
    (".pth remap / torch.load+save_file", "pth_folder", "base", "<= 1.0"),
    ("timm path / .pth remap", "timm", "pth_folder", ">= 3"),
    ("safetensors remap / cp", "st_folder", "cp", "<= 2"),
    (".safetensors -> file / cp", "st_file", "cp", "<= 2"),
    (".pth -> file / cp", "pth_file", "cp", "<= 2"),
    (".pth -> folder / cp", "pth_folder", "cp", ""),
    (".safetensors -> folder / file", "st_folder", "st_file", "a file is no slower than a folder"),
    ("bf16 / fp32 (.safetensors -> folder)", "st_folder_bf16", "st_folder", "< 1.0"),
    ("bf16 / fp32 (.pth -> folder)", "pth_folder_bf16", "pth_folder", "< 1.0"),
]


def run(work: Path, repeat: int, only: set | None = None, skip_runtimes: bool = False) -> None:
    compile_package()
    pth, st = work / "swin_l.pth", work / "swin_l.safetensors"
    if not (pth.is_file() and st.is_file()):     # a --workdir of an earlier run keeps them
        pth, st = generate(work)
    else:
        subprocess.run(["cat", str(pth), str(st)], stdout=subprocess.DEVNULL, check=True)
    size_mb = st.stat().st_size / 2 ** 20
    picked = [c for c in cases(work, pth, st) if (only is None or c[0] in only)
              and not (skip_runtimes and c[0] in ("base", "timm"))]
    rounds: dict = {}
    rows = measure_all([(name, cmd, out) for _, name, cmd, out in picked], repeat, warm=(pth, st), rounds=rounds)
    secs = {key: row[1] for (key, *_), row in zip(picked, rows)}
    every = {key: rounds[name] for key, name, *_ in picked}
    rss = {key: row[2] for (key, *_), row in zip(picked, rows)}
    base = secs.get("base") or next(iter(secs.values()))
    print(f"Swin-L 384 w12, 21841 classes: {size_mb:.0f} MB fp32; median of {repeat} run(s); page cache warm\n")
    print(table(rows, base, size_mb))
    print()
    print(f"{'ratio':<38}   paired   medians  fastest")
    for label, num, den, target in RATIOS:
        if num in secs and den in secs:
            p, m, f = paired(every[num], every[den])
            print(f"{label:<38} = {p:6.2f}  {m:7.2f}  {f:7.2f}" + (f"  (target {target})" if target else ""))
    print("\npaired: median of the round-by-round ratios; fastest: fastest run / fastest run")
    for key in ("pth_folder", "st_folder", "st_folder_bf16", "pth_folder_bf16"):
        if key in rss:
            print(f"peak RSS / file size ({key}){'':<{20 - len(key)}} = {rss[key] / size_mb:.2f}  (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", default=None, help="comma-separated row keys (default: every row)")
    parser.add_argument("--skip-runtimes", action="store_true",
                        help="Leave out the torch.load and timm paths (the slow ones).")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.repeat, set(args.only.split(",")) if args.only else None, args.skip_runtimes)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
