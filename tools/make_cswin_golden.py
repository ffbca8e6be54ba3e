"""Write tests/data/cswin_golden.safetensors from the official CSWin code.

    python tools/make_cswin_golden.py OFFICIAL_CHECKOUT_DIR [--out tests/data/cswin_golden.safetensors]

OFFICIAL_CHECKOUT_DIR is a checkout of microsoft/CSWin-Transformer (models/cswin.py and
segmentation/backbone/cswin_transformer.py are imported unmodified). Needs torch and timm (the
official files import DropPath / trunc_normal_ / register_model from it); einops is used if
installed, else a stand-in for the one ``Rearrange('b c h w -> b (h w) c', h=, w=)`` pattern with
the same shape check. mmcv / mmseg imports of the seg file are satisfied by empty stand-ins.

The file holds a tiny CSWin (embed 8, depths [1,2,1,1], heads [2,4,8,16], 10 classes) with every
tensor re-drawn (seeded), one 384 px input stored as uint8 (x = u8 / 64 - 2, exact in fp32; the
224 input is its top-left crop), and the official outputs:

  logits_224      classification at 224 px, split [1,2,7,7]
  logits_384      classification at 384 px, split [1,2,12,12] (same weights)
  seg224.{0..3}   seg backbone features at 224, split [1,2,7,7]
  seg384p.{0..3}  seg backbone features at 384 with the 224 split [1,2,7,7] (zero-padded stripes)
  weights under   cls.<canonical name>; seg-only norms under seg.norm{1,2,3}.* (seg norm4 := cls norm)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import torch

EMBED, DEPTHS, HEADS, CLASSES = 8, [1, 2, 1, 1], [2, 4, 8, 16], 10
SEED = 20260112


def _install_stubs():
    try:
        import einops.layers.torch  # noqa: F401
        return "einops"
    except ImportError:
        pass

    class Rearrange(torch.nn.Module):
        def __init__(self, pattern, **sizes):
            super().__init__()
            assert pattern == "b c h w -> b (h w) c", pattern
            self.sizes = sizes

        def forward(self, x):
            b, c, h, w = x.shape
            if (h, w) != (self.sizes["h"], self.sizes["w"]):
                raise RuntimeError(f"Shape mismatch, {h} != {self.sizes['h']}")
            return x.flatten(2).transpose(1, 2)

    ein = types.ModuleType("einops")
    layers = types.ModuleType("einops.layers")
    lt = types.ModuleType("einops.layers.torch")
    lt.Rearrange = Rearrange
    ein.layers, layers.torch = layers, lt
    sys.modules.update({"einops": ein, "einops.layers": layers, "einops.layers.torch": lt})
    return "stand-in Rearrange"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_official(root: Path):
    how = _install_stubs()
    cls_mod = _load(root / "models" / "cswin.py", "cswin_official_cls")
    # seg file: `from mmcv_custom import load_checkpoint`, `from mmseg.utils import get_root_logger`,
    # `from ..builder import BACKBONES`
    mc = types.ModuleType("mmcv_custom")
    mc.load_checkpoint = lambda *a, **k: None
    mmseg, mmseg_utils = types.ModuleType("mmseg"), types.ModuleType("mmseg.utils")
    mmseg_utils.get_root_logger = lambda *a, **k: None
    mmseg.utils = mmseg_utils

    class _Registry:
        def register_module(self, *a, **k):
            return lambda cls: cls

    pkg, sub, builder = (types.ModuleType(n) for n in ("cswin_official_seg", "cswin_official_seg.backbone",
                                                        "cswin_official_seg.builder"))
    pkg.__path__, sub.__path__ = [], []
    builder.BACKBONES = _Registry()
    sys.modules.update({"mmcv_custom": mc, "mmseg": mmseg, "mmseg.utils": mmseg_utils, "cswin_official_seg": pkg,
                        "cswin_official_seg.backbone": sub, "cswin_official_seg.builder": builder})
    seg_mod = _load(root / "segmentation" / "backbone" / "cswin_transformer.py",
                    "cswin_official_seg.backbone.cswin_transformer")
    return cls_mod, seg_mod, how


def redraw(model: torch.nn.Module, gen: torch.Generator):
    """Every tensor re-drawn: LayerNorm weights around 1, biases ~0.1, weights ~1/sqrt(fan_in)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                is_norm_weight = name.endswith("weight")
                base = 1.0 if is_norm_weight else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in) * (1.5 if p.shape[1] == 1 else 1.0))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("official", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/cswin_golden.safetensors")
    ap.add_argument("--commit", default=None, help="official commit (default: git rev-parse in the checkout, if any)")
    args = ap.parse_args(argv)
    from safetensors.torch import save_file

    torch.manual_seed(0)
    cls_mod, seg_mod, how = load_official(args.official)
    commit = args.commit
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
        except Exception:
            commit = "unknown"

    def build_cls(img, split):
        return cls_mod.CSWinTransformer(img_size=img, patch_size=4, num_classes=CLASSES, embed_dim=EMBED,
                                        depth=DEPTHS, split_size=split, num_heads=HEADS, mlp_ratio=4.0).eval()

    gen = torch.Generator().manual_seed(SEED)
    m224 = build_cls(224, [1, 2, 7, 7])
    redraw(m224, gen)
    sd = {k: v.detach().clone() for k, v in m224.state_dict().items()}
    m384 = build_cls(384, [1, 2, 12, 12])
    m384.load_state_dict(sd, strict=True)

    seg = seg_mod.CSWin(img_size=224, patch_size=4, embed_dim=EMBED, depth=DEPTHS, split_size=[1, 2, 7, 7],
                        num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True).eval()
    seg_sd = seg.state_dict()
    seg_extra = {}
    for k in list(seg_sd):
        if k.startswith(("norm1.", "norm2.", "norm3.")):
            seg_extra[k] = (1.0 if k.endswith("weight") else 0.0) + 0.2 * torch.randn(seg_sd[k].shape, generator=gen)
    new_seg = {}
    for k in seg_sd:
        if k in seg_extra:
            new_seg[k] = seg_extra[k]
        elif k.startswith("norm4."):
            new_seg[k] = sd["norm." + k.split(".", 1)[1]]
        else:
            new_seg[k] = sd[k]
    seg.load_state_dict(new_seg, strict=True)
    seg_order = list(seg_sd)
    seg384 = seg_mod.CSWin(img_size=384, patch_size=4, embed_dim=EMBED, depth=DEPTHS, split_size=[1, 2, 7, 7],
                           num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True).eval()
    seg384.load_state_dict(new_seg, strict=True)

    u8 = torch.randint(0, 256, (1, 3, 384, 384), generator=gen, dtype=torch.uint8)
    x384 = u8.float() / 64 - 2
    x224 = x384[:, :, :224, :224].contiguous()
    with torch.no_grad():
        out = {"input_u8": u8, "logits_224": m224(x224), "logits_384": m384(x384)}
        for i, f in enumerate(seg(x224)):
            out[f"seg224.{i}"] = f
        for i, f in enumerate(seg384(x384)):
            out[f"seg384p.{i}"] = f
    for k, v in sd.items():
        out["cls." + k] = v
    for k, v in seg_extra.items():
        out["seg." + k] = v
    out = {k: v.contiguous() for k, v in out.items()}
    meta = {
        "official_repo": "microsoft/CSWin-Transformer", "official_commit": commit,
        "torch": torch.__version__, "rearrange": how, "seed": str(SEED),
        "spec": json.dumps({"embed_dim": EMBED, "depths": DEPTHS, "num_heads": HEADS, "split_size": [1, 2, 7, 7],
                            "img_size": 224, "mlp_ratio": 4.0, "qkv_bias": True, "num_classes": CLASSES,
                            "in_chans": 3}),
        "cls_key_order": json.dumps(list(sd)), "seg_key_order": json.dumps(seg_order),
        "input": "x384 = input_u8.float() / 64 - 2; x224 = x384[:, :, :224, :224]",
        "geometries": json.dumps({"logits_224": [224, [1, 2, 7, 7]], "logits_384": [384, [1, 2, 12, 12]],
                                  "seg224": [224, [1, 2, 7, 7]], "seg384p": [384, [1, 2, 7, 7]]}),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), {len(sd)} cls tensors, commit {commit}")
    for k in ("logits_224", "logits_384"):
        print(k, out[k].flatten()[:5].tolist(), "std", float(out[k].std()))


if __name__ == "__main__":
    main()
