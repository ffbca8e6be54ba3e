"""Numerical checks of converted checkpoints: logits against the source, accuracy on images.

    report = run_check("out/", against="swin_tiny_patch4_window7_224.pth", runtimes=("all",))
    print(report.summary())          # " * PASS ..." / " * FAIL ..."
    report.raise_for_status()        # CheckFailedError (exit code 3) when over tolerance

The ground truth is always the *source* weights run through our reference forward
(``swin_convert.reference``) in float32 on the CPU. Each requested runtime (reference, timm,
transformers) builds the *candidate* from its weights and config, loads it strictly, and runs
the same seeded inputs on the requested device and dtype. Outputs pass when
``|out - truth| <= atol + rtol * |truth|`` holds for every element (``torch.allclose``'s rule).

Default tolerances (``DEFAULT_TOLERANCES``), as (atol, rtol):

* fp32: (1e-4, 1e-3), timm's ``test_model_inference``. Correct conversions differ by float
  reordering only (max abs diff ~1e-6 in reference, timm and transformers); every corruption
  in ``tests/test_check.py`` exceeds the bound by more than 100x. TF32 is off while checking.
* bf16 autocast: (0.2, 0.2); fp16 autocast: (0.03, 0.03). Measured with
  ``benchmarks/check_speed.py --calibrate`` on an H100 (random-weight tiny and Swin-T models,
  heads scaled to ImageNet-like logit spread, std 3), as the smallest t with
  ``|out - truth| <= t (1 + |truth|)``:

  =====================  ===============  ===============  ===========================
  t needed by            bf16             fp16             note
  =====================  ===============  ===============  ===========================
  correct V1             0.045 - 0.061    0.005 - 0.007    reference and timm alike
  correct V2             0.080 - 0.145    0.009 - 0.019    logit scales at init, log 10
  corrupted, all blocks  >= 0.26          >= 0.26          what a wrong key mapping does
  corrupted, one block   >= 0.098         >= 0.065         one of 12 blocks of Swin-T
  =====================  ===============  ===============  ===========================

  So the bf16 bound passes correct models with a 1.4x margin and catches every corruption
  that hits all blocks; it cannot see a V1 bias-table error confined to one block (the fp16
  bound can; fp32 sees it ~500x over). V2 weights whose logit scales sit at the log(100)
  clamp are noisier in bf16 (t up to 1.9 with random weights, as large as corruptions): the
  report measures the source's own noise at the check's dtype (``source_noise``) and says
  so when it exceeds the tolerance. fp32 is the exact check; reduced precision is a sanity
  check of how the model will be run.

Candidate weights stored in bf16 or fp16 while the source's are wider (``remap --dtype bf16``)
move the logits by themselves; the default tolerance then fits the cast (``WEIGHT_TOLERANCES``,
``choose_tolerances``): bf16 weights (0.15, 0.15), fp16 weights (0.02, 0.02), computed in fp32
(the check upcasts every candidate to fp32; ``--dtype`` autocast adds its own bound). Measured
as above, with ``|out - truth| <= t (1 + |truth|)``, in every runtime, 32 inputs, the source
fp32 and the candidate cast by ``remap --dtype`` (random-weight and trained-like models):

  =====================  ===============  ===============
  t needed by            bf16 weights     fp16 weights
  =====================  ===============  ===============
  Swin V1 (tiny)         0.013 - 0.051    0.0015 - 0.0083
  Swin V2 (tiny)         0.057 - 0.085    0.0045 - 0.0107
  ViT, CSWin (tiny)      0.007 - 0.019    0.0008 - 0.0022
  =====================  ===============  ===============

  so 1.8x margin on the worst case. The bf16 bound still catches a corruption of every block
  (>= 0.26 above); the fp16 bound one confined to a block. The report's ``tolerance`` says
  which default was used and why.

When the candidate's geometry differs from the source's (after ``upscale``), the source's
weights are evaluated at the candidate's geometry when they fit it (always for V2: the CPB MLP
does not depend on the window), which keeps the comparison exact. When they do not fit (V1
bias tables were resized), only agreement is reported and the check is not gated. When the
heads differ, the candidate's rows are matched to the source's (``--map-22k-to-1k``), else the
pooled pre-logit features are compared.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..core.checkpoint import CanonicalCheckpoint
from ..core.preprocess import data_config
from ..errors import CheckFailedError, IncompatibleSpecError, SwinConvertError, UsageError
from ..families import get_family
from .dist import Dist, _world, current_dist, resolve_device, distributed, gather_rows, reduce_max, reduce_sum, shard_indices, unshard  # noqa: F401
from .runtimes import RUNTIMES, RuntimeLoadError, build_runtime, resolve_runtimes  # noqa: F401
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_TOLERANCES = {"fp32": (1e-4, 1e-3), "bf16": (0.2, 0.2), "fp16": (0.03, 0.03)}   # (atol, rtol)
WEIGHT_TOLERANCES = {"BF16": (0.15, 0.15), "F16": (0.02, 0.02)}   # candidate weights cast down from the source's
INPUT_KINDS = ("normal", "uniform")


class Progress(Protocol):
    """What the check reports progress to (the CLI passes a rich progress bar)."""

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """Start a task of ``total`` steps; return the function that advances it."""


class _NoProgress:
    def task(self, description: str, total: int) -> Callable[[int], None]:
        return lambda n=1: None


# ----------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------
@dataclass
class RuntimeResult:
    """One runtime's outputs compared with the ground truth."""

    runtime: str
    device: str
    dtype: str
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    cos_sim: float | None = None             # lowest per-sample cosine similarity
    top1_agreement: float | None = None      # % of samples with the same arg-max (None for features)
    top5_overlap: float | None = None        # mean % of shared top-5 classes
    tol_ratio: float | None = None           # max |diff| / (atol + rtol |truth|): <= 1 passes
    within_tolerance: bool | None = None     # None: not gated (agreement only)
    images_per_s: float | None = None
    error: str | None = None                 # the runtime could not build or load strictly

    @property
    def ok(self) -> bool:
        return self.error is None and self.within_tolerance is not False

    def to_dict(self) -> dict:
        return {k: _finite(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class AccuracyReport:
    """Top-1/top-5 of the candidate on an image folder (timm ``validate.py``'s result)."""

    model: str
    top1: float
    top5: float
    num_images: int
    param_count: int
    img_size: int
    crop_pct: float
    interpolation: str
    mean: tuple
    std: tuple
    runtime: str
    device: str
    dtype: str
    images_per_s: float
    data: str

    def result(self) -> dict:
        """timm's result dict (same keys, order and rounding as ``validate.py``)."""
        return {"model": self.model, "top1": round(self.top1, 4), "top1_err": round(100 - self.top1, 4),
                "top5": round(self.top5, 4), "top5_err": round(100 - self.top5, 4),
                "param_count": round(self.param_count / 1e6, 2), "img_size": self.img_size,
                "crop_pct": self.crop_pct, "interpolation": self.interpolation}

    def summary(self) -> str:
        r = self.result()
        return " * Acc@1 {:.3f} ({:.3f}) Acc@5 {:.3f} ({:.3f})".format(
            r["top1"], r["top1_err"], r["top5"], r["top5_err"])


@dataclass
class CheckReport:
    """The outcome of :func:`run_check`."""

    candidate: str
    against: str | None
    comparison: str                  # which comparison was made, in words
    gated: bool                      # False: agreement only, the tolerance decides nothing
    output: str                      # "logits" | "features"
    device: str
    dtype: str
    atol: float
    rtol: float
    num_samples: int
    seed: int
    inputs: str
    img_size: int
    results: list = field(default_factory=list)      # RuntimeResult per runtime
    skipped: dict = field(default_factory=dict)      # runtime -> why it was not run
    notes: list = field(default_factory=list)
    source_noise: float | None = None  # the truth model's own tol_ratio at this dtype/device (reduced precision)
    tolerance: str = ""                # which tolerance was used, and why
    accuracy: AccuracyReport | None = None

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def worst(self, name: str, *, lowest: bool = False) -> float | None:
        """The worst value of a metric over the runtimes (highest, or ``lowest``)."""
        values = [v for r in self.results if (v := getattr(r, name)) is not None and not math.isnan(v)]
        return (min(values) if lowest else max(values)) if values else None

    def summary(self) -> str:
        """The final ``* PASS`` / ``* FAIL`` line."""
        if not self.passed:
            return " * FAIL " + "; ".join(_failure(r, self) for r in self.results if not r.ok)
        ran = ", ".join(r.runtime for r in self.results)
        agree = self.worst("top1_agreement", lowest=True)
        agree = f", top-1 agreement {agree:.1f}%" if agree is not None else ""
        if not self.gated:
            cos = self.worst("cos_sim", lowest=True)
            return f" * PASS agreement only (not gated): cos sim {cos:.4f}{agree} in {ran}"
        return (f" * PASS max abs {self.output} diff {self.worst('max_abs_diff'):.3g} within atol {self.atol:g} + "
                f"rtol {self.rtol:g}*|ref|{agree} in {ran}")

    def raise_for_status(self) -> None:
        """Raise CheckFailedError (exit code 3) unless the check passed."""
        if self.passed:
            return
        failed = ", ".join(r.runtime for r in self.results if not r.ok) or "every runtime"
        if any(r.error for r in self.results):
            hint = "A runtime could not load the weights strictly: the keys or config of the output are wrong."
        elif self.source_noise is not None and self.source_noise > 0.5:
            hint = (f"The source itself reaches {self.source_noise:.2g}x the tolerance in {self.dtype}, so this "
                    f"may be {self.dtype} noise: check with --dtype fp32, which is exact, or loosen --atol/--rtol.")
        else:
            hint = ("Logits differ beyond tolerance: the conversion changed the model. Loosen --atol/--rtol "
                    "only for a lossy dtype.")
        bad = [r for r in self.results if not r.ok]

        def worst(name: str) -> float | None:   # NaN (a non-finite output) counts as infinitely far
            values = [getattr(r, name) for r in bad if getattr(r, name) is not None]
            return max((v if v == v else math.inf for v in values), default=None)
        raise CheckFailedError(f"The check failed in {failed} ({self.comparison}).", hint, diff=worst("tol_ratio"),
                               tolerance=1.0, metric="tol_ratio", runtimes=[r.runtime for r in bad],
                               max_abs_diff=worst("max_abs_diff"), atol=self.atol, rtol=self.rtol)

    def to_dict(self) -> dict:
        out = {"passed": self.passed, **{k: v for k, v in dataclasses.asdict(self).items()
                                          if k not in ("results", "accuracy")}}
        out["runtimes"] = [r.to_dict() for r in self.results]
        for name, lowest in (("max_abs_diff", False), ("mean_abs_diff", False), ("cos_sim", True),
                             ("top1_agreement", True), ("top5_overlap", True)):
            out[name] = _finite(self.worst(name, lowest=lowest))
        return out

    def verification(self) -> dict:
        """The model card's Verification fields (swin_convert.card.update_card_verification)."""
        d = self.to_dict()
        out = {"passed": self.passed, "comparison": self.comparison, "against": self.against,
               "runtime": ", ".join(r.runtime for r in self.results), "device": self.device, "dtype": self.dtype,
               "num_samples": self.num_samples}
        out.update({k: d[k] for k in ("max_abs_diff", "mean_abs_diff", "cos_sim", "top1_agreement",
                                      "top5_overlap") if d[k] is not None})
        out.update({"atol": self.atol, "rtol": self.rtol} if self.gated else {"gated": "no (agreement only)"})
        if self.accuracy:
            a = self.accuracy
            out.update(dataset=a.data, num_images=a.num_images, crop_pct=a.crop_pct, interpolation=a.interpolation,
                       acc1=round(a.top1, 3), acc5=round(a.top5, 3))
        return {k: v for k, v in out.items() if v is not None}


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _failure(r: RuntimeResult, report: CheckReport) -> str:
    if r.error:
        return f"{r.runtime}: {r.error}"
    return (f"{r.runtime}: max abs {report.output} diff {r.max_abs_diff:.3g} exceeds atol {report.atol:g} + "
            f"rtol {report.rtol:g}*|ref| ({r.tol_ratio:.3g}x the tolerance)")


# ----------------------------------------------------------------------------------------
# what is compared with what
# ----------------------------------------------------------------------------------------
@dataclass
class ComparisonPlan:
    """The ground-truth model and how its outputs relate to the candidate's."""

    truth: CanonicalCheckpoint       # evaluated by the reference forward, fp32, CPU
    gated: bool
    description: str
    output: str = "logits"           # "logits" | "features"
    rows: list | None = None         # source head rows the candidate's head keeps
    truth_img_size: int = 0
    notes: list = field(default_factory=list)


def plan_comparison(cand: CanonicalCheckpoint, src: CanonicalCheckpoint | None) -> ComparisonPlan:
    """Decide what the candidate is compared with (see the module docstring)."""
    if src is None:
        return ComparisonPlan(cand, True, "each runtime vs the reference forward of the candidate's own weights "
                              "(fp32, CPU)", truth_img_size=cand.spec.img_size)
    truth, gated, description, notes = get_family(cand.family).compare(cand, src)
    plan = ComparisonPlan(truth, gated, description, truth_img_size=truth.spec.img_size, notes=notes)
    _apply_head_relation(plan, cand, src)
    plan.notes += _dtype_notes(cand, src)
    return plan


def _apply_head_relation(plan: ComparisonPlan, cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> None:
    nc, ns = cand.spec.num_classes, src.spec.num_classes
    if nc == ns:
        return
    head = cand.tensors.get("head.weight")
    rows = _matching_rows(cand.tensors, src.tensors, getattr(head, "dtype", None)) if nc and ns else None
    if rows is not None:
        plan.rows = rows
        plan.description += f"; the candidate's head keeps {nc} of the source's {ns} classes, compared on those"
    else:
        plan.output = "features"
        plan.description += f"; the heads differ ({ns} -> {nc} classes), so pooled pre-logit features are compared"


def _matching_rows(cand_tensors: dict, src_tensors: dict, head_dtype: str | None = None) -> list | None:
    """Source head row of each candidate head row (exact equality, after rounding the source's to
    a bf16/fp16 candidate head's dtype), or None if one has none."""
    from ..core.torch_io import to_torch
    like = {"BF16": torch.bfloat16, "F16": torch.float16}.get(head_dtype)

    def rows(t):
        w, b = to_torch(t["head.weight"]), to_torch(t["head.bias"])
        w, b = (w.to(like), b.to(like)) if like is not None else (w, b)
        w, b = w.float(), b.float()
        return [bytes(r.numpy().tobytes()) for r in torch.cat([w, b[:, None]], 1)]
    index = {key: i for i, key in enumerate(rows(src_tensors))}
    found = [index.get(key) for key in rows(cand_tensors)]
    return None if any(i is None for i in found) else found


def _dtype_notes(cand: CanonicalCheckpoint, src: CanonicalCheckpoint) -> list:
    dc, ds = ({t.dtype for t in c.tensors.values()} for c in (cand, src))
    if dc != ds:
        return [f"the candidate stores {','.join(sorted(dc))} weights, the source {','.join(sorted(ds))}"]
    return []


def weight_dtype_loss(cand: CanonicalCheckpoint, truth: CanonicalCheckpoint) -> str | None:
    """BF16 or F16 when the candidate holds weights in that dtype and the ground truth holds
    none (a cast down, e.g. ``remap --dtype bf16``): its rounding moves the logits."""
    floats = lambda c: {t.dtype for t in c.tensors.values() if t.dtype in ("F64", "F32", "F16", "BF16")}  # noqa: E731
    dc, dt = floats(cand), floats(truth)
    lossy = [d for d in WEIGHT_TOLERANCES if d in dc and d not in dt]
    return lossy[0] if lossy else None


def choose_tolerances(dtype: str, cand: CanonicalCheckpoint, truth: CanonicalCheckpoint, atol: float | None,
                      rtol: float | None) -> tuple[float, float, str]:
    """(atol, rtol, why): the compute dtype's default, loosened to fit candidate weights stored in
    bf16/fp16 when the truth's are wider (``WEIGHT_TOLERANCES``); --atol/--rtol win."""
    d_atol, d_rtol = default_tolerances(dtype)
    why = f"the default for {dtype} compute"
    lossy = weight_dtype_loss(cand, truth)
    if lossy:
        w_atol, w_rtol = WEIGHT_TOLERANCES[lossy]
        name = {"BF16": "bf16", "F16": "fp16"}[lossy]
        if dtype == "fp32":          # the weights' rounding is the only loss
            d_atol, d_rtol = w_atol, w_rtol
            why = f"the default for {name} weights checked against wider source weights (computed in fp32)"
        elif dtype == name:          # autocast rounds the matmul weights to that dtype anyway
            d_atol, d_rtol = max(d_atol, w_atol), max(d_rtol, w_rtol)
            why = f"the default for {dtype} autocast, which also covers {name} weights"
        else:                        # two independent roundings
            d_atol, d_rtol = d_atol + w_atol, d_rtol + w_rtol
            why = f"the default for {dtype} autocast plus the one for {name} weights"
    if atol is not None or rtol is not None:
        given = " and ".join(f for f, v in (("--atol", atol), ("--rtol", rtol)) if v is not None)
        why = f"{given} as given" + ("" if atol is not None and rtol is not None else f", else {why}")
    return (d_atol if atol is None else atol), (d_rtol if rtol is None else rtol), why


# ----------------------------------------------------------------------------------------
# runtimes
# ----------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------
# running models
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """How a runtime runs: device, autocast dtype, batch size, memory format, compilation."""

    device: str = "cpu"
    dtype: str = "fp32"
    batch_size: int = 16
    channels_last: bool = False
    compile: bool = False


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise UsageError(f"Unknown dtype '{dtype}'.", f"Use one of: {', '.join(DTYPES)}.", option="--dtype")
    return dtype


@contextlib.contextmanager
def precision(device: str, dtype: str):
    """Autocast for bf16/fp16; for fp32 on CUDA, TF32 off so fp32 means fp32."""
    kind = torch.device(device).type
    if dtype != "fp32":
        with torch.autocast(device_type=kind, dtype=DTYPES[dtype]):
            yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def prepare(model: nn.Module, opts: RunOptions) -> nn.Module:
    """Move to the device (channels_last, torch.compile as asked)."""
    model = model.to(opts.device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if opts.compile else model


def _to_device(x: torch.Tensor, opts: RunOptions) -> torch.Tensor:
    x = x.to(opts.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if opts.channels_last else x


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def run_batches(model: nn.Module, x: torch.Tensor, opts: RunOptions, advance=None) -> tuple[torch.Tensor, float]:
    """(outputs as fp32 CPU, seconds spent in the model); one untimed warm-up batch first."""
    batches = [_to_device(b, opts) for b in x.split(opts.batch_size)] if len(x) else []
    outs = []
    with precision(opts.device, opts.dtype):
        if batches:
            model(batches[0])            # warm-up: compilation, cuDNN autotuning, lazy init
        _sync(opts.device)
        start = time.perf_counter()
        for b in batches:
            outs.append(model(b))
            (advance or (lambda n=1: None))(1)
        _sync(opts.device)
    seconds = time.perf_counter() - start if batches else 0.0
    return (torch.cat(outs).float().cpu() if outs else torch.empty(0)), seconds


def image_hw(size) -> tuple[int, int]:
    """(height, width) of an image size given as one side (Swin) or a pair (ViT)."""
    return (int(size[0]), int(size[1])) if isinstance(size, (tuple, list)) else (int(size), int(size))


def make_inputs(spec, num_samples: int, seed: int, kind: str = "normal", mean=None, std=None) -> torch.Tensor:
    """Seeded images: N(0, 1), or uniform pixels in [0, 1] normalised with mean/std."""
    if kind not in INPUT_KINDS:
        raise UsageError(f"Unknown input kind '{kind}'.", f"Use one of: {', '.join(INPUT_KINDS)}.", option="--inputs")
    g = torch.Generator().manual_seed(seed)
    shape = (num_samples, spec.in_chans, *image_hw(spec.img_size))
    if kind == "normal":
        return torch.randn(shape, generator=g)
    mean = torch.tensor(mean or (0.5,) * spec.in_chans).view(1, -1, 1, 1)
    std = torch.tensor(std or (0.5,) * spec.in_chans).view(1, -1, 1, 1)
    return (torch.rand(shape, generator=g) - mean) / std


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------
def compare_outputs(out: torch.Tensor, truth: torch.Tensor, atol: float, rtol: float,
                    classes: bool = True) -> dict:
    """Differences of ``out`` from ``truth`` (both (N, K)); top-k only when K are classes."""
    diff = (out - truth).abs()
    bound = atol + rtol * truth.abs()
    finite = bool(torch.isfinite(out).all())
    res = {"max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
           "mean_abs_diff": float(diff.mean()) if diff.numel() else 0.0,
           "cos_sim": float(F.cosine_similarity(out, truth, dim=1).min()) if len(out) else 1.0,
           "tol_ratio": float((diff / bound).max()) if diff.numel() else 0.0,
           "within_tolerance": finite and bool((diff <= bound).all())}
    if classes and out.shape[1:] and out.shape[1] > 0:
        res.update(top1_agreement=top1_agreement(out, truth), top5_overlap=topk_overlap(out, truth, 5))
    return res


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean() * 100) if len(a) else 100.0


def topk_overlap(a: torch.Tensor, b: torch.Tensor, k: int = 5) -> float:
    """Mean share (%) of the top-k classes of ``a`` that are also in the top-k of ``b``."""
    k = min(k, a.shape[1])
    if not len(a) or k == 0:
        return 100.0
    ta, tb = a.topk(k, 1).indices, b.topk(k, 1).indices
    shared = (ta[:, :, None] == tb[:, None, :]).any(2).float().sum(1)
    return float((shared / k).mean() * 100)


# ----------------------------------------------------------------------------------------
# the check
# ----------------------------------------------------------------------------------------
def load_checkpoint(source) -> CanonicalCheckpoint:
    """A loaded checkpoint (``swin_convert.load``); paths are loaded by ``swin_convert.check``."""
    if isinstance(source, CanonicalCheckpoint):
        return source
    raise TypeError("swin_convert.check.engine takes loaded checkpoints; use swin_convert.check() for paths")


def default_tolerances(dtype: str) -> tuple[float, float]:
    return DEFAULT_TOLERANCES[_check_dtype(dtype)]


def run_check(candidate, against=None, *, runtimes: Iterable[str] = ("reference",), device: str = "auto",
              dtype: str = "fp32", batch_size: int = 16, num_samples: int = 32, seed: int = 0,
              atol: float | None = None, rtol: float | None = None, compile: bool = False,
              channels_last: bool = False, inputs: str = "normal", progress: Progress | None = None) -> CheckReport:
    """Compare the candidate's outputs in each runtime with the ground truth.

    Args:
        candidate: The converted checkpoint: a path, Hub id, URL or CanonicalCheckpoint.
        against: The checkpoint it was converted from; None checks the candidate's runtimes
            against the reference forward of its own weights.
        runtimes: Any of reference, timm, transformers, or ``("all",)``.
        device: auto, cpu or cuda. dtype: fp32, or bf16/fp16 autocast.
        atol: Absolute tolerance (default per dtype, ``DEFAULT_TOLERANCES``). rtol: relative.
        inputs: ``normal`` (N(0, 1) images) or ``uniform`` (pixels in [0, 1], normalised).
        progress: Where to report progress (see :class:`Progress`).

    Returns:
        The report; it does not raise on failure (call ``raise_for_status``).
    """
    cand, src = load_checkpoint(candidate), None if against is None else load_checkpoint(against)
    opts = RunOptions(resolve_device(device), dtype, _positive(batch_size, "--batch-size"), channels_last, compile)
    plan = plan_comparison(cand, src)
    atol, rtol, why = choose_tolerances(dtype, cand, plan.truth, atol, rtol)
    names, skipped = resolve_runtimes(runtimes, cand.spec)
    data = _data_stats(cand)
    x = make_inputs(cand.spec, _positive(num_samples, "--num-samples"), seed, inputs, data["mean"], data["std"])
    report = CheckReport(cand.source, src.source if src else None, plan.description, plan.gated, plan.output,
                         opts.device, dtype, atol, rtol, len(x), seed, inputs, cand.spec.img_size, skipped=skipped,
                         notes=list(plan.notes), tolerance=why)
    if plan.gated:
        report.notes.append(f"tolerance atol {atol:g} + rtol {rtol:g}*|ref|: {why}")
    progress = progress or _NoProgress()
    d = current_dist()
    truth = _ground_truth(plan, x, opts.batch_size, d, progress)
    if dtype != "fp32" and plan.gated:
        report.source_noise = _source_noise(plan, x, truth, opts, report, d)
        if report.source_noise > 1:
            report.notes.append(f"the source itself exceeds the {dtype} tolerance ({report.source_noise:.2g}x) "
                                f"on {opts.device}: {dtype} noise of this model is larger than atol/rtol")
    with tempfile.TemporaryDirectory(prefix="swin-convert-check-") as workdir:
        for name in names:
            report.results.append(_check_runtime(name, cand, plan, x, truth, opts, report, d, progress, workdir))
    return report


def _positive(value: int, flag: str) -> int:
    if value is None or value < 1:
        raise UsageError(f"{flag} must be at least 1, got {value}.", option=flag)
    return int(value)


def _data_stats(ckpt: CanonicalCheckpoint) -> dict:
    return data_config(ckpt)


def _ground_truth(plan: ComparisonPlan, x: torch.Tensor, batch_size: int, d: Dist, progress) -> torch.Tensor:
    """The truth model's outputs (reference forward, fp32, CPU) for this rank's rows, gathered."""
    model = build_runtime("reference", plan.truth, plan.output)
    local = x[shard_indices(len(x), d.rank, d.world)]
    if image_hw(plan.truth_img_size) != tuple(x.shape[-2:]):   # agreement-only: the source runs at its own size
        local = F.interpolate(local, size=image_hw(plan.truth_img_size), mode="bilinear", antialias=True, align_corners=False)
    advance = progress.task("ground truth (reference, fp32, cpu)", math.ceil(len(local) / batch_size))
    out, _ = run_batches(model, local, RunOptions("cpu", "fp32", batch_size), advance)
    out = gather_rows(out, len(x), d)
    return out[:, plan.rows] if plan.rows is not None else out


def _source_noise(plan: ComparisonPlan, x, truth, opts: RunOptions, report: CheckReport, d: Dist) -> float:
    """How far the truth model itself strays at the check's dtype and device (tol_ratio): the
    precision noise floor a correct candidate is expected to reach too."""
    model = prepare(build_runtime("reference", plan.truth, plan.output), opts)
    out, _ = run_batches(model, x[shard_indices(len(x), d.rank, d.world)], opts)
    out = gather_rows(out, len(x), d)
    out = out[:, plan.rows] if plan.rows is not None else out
    return compare_outputs(out, truth, report.atol, report.rtol, classes=False)["tol_ratio"]


def _check_runtime(name: str, cand, plan: ComparisonPlan, x, truth, opts: RunOptions, report: CheckReport,
                   d: Dist, progress, workdir) -> RuntimeResult:
    result = RuntimeResult(name, opts.device, opts.dtype)
    try:
        model = prepare(build_runtime(name, cand, plan.output, Path(workdir)), opts)
    except RuntimeLoadError as e:
        result.error = e.message
        return result
    local = x[shard_indices(len(x), d.rank, d.world)]
    advance = progress.task(f"{name} ({opts.dtype}, {opts.device})", math.ceil(len(local) / opts.batch_size))
    out, seconds = run_batches(model, local, opts, advance)
    out, seconds = gather_rows(out, len(x), d), reduce_max(seconds, d)
    metrics = compare_outputs(out, truth, report.atol, report.rtol, classes=plan.output == "logits")
    if not plan.gated:
        metrics["within_tolerance"] = None
    result.images_per_s = len(x) / seconds if seconds > 0 else None
    return dataclasses.replace(result, **metrics)


# ----------------------------------------------------------------------------------------
# accuracy on an image folder
# ----------------------------------------------------------------------------------------
def eval_data_config(ckpt: CanonicalCheckpoint, *, crop_pct: float | None = None, interpolation: str | None = None,
                     mean=None, std=None) -> dict:
    """The checkpoint's eval preprocessing (swin_convert.writing.data_config), flags override."""
    cfg = _data_stats(ckpt)
    for key, value in (("crop_pct", crop_pct), ("interpolation", interpolation), ("mean", mean), ("std", std)):
        if value is not None:
            cfg[key] = value
    cfg["mean"], cfg["std"] = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    cfg["input_size"] = (ckpt.spec.in_chans, *image_hw(ckpt.spec.img_size))
    return cfg


def data_config_lines(cfg: dict) -> list[str]:
    """timm's ``resolve_data_config(verbose=True)`` block."""
    lines = ["Data processing configuration for current model + dataset:"]
    for key in ("input_size", "interpolation", "mean", "std", "crop_pct"):
        lines.append(f"\t{key}: {cfg[key]}")
    lines.append("\tcrop_mode: center")
    return lines


@dataclass
class _Meter:
    """Running Acc@1/Acc@5 and batch time, as timm's AverageMeter."""

    correct1: float = 0.0
    correct5: float = 0.0
    count: int = 0
    seconds: float = 0.0
    batches: int = 0

    def update(self, c1: float, c5: float, n: int, seconds: float) -> None:
        self.correct1, self.correct5, self.count = self.correct1 + c1, self.correct5 + c5, self.count + n
        self.seconds, self.batches = self.seconds + seconds, self.batches + 1


def evaluate_accuracy(candidate, data: str | Path, *, labels: str | Path | None = None, runtime: str = "reference",
                      device: str = "auto", dtype: str = "fp32", batch_size: int = 32, workers: int | None = None,
                      crop_pct: float | None = None, interpolation: str | None = None, mean=None, std=None,
                      log_freq: int = 10, compile: bool = False, channels_last: bool = False,
                      on_log: Callable[[str], None] | None = None, progress: Progress | None = None) -> AccuracyReport:
    """Top-1/top-5 of the candidate on an image folder, with timm's eval transform.

    Args:
        candidate: A path, Hub id, URL or CanonicalCheckpoint.
        data: An ImageFolder tree, or a flat folder with ``labels``.
        labels: File of ``filename label`` lines for a flat folder.
        runtime: reference, timm or transformers.
        crop_pct, interpolation, mean, std: Override the checkpoint's data config.
        log_freq: A ``Test: [...]`` line every this many batches (through ``on_log``).
        on_log: Receives the header, progress and result lines (timm validate.py's wording).

    Returns:
        The accuracy report (under torchrun: over every rank's share).
    """
    from . import imagedata
    ckpt = load_checkpoint(candidate)
    if not ckpt.spec.num_classes:
        raise UsageError("--data needs a model with a classification head; this one has none.", option="--data")
    opts = RunOptions(resolve_device(device), _check_dtype(dtype), _positive(batch_size, "--batch-size"),
                      channels_last, compile)
    cfg = eval_data_config(ckpt, crop_pct=crop_pct, interpolation=interpolation, mean=mean, std=std)
    samples = imagedata.find_samples(data, labels)
    _check_labels(samples, ckpt.spec.num_classes)
    d, log = current_dist(), on_log or (lambda line: None)
    loader = _make_loader(samples, cfg, image_hw(ckpt.spec.img_size)[0], opts.batch_size, workers, d)
    model = prepare(_runtime_or_raise(runtime, ckpt), opts)
    _log_header(log, ckpt, opts, cfg)
    meter = _accumulate(model, loader, cfg["input_size"], opts, log, max(1, log_freq), progress or _NoProgress())
    c1, c5, count = reduce_sum([meter.correct1, meter.correct5, meter.count], d)
    seconds = reduce_max(meter.seconds, d)
    report = AccuracyReport(ckpt.source, 100 * c1 / count, 100 * c5 / count, int(count), ckpt.num_params,
                            ckpt.spec.img_size, cfg["crop_pct"], cfg["interpolation"], cfg["mean"], cfg["std"],
                            runtime, opts.device, opts.dtype, count / seconds if seconds else 0.0, str(data))
    log(report.summary())
    return report


def _check_labels(samples, num_classes: int) -> None:
    bad = [lab for lab in samples.labels if not 0 <= lab < num_classes]
    if bad:
        raise UsageError(f"The data has class index {max(bad, key=abs)} but the model has {num_classes} classes.",
                         "Class subfolders must be named 0..K-1 or be at most K folders; check --labels.")


def _make_loader(samples, cfg: dict, img_size: int, batch_size: int, workers: int | None, d: Dist):
    from . import imagedata
    transform = imagedata.EvalTransform(img_size, float(cfg["crop_pct"]), cfg["interpolation"], cfg["mean"], cfg["std"])
    dataset = imagedata.ImageDataset(samples, transform, shard_indices(len(samples), d.rank, d.world))
    workers = imagedata.default_workers() if workers is None else max(0, int(workers))
    return imagedata.make_loader(dataset, batch_size, workers)


def _runtime_or_raise(runtime: str, ckpt: CanonicalCheckpoint) -> nn.Module:
    names, _ = resolve_runtimes([runtime], ckpt.spec)
    with tempfile.TemporaryDirectory(prefix="swin-convert-acc-") as workdir:
        return build_runtime(names[0], ckpt, "logits", Path(workdir))


def _log_header(log, ckpt: CanonicalCheckpoint, opts: RunOptions, cfg: dict) -> None:
    log(f"Model {ckpt.source} created, param count: {ckpt.num_params}")
    if opts.dtype == "fp32":
        log("Validating in float32. AMP not enabled.")
    else:
        log(f"Validating in mixed precision with native PyTorch AMP ({DTYPES[opts.dtype]}).")
    for line in data_config_lines(cfg):
        log(line)


@torch.inference_mode()
def _accumulate(model, loader, input_size: tuple, opts: RunOptions, log, log_freq: int, progress) -> _Meter:
    meter, total = _Meter(), len(loader)
    advance = progress.task("evaluating images", total)
    with precision(opts.device, opts.dtype):
        model(_to_device(torch.zeros((1,) + tuple(input_size)), opts))   # warm-up, as validate.py
        _sync(opts.device)
        end = time.perf_counter()
        for i, (images, target) in enumerate(loader):
            logits = model(_to_device(images, opts)).float().cpu()
            c1, c5 = _correct(logits, target)
            _sync(opts.device)
            now = time.perf_counter()
            meter.update(c1, c5, len(target), now - end)
            if i % log_freq == 0:
                log(_test_line(i, total, meter, c1, c5, len(target), now - end))
            end = now
            advance(1)
    return meter


def _correct(logits: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    k = min(5, logits.shape[1])
    top = logits.topk(k, 1).indices
    hit = top == target[:, None]
    return float(hit[:, :1].any(1).sum()), float(hit.any(1).sum())


def _test_line(i: int, total: int, m: _Meter, c1: float, c5: float, n: int, seconds: float) -> str:
    avg = m.seconds / m.batches
    return (f"Test: [{i:>4d}/{total}]  Time: {seconds:.3f}s ({avg:.3f}s, {n / avg:>7.2f}/s)  "
            f"Acc@1: {100 * c1 / n:>7.3f} ({100 * m.correct1 / m.count:>7.3f})  "
            f"Acc@5: {100 * c5 / n:>7.3f} ({100 * m.correct5 / m.count:>7.3f})")


# ----------------------------------------------------------------------------------------
# model card
# ----------------------------------------------------------------------------------------
def write_card_verification(folder: str | Path, report: CheckReport) -> Path:
    """Put the report into the Verification section of ``folder``/README.md (created if missing)."""
    from ..core.card import update_card_verification
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--write-card needs the candidate to be a local folder; '{folder}' is not one.",
                         "Check a folder written by remap/upscale, or drop --write-card.", option="--write-card")
    readme = folder / "README.md"
    text = readme.read_text() if readme.exists() else ""
    readme.write_text(update_card_verification(text, report.verification()))
    return readme


__all__ = ["run_check", "evaluate_accuracy", "CheckReport", "RuntimeResult", "AccuracyReport", "ComparisonPlan",
           "plan_comparison", "compare_outputs", "resolve_runtimes", "build_runtime", "RunOptions", "distributed",
           "shard_indices", "unshard", "write_card_verification", "DEFAULT_TOLERANCES", "RUNTIMES"]
