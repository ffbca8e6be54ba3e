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


def cases(work: Path, pth: Path, st: Path) -> list[tuple[str, str, list]]:
    remap = CLI + ["remap", "official", "timm"]
    return [
        ("base", "torch.load + save_file (.pth)  [baseline]", [PY, "-c", BASELINE, str(pth), str(work / "b.safetensors")]),
        ("timm", "timm: create_model + filter + load + save", [PY, "-c", TIMM_PATH, str(pth), str(work / "t.safetensors")]),
        ("pth_folder", "swin-convert remap official timm  .pth -> folder", remap + [str(pth), "-o", str(work / "o1"),
                                                                               "--overwrite"]),
        ("cp", "cp .safetensors", ["cp", str(st), str(work / "copy.safetensors")]),
        ("st_folder", "swin-convert remap official timm  .safetensors -> folder", remap + [str(st), "-o", str(work / "o2"),
                                                                                       "--overwrite"]),
        ("st_file", "swin-convert remap official timm  .safetensors -> file", remap + [str(st), "-o",
                                                                                   str(work / "o3.safetensors"),
                                                                                   "--overwrite"]),
        ("pth_file", "swin-convert remap official timm  .pth -> file", remap + [str(pth), "-o", str(work / "o4.safetensors"),
                                                                            "--overwrite"]),
        ("st_folder_bf16", "  the same, .safetensors -> folder --dtype bf16", remap + [str(st), "-o", str(work / "o5"),
                                                                                      "--overwrite", "--dtype", "bf16"]),
        ("pth_folder_bf16", "  the same, .pth -> folder --dtype bf16", remap + [str(pth), "-o", str(work / "o6"),
                                                                              "--overwrite", "--dtype", "bf16"]),
    ]


RATIOS = [  # (label, numerator, denominator, target)
    (".pth remap / torch.load+save_file", "pth_folder", "base", "<= 1.0"),
    ("timm path / .pth remap", "timm", "pth_folder", ">= 3"),
    ("safetensors remap / cp", "st_folder", "cp", "<= 2"),
    (".safetensors -> file / cp", "st_file", "cp", "<= 2"),
    (".pth -> file / cp", "pth_file", "cp", "<= 2"),
    ("bf16 / fp32 (.safetensors -> folder)", "st_folder_bf16", "st_folder", "< 1.0"),
    ("bf16 / fp32 (.pth -> folder)", "pth_folder_bf16", "pth_folder", "< 1.0"),
]


def run(work: Path, repeat: int, only: set | None = None) -> None:
    pth, st = generate(work)
    size_mb = st.stat().st_size / 2 ** 20
    picked = [c for c in cases(work, pth, st) if only is None or c[0] in only]
    rows, by_key = [], {}
    for rnd in range(repeat):      # paired: every command once per round, so drifts hit them all alike
        for key, name, cmd in picked:
            by_key.setdefault(key, []).append(measure(cmd))
    for key, name, _ in picked:
        runs = by_key[key]
        rows.append((name, statistics.median(r[0] for r in runs), max(r[1] for r in runs)))
    secs = {key: row[1] for (key, _, _), row in zip(picked, rows)}
    rss = {key: row[2] for (key, _, _), row in zip(picked, rows)}
    base = secs.get("base") or next(iter(secs.values()))
    print(f"Swin-L 384 w12, 21841 classes: {size_mb:.0f} MB fp32; median of {repeat} run(s); page cache warm\n")
    print(table(rows, base, size_mb))
    print()
    for label, num, den, target in RATIOS:
        if num in secs and den in secs:
            print(f"{label:<38} = {secs[num] / secs[den]:.2f}  (target {target})")
    for key in ("pth_folder", "st_folder", "st_folder_bf16", "pth_folder_bf16"):
        if key in rss:
            print(f"peak RSS / file size ({key}){'':<{20 - len(key)}} = {rss[key] / size_mb:.2f}  (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated row keys (default: every row)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.repeat, set(args.only.split(",")) if args.only else None)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
