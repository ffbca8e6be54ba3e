"""Offline demo of the core job: build a small Swin checkpoint, remap it official -> timm -> hf,
inspect each, and print how closely every runtime's logits agree.

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


def cli(*args) -> None:
    cmd = [sys.executable, str(ROOT / "cli.py"), *map(str, args)]
    print(f"\n$ swin-convert {' '.join(map(str, args))}", flush=True)
    subprocess.run(cmd, check=True)


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


def main() -> None:
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
    print(f"\nDone: outputs in {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
