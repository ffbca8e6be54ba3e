"""Numerical checks of converted checkpoints: logits against the source (here), accuracy on images
(``accuracy.py``); what both report is in ``report.py``, how models run in ``running.py``.

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

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F

from ..core.checkpoint import CanonicalCheckpoint
from ..errors import CheckFailedError, IncompatibleSpecError, SwinConvertError, UsageError  # noqa: F401
from ..families import get_family
from .dist import Dist, _world, current_dist, resolve_device, distributed, gather_rows, reduce_max, reduce_sum, shard_indices, unshard  # noqa: F401
from .runtimes import RUNTIMES, RuntimeLoadError, build_runtime, resolve_runtimes  # noqa: F401
from .report import AccuracyReport, CheckReport, Progress, RuntimeResult, _NoProgress, write_card_verification  # noqa: F401
from .running import (DTYPES, INPUT_KINDS, RunOptions, _check_dtype, _data_stats, _positive, image_hw,  # noqa: F401
                      load_checkpoint, make_inputs, precision, prepare, run_batches)
from .accuracy import data_config_lines, eval_data_config, evaluate_accuracy  # noqa: F401

DEFAULT_TOLERANCES = {"fp32": (1e-4, 1e-3), "bf16": (0.2, 0.2), "fp16": (0.03, 0.03)}   # (atol, rtol)
WEIGHT_TOLERANCES = {"BF16": (0.15, 0.15), "F16": (0.02, 0.02)}   # candidate weights cast down from the source's



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


__all__ = ["run_check", "evaluate_accuracy", "CheckReport", "RuntimeResult", "AccuracyReport", "ComparisonPlan",
           "plan_comparison", "compare_outputs", "resolve_runtimes", "build_runtime", "RunOptions", "distributed",
           "shard_indices", "unshard", "write_card_verification", "DEFAULT_TOLERANCES", "RUNTIMES"]
