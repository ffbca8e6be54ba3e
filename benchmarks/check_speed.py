"""Images/s of our reference forward vs timm's model on the same weights (what `check` runs).

    python benchmarks/check_speed.py                          # GPU: bf16 autocast, batch 128
    python benchmarks/check_speed.py --compile                # both models through torch.compile
    python benchmarks/check_speed.py --device cpu --batch-size 2 --iters 2   # smoke test
    python benchmarks/check_speed.py --calibrate              # bf16/fp16 noise vs corruptions

Models are Swin-T (embed 96, depths 2,2,6,2, heads 3,6,12,24) with random weights: V1 at
224/w7 and 384/w12, V2 at 256/w8 and 384/w24. Each timing is the median of ``--iters`` runs
after ``--warmup`` untimed ones, with torch.cuda.synchronize around every run.

``--calibrate`` measures how far bf16/fp16 autocast outputs of *correct* models stray from
the fp32 CPU ground truth, and how far *corrupted* ones do, as the smallest t such that
``|out - truth| <= t + t * |truth|`` holds (the check's rule with atol = rtol = t). The
check's reduced-precision default tolerances must sit between the two columns.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swin_convert.families import to_layout as from_canonical  # noqa: E402
from swin_convert.families import get_layout  # noqa: E402
from swin_convert.families.swin.spec import SwinSpec  # noqa: E402
from swin_convert.core.tensors import TorchSource  # noqa: E402
from swin_convert.families.swin.testing import random_reference  # noqa: E402
from swin_convert.core.torch_io import to_torch  # noqa: E402
from swin_convert.families.swin.layouts.timm import architecture as timm_architecture, model_args as timm_model_args  # noqa: E402

SWIN_T = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
CONFIGS = {
    "v1-224-w7": dict(version=1, img_size=224, window=7),
    "v1-384-w12": dict(version=1, img_size=384, window=12),
    "v2-256-w8": dict(version=2, img_size=256, window=8),
    "v2-384-w24": dict(version=2, img_size=384, window=24),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def swin_t(version: int, img_size: int, window: int, **kw) -> SwinSpec:
    maps = [img_size // 4 // 2 ** i for i in range(4)]
    base = dict(SWIN_T, version=version, img_size=img_size, window_size=[min(window, m) for m in maps])
    base.update(kw)
    return SwinSpec(**base).validate()


def timm_twin(spec: SwinSpec, reference: torch.nn.Module) -> torch.nn.Module:
    """timm's model of ``spec`` holding the reference model's weights (loaded strictly)."""
    import timm
    model = timm.create_model(timm_architecture(spec), pretrained=False, **timm_model_args(spec))
    state = {k: TorchSource(v) for k, v in reference.state_dict().items()}
    timm_state = {k: to_torch(v) for k, v in from_canonical(get_layout("timm"), spec, state).items()}
    model.load_state_dict(timm_state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------
# speed
# ----------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def images_per_s(model, x: torch.Tensor, dtype: str, iters: int, warmup: int) -> float:
    """Median images/s over ``iters`` timed forwards (after ``warmup`` untimed ones)."""
    device = str(x.device)
    times = []
    with torch.autocast(device_type=x.device.type, dtype=DTYPES[dtype], enabled=dtype != "fp32"):
        for i in range(warmup + iters):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return len(x) / statistics.median(times)


def prepare(model, args):
    model = model.to(args.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if args.compile else model


def bench_config(name: str, cfg: dict, args) -> dict:
    spec = swin_t(**cfg)
    ref = random_reference(spec, seed=0)
    timm_model = timm_twin(spec, ref)
    x = torch.randn(args.batch_size, 3, spec.img_size, spec.img_size, device=args.device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    row = {"config": name, "windows": list(spec.window_size)}
    for label, model in (("reference", ref), ("timm", timm_model)):
        row[label] = images_per_s(prepare(model, args), x, args.dtype, args.iters, args.warmup)
    row["ratio"] = row["reference"] / row["timm"]
    return row


def print_header(args) -> None:
    print(f"device {args.device} ({_device_name(args.device)}), {args.dtype}, batch {args.batch_size}, "
          f"median of {args.iters} after {args.warmup} warm-up, compile={args.compile}, "
          f"channels_last={args.channels_last}, torch {torch.__version__}")
    print(f"{'config':<12} {'windows':<16} {'reference img/s':>16} {'timm img/s':>12} {'ref/timm':>9}", flush=True)


def print_row(r: dict) -> None:
    """One row as soon as it is measured (compiling takes minutes per model)."""
    print(f"{r['config']:<12} {str(r['windows']):<16} {r['reference']:>16.1f} {r['timm']:>12.1f} "
          f"{r['ratio']:>9.3f}", flush=True)


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


# ----------------------------------------------------------------------------------------
# tolerance calibration
# ----------------------------------------------------------------------------------------
def corruptions(spec: SwinSpec, every: bool = False) -> dict:
    """name -> function(canonical state dict) -> corrupted copy: the bugs tests/test_check.py plants,
    in one block (the hardest case), or in ``every`` block as a wrong key mapping would."""
    stage = spec.num_stages - 2            # several heads, and a downsample after it
    one = {"swap_qk": (f"layers.{stage}.blocks.1.attn.qkv.weight", _swap_qk),
           "merge_order": ("layers.0.downsample.reduction.weight", _merge_order)}
    if spec.version == 1:
        one["flip_table"] = ("layers.0.blocks.0.attn.relative_position_bias_table", lambda t: t.flip(0))
        one["table_heads"] = (f"layers.{stage}.blocks.1.attn.relative_position_bias_table", lambda t: t.flip(1))
    else:
        one["cpb_coords"] = ("layers.0.blocks.0.attn.cpb_mlp.0.weight", lambda w: w[:, [1, 0]])
        one["cpb_heads"] = (f"layers.{stage}.blocks.1.attn.cpb_mlp.2.weight", lambda w: w.flip(0))
    return {name: _editor(key, fn, every) for name, (key, fn) in one.items()}


def _swap_qk(w):
    q, k, v = w.chunk(3)
    return torch.cat([k, q, v])


def _merge_order(w):
    return torch.cat([w.chunk(4, 1)[i] for i in (0, 2, 1, 3)], 1)


def _editor(key: str, fn, every: bool):
    """Apply ``fn`` to ``key``, or with ``every`` to the same tensor of every block / merge."""
    import re
    parts = key.split(".")
    pattern = re.compile(r"\.".join(r"\d+" if i and parts[i - 1] in ("layers", "blocks") else re.escape(part)
                                     for i, part in enumerate(parts)))

    def edit(sd):
        out = dict(sd)
        for k in ([k for k in sd if pattern.fullmatch(k)] if every else [key]):
            out[k] = fn(sd[k].clone())
        return out
    return edit


def min_tolerance(out: torch.Tensor, truth: torch.Tensor) -> float:
    """Smallest t with |out - truth| <= t (1 + |truth|) everywhere."""
    return float(((out - truth).abs() / (1 + truth.abs())).max())


def scaled_head_(model, x: torch.Tensor, std: float = 3.0) -> None:
    """Scale the head so logits spread like a trained ImageNet model's (std ~3)."""
    with torch.no_grad():
        s = std / float(model(x).std())
        model.head.weight.mul_(s)
        model.head.bias.mul_(s)


