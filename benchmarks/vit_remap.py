"""Time and peak memory of `swin-convert remap timm hf` and `upscale --res 384` on a ViT-L/16 checkpoint.

ViT-L/16 at 224 px with a 1000-class head: 304M parameters, 1.2 GB in fp32, generated in place
as random tensors of the right shapes (no model is built to make it). Every command runs in its
own process (times include interpreter and imports, as a user sees them); ratios are against
baselines measured in the same run:

* cp of the safetensors file (the floor for a safetensors -> safetensors remap);
* torch.load + safetensors.save_file of the same .pth (the cheapest "convert" of a pickle);
* timm's own path: create_model + load_state_dict + save_file;
* transformers' own path: from_pretrained + save_pretrained of the hf folder;
* `python -c "import torch"` (what any torch-based upscale pays before its first tensor).

Usage: python benchmarks/vit_remap.py [--workdir DIR] [--repeat N]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import compile_package, measure_all, table

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
CLI = [PY, str(ROOT / "cli.py")]
VIT_L = dict(embed_dim=1024, depth=24, num_heads=16, img_size=224, patch_size=16, num_classes=1000)

GENERATE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
import numpy as np
from swin_convert.api import save
from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.core.tensors import ArraySource
from swin_convert.families.vit.shapes import canonical_shapes
from swin_convert.families.vit.spec import ViTSpec
spec = ViTSpec(**{VIT_L!r})
rng = np.random.default_rng(0)
tensors = {{k: ArraySource((rng.standard_normal(s, dtype=np.float32) * 0.02)) for k, s in canonical_shapes(spec).items()}}
ckpt = CanonicalCheckpoint(spec, tensors, source="benchmark", source_layout="timm", family="vit")
save(ckpt, "timm", Path(sys.argv[1]) / "vit_l.safetensors", command="benchmark")
save(ckpt, "timm", Path(sys.argv[1]) / "vit_l.pth", command="benchmark")
"""

BASELINE = """
import sys, torch
from safetensors.torch import save_file
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2], metadata={"format": "pt"})
"""

TIMM_PATH = """
import sys, torch, timm
from safetensors.torch import load_file, save_file
model = timm.create_model("vit_large_patch16_224", pretrained=False)
model.load_state_dict(load_file(sys.argv[1]), strict=True)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[2], metadata={"format": "pt"})
"""

HF_PATH = """
import sys
from transformers import AutoModelForImageClassification
AutoModelForImageClassification.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])
"""


def run(work: Path, repeat: int, skip_runtimes: bool = False) -> None:
    compile_package()
    st, pth = work / "vit_l.safetensors", work / "vit_l.pth"
    if not (st.is_file() and pth.is_file()):     # a --workdir of an earlier run keeps them
        subprocess.run([PY, "-c", GENERATE, str(work)], check=True)
    subprocess.run(["cat", str(pth), str(st)], stdout=subprocess.DEVNULL, check=True)   # warm the page cache
    size_mb = st.stat().st_size / 2 ** 20
    remap = CLI + ["remap", "timm", "hf"]
    out = {k: work / k for k in ("copy.safetensors", "h1", "b.safetensors", "h2", "t.safetensors", "hf-saved", "u")}
    cases = [
        ("cp .safetensors  [floor]", ["cp", str(st), str(out["copy.safetensors"])], out["copy.safetensors"]),
        ("swin-convert remap timm hf  .safetensors -> folder", remap + [str(st), "-o", str(out["h1"])], out["h1"]),
        ("torch.load + save_file (.pth)  [baseline]", [PY, "-c", BASELINE, str(pth), str(out["b.safetensors"])],
         out["b.safetensors"]),
        ("swin-convert remap timm hf  .pth -> folder", remap + [str(pth), "-o", str(out["h2"])], out["h2"]),
        ("timm: create_model + load_state_dict + save_file", [PY, "-c", TIMM_PATH, str(st),
                                                              str(out["t.safetensors"])], out["t.safetensors"]),
        ("transformers: from_pretrained + save_pretrained", [PY, "-c", HF_PATH, str(out["h1"]),
                                                             str(out["hf-saved"])], out["hf-saved"]),
        ('python -c "import torch"  [floor of a torch upscale]', [PY, "-c", "import torch"], None),
        ("swin-convert upscale  .safetensors --res 384 -> folder", CLI + ["upscale", str(st), "--res", "384", "-o",
                                                                          str(out["u"])], out["u"]),
    ]
    if skip_runtimes:     # only the commands with targets against cp and import torch
        cases = [c for c in cases if not c[0].startswith(("torch.load", "timm:", "transformers:"))]
    rows = measure_all(cases, repeat)
    if skip_runtimes:
        rows[2:2] = [("torch.load + save_file (.pth)  [baseline]", float("nan"), float("nan"))]
        rows[4:4] = [("timm: create_model + load_state_dict + save_file", float("nan"), float("nan")),
                     ("transformers: from_pretrained + save_pretrained", float("nan"), float("nan"))]
    secs = {name: s for name, s, _ in rows}
    cp_s, st_s, base, pth_s, timm_s, hf_s, torch_s, up_s = secs.values()
    print(f"ViT-L/16 224, 1000 classes: {size_mb:.0f} MB fp32; median of {repeat} run(s); page cache warm\n")
    print(table(rows, base, size_mb))
    print(f"\nsafetensors remap / cp                = {st_s / cp_s:.2f}  (target <= 2)")
    print(f".pth remap / cp                       = {pth_s / cp_s:.2f}  (target <= 2)")
    print(f".pth remap / torch.load+save_file     = {pth_s / base:.2f}")
    print(f"timm path / safetensors remap         = {timm_s / st_s:.2f}")
    print(f"transformers path / safetensors remap = {hf_s / st_s:.2f}")
    print(f"upscale / import torch                = {up_s / torch_s:.2f}  (target <= 1.2)")
    print(f"peak RSS / file size (remap .st, .pth, upscale) = {rows[1][2] / size_mb:.2f}, "
          f"{rows[3][2] / size_mb:.2f}, {rows[7][2] / size_mb:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-runtimes", action="store_true",
                        help="Leave out the torch.load, timm and transformers paths (the slow ones).")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.repeat, args.skip_runtimes)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
