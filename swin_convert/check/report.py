"""What a check reports: per-runtime results, the check and accuracy reports (summaries, JSON,
the card's Verification table), where progress goes, and the card update."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ..errors import CheckFailedError, UsageError


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
    _replace_text(readme, update_card_verification(text, report.verification()))
    return readme


def _replace_text(path: Path, text: str) -> None:
    """Atomic: a temporary sibling renamed over ``path`` (its mode kept; umask's for a new file)."""
    if path.exists():
        mode = path.stat().st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