def trained_like_scales_(model, value: float = math.log(10)) -> None:
    """V2 logit scales at the official init (randomize_ draws some past the log(100) clamp)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(value)


def calibrate_model(name: str, spec: SwinSpec, args, trained_scales: bool = False) -> list[str]:
    from swin_convert.families.swin.reference import build_reference
    ref = random_reference(spec, seed=1)
    if trained_scales:
        trained_like_scales_(ref)
    x = torch.randn(args.samples, 3, spec.img_size, spec.img_size, generator=torch.Generator().manual_seed(0))
    scaled_head_(ref, x[:8])
    with torch.inference_mode():
        truth = ref(x)
    models = {"reference": ref, "timm": timm_twin(spec, ref)}
    for every in (False, True):
        for label, bad in corruptions(spec, every).items():
            models[label + ("*" if every else "")] = build_reference(spec, bad(ref.state_dict()))
    lines = []
    for dtype in ("bf16", "fp16"):
        t = {k: min_tolerance(_run(m, x, dtype, args), truth) for k, m in models.items()}
        lines.append(f"{name:<22} {dtype:<5} " + "  ".join(f"{k}={v:.3g}" for k, v in t.items()))
    return lines


@torch.inference_mode()
def _run(model, x: torch.Tensor, dtype: str, args) -> torch.Tensor:
    model = model.to(args.device).eval()
    outs = []
    with torch.autocast(device_type=torch.device(args.device).type, dtype=DTYPES[dtype]):
        for b in x.split(16):
            outs.append(model(b.to(args.device)).float().cpu())
    model.cpu()
    return torch.cat(outs)


def calibrate(args) -> None:
    from swin_convert.families.swin.testing import tiny_spec
    cases = [("tiny-v1", tiny_spec(1), False), ("tiny-v2", tiny_spec(2), False),
             ("tiny-v2 scale10", tiny_spec(2), True), ("swin-t-v1-224", swin_t(1, 224, 7), False),
             ("swin-t-v2-256", swin_t(2, 256, 8), False), ("swin-t-v2-256 scale10", swin_t(2, 256, 8), True)]
    print(f"device {args.device} ({_device_name(args.device)}); smallest t passing |out - truth| <= t (1 + |truth|) "
          "vs fp32 CPU truth; reference and timm are correct, the rest corrupted (* = in every block)")
    for name, spec, trained in cases:
        for line in calibrate_model(name, spec, args, trained):
            print(line, flush=True)


# ----------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="bf16", choices=list(DTYPES))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    p.add_argument("--calibrate", action="store_true", help="measure reduced-precision noise vs corruptions")
    p.add_argument("--samples", type=int, default=64, help="--calibrate: random images per model")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        args.warmup = min(args.warmup, 1)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.calibrate:
        calibrate(args)
        return
    print_header(args)
    for name in args.configs.split(","):
        print_row(bench_config(name, CONFIGS[name], args))


if __name__ == "__main__":
    main()
