"""Offline demo of the core job: build a small Swin checkpoint, remap it official -> timm -> hf,
inspect each, and print how closely every runtime's logits agree; then the same for a tiny ViT
(timm -> hf -> torchvision -> timm, bit-identical) and a ViT upscale with its check; then a tiny
CSWin: official release format -> segmentation backbone -> back, a 224 -> 384 transfer (new stripe
widths, no tensor changes) and what it refuses.

Runs the real `swin-convert` CLI in subprocesses, exactly as a user would, in ./demo-out/remap/.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "demo-out" / "remap"


def cli(*args, check: bool = True) -> None:
    cmd = [sys.executable, str(ROOT / "cli.py"), *map(str, args)]
    print(f"\n$ swin-convert {' '.join(map(str, args))}", flush=True)
    subprocess.run(cmd, check=check)


def build_cswin(path: Path) -> None:
    """A tiny random CSWin (every tensor re-drawn) in the official release format {'state_dict_ema': ...}."""
    import torch
    from swin_convert.families.cswin.reference import CSWinReference
    from swin_convert.families.cswin.spec import CSWinSpec
    spec = CSWinSpec(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(2, 4, 8, 16), split_size=(1, 2, 7, 7),
                     img_size=224, num_classes=10)
    g = torch.Generator().manual_seed(7)
    def is_norm_weight(k, v):
        return v.dim() == 1 and k.endswith("weight") and ("norm" in k or k == "stage1_conv_embed.2.weight")
    state = {k: float(is_norm_weight(k, v)) + 0.2 * torch.randn(v.shape, generator=g)
             for k, v in CSWinReference(spec).state_dict().items()}
    torch.save({"state_dict_ema": state}, path)


def cswin_demo() -> None:
    src = OUT / "cswin_tiny_224.pth"
    build_cswin(src)
    heads = ("--heads", "2,4,8,16")      # official files do not record heads; embed 16 is no official model
    print(f"\n=== CSWin: built {src.relative_to(ROOT)} (release format, EMA weights) ===")
    cli("inspect", src, *heads)
    cli("remap", "official", "seg", src, *heads, "-o", OUT / "cswin-seg.safetensors")
    cli("remap", "seg", "official", OUT / "cswin-seg.safetensors", "-o", OUT / "cswin-back.pth")
    cli("upscale", src, *heads, "--res", "384", "-o", OUT / "cswin-384")
    cli("check", OUT / "cswin-384", "--against", src, *heads, "--num-samples", "4")
    print("\n(refused on purpose: the 224 split kept at 384 does not divide the stage-3 map)")
    cli("upscale", src, *heads, "--res", "384", "--split", "1,2,7,7", "-o", OUT / "cswin-bad.pth", check=False)


def build_source(path: Path, version: int) -> None:
    """A random Swin (every tensor re-drawn) written in the official layout."""
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.families import get_layout
    from swin_convert.families.swin.spec import SwinSpec
    from swin_convert.core.tensors import TorchSource
    from swin_convert.families.swin.testing import random_reference
    from swin_convert.api import save as _save

    def write(ckpt, layout, out, **kw):
        return _save(ckpt, layout.name, out, **kw)
    spec = SwinSpec(version=version, embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=(4, 4, 4),
                    img_size=64, num_classes=10)
    model = random_reference(spec, seed=version)
    write(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}),
          get_layout("official"), path)


def build_vit(path: Path) -> None:
    """A random tiny ViT (every tensor re-drawn, pos-embed included) written in timm's layout."""
    import torch

    from swin_convert.api import save
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import TorchSource
    from swin_convert.families.vit.shapes import canonical_shapes
    from swin_convert.families.vit.spec import ViTSpec
    spec = ViTSpec(embed_dim=128, depth=2, num_heads=2, img_size=32, patch_size=8, num_classes=10)
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, shape in canonical_shapes(spec).items():
        t = torch.randn(shape, generator=g)
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
            t = 1 + 0.2 * t
        elif len(shape) >= 2 and shape[0] != 1:
            t = t / (torch.tensor(shape[1:]).prod().float().sqrt())
        else:
            t = 0.5 * t if len(shape) >= 2 else 0.1 * t
        tensors[name] = TorchSource(t.contiguous())
    save(CanonicalCheckpoint(spec, tensors, source="demo", source_layout="timm", family="vit"), "timm", path,
         command="examples/remap_demo.py")


def vit_demo() -> None:
    src = OUT / "vit_tiny_timm.safetensors"
    build_vit(src)
    print(f"\n=== ViT: built {src.relative_to(ROOT)} ===")
    cli("inspect", src)
    cli("remap", "timm", "hf", src, "-o", OUT / "vit-hf")
    cli("remap", "hf", "torchvision", OUT / "vit-hf", "-o", OUT / "vit-tv")
    cli("remap", "torchvision", "timm", OUT / "vit-tv", "-o", OUT / "vit-back.safetensors")
    from safetensors.numpy import load_file
    a, b = load_file(str(src)), load_file(str(OUT / "vit-back.safetensors"))
    same = a.keys() == b.keys() and all((a[k] == b[k]).all() and a[k].dtype == b[k].dtype for k in a)
    print(f"\ntimm -> hf -> torchvision -> timm: {len(a)} tensors, bit-identical: {same}")
    if not same:
        raise SystemExit("round trip changed the tensors")
    cli("check", OUT / "vit-tv", "--against", src, "--runtime", "all", "--num-samples", "8")
    cli("upscale", src, "--res", "48", "--method", "hf", "--to", "hf", "-o", OUT / "vit-hf-48")
    cli("inspect", OUT / "vit-hf-48")
    cli("check", OUT / "vit-hf-48", "--against", src, "--runtime", "all", "--num-samples", "8")


def main() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from _lock import exclusive
    with exclusive(OUT):
        _run()


def _run() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    for version in (1, 2):
        src = OUT / f"swin_v{version}_official.pth"
        build_source(src, version)
        print(f"\n=== Swin V{version}: built {src.relative_to(ROOT)} ===")
        cli("inspect", src)
        cli("remap", "official", "timm", src, "-o", OUT / f"v{version}-timm")
        cli("remap", "auto", "hf", OUT / f"v{version}-timm", "-o", OUT / f"v{version}-hf")
        cli("inspect", OUT / f"v{version}-hf")
        cli("check", OUT / f"v{version}-hf", "--against", src, "--runtime", "all", "--num-samples", "8")
    vit_demo()
    cswin_demo()
    print(f"\nDone: outputs in {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
