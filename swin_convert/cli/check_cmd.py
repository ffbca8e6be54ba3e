"""`swin-convert check`: the CLI face of swin_convert.check (parse, call, render).

Imported by cli.py at start-up, so nothing heavy is imported here at module level: torch,
timm and transformers load only when the command runs (`swin-convert --help` stays instant).
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .common import (EmaOpt, FormatOpt, HeadsOpt, ImgSizeOpt, NumHeadsOpt, QuietOpt, SplitOpt, app, console, errors,
                     family_flags)

RESULT_COLUMNS = ("model", "img_size", "top1", "top1_err", "top5", "top5_err", "param_count", "crop_pct",
                  "interpolation")   # timm results/results-imagenet.csv
CHECK, DATA, OUTPUT = "Check", "Data", "Output"

CandidateArg = Annotated[str, typer.Argument(help="The converted checkpoint: file, folder, Hub repo id or URL.",
                                             show_default=False)]
AgainstOpt = Annotated[Optional[str], typer.Option("--against", help="The checkpoint it was converted from (the "
                                                   "ground truth). Without it, runtimes are checked against the "
                                                   "reference forward of the candidate itself.",
                                                   rich_help_panel=CHECK, show_default=False)]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="reference | timm | transformers | torchvision (ViT) | all, or a comma list. "
                                         "all = every installed runtime that can express the model.",
                                         rich_help_panel=CHECK)]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda.", rich_help_panel=CHECK)]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp32, or bf16 / fp16 autocast (looser default tolerances).",
                                       rich_help_panel=CHECK)]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward.", rich_help_panel=CHECK)]
SamplesOpt = Annotated[int, typer.Option("--num-samples", help="Random images to compare logits on.",
                                         rich_help_panel=CHECK)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random images.", rich_help_panel=CHECK)]
AtolOpt = Annotated[Optional[float], typer.Option("--atol", help="Absolute tolerance (default: 1e-4 fp32, 0.2 "
                                                  "bf16, 0.03 fp16; 0.15 / 0.02 for bf16 / fp16 weights cast from "
                                                  "wider ones).", rich_help_panel=CHECK, show_default=False)]
RtolOpt = Annotated[Optional[float], typer.Option("--rtol", help="Relative tolerance (default: 1e-3 fp32, 0.2 "
                                                  "bf16, 0.03 fp16; 0.15 / 0.02 for bf16 / fp16 weights cast from "
                                                  "wider ones).", rich_help_panel=CHECK, show_default=False)]
InputsOpt = Annotated[str, typer.Option("--inputs", help="normal: N(0,1) images; uniform: pixels in [0,1], "
                                        "normalised.", rich_help_panel=CHECK)]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile each runtime's model.",
                                          rich_help_panel=CHECK)]
ChannelsLastOpt = Annotated[bool, typer.Option("--channels-last", help="Run in channels_last memory format.",
                                               rich_help_panel=CHECK)]
DataOpt = Annotated[Optional[Path], typer.Option("--data", help="Image folder (class subfolders, or flat with "
                                                 "--labels): also measure top-1/top-5.", rich_help_panel=DATA,
                                                 show_default=False)]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="Lines 'filename label' for a flat --data "
                                                   "folder.", rich_help_panel=DATA, show_default=False)]
CropOpt = Annotated[Optional[float], typer.Option("--crop-pct", help="Center-crop fraction (default: the "
                                                  "checkpoint's config).", rich_help_panel=DATA, show_default=False)]
InterpOpt = Annotated[Optional[str], typer.Option("--interpolation", help="bicubic | bilinear (default: the "
                                                  "checkpoint's config).", rich_help_panel=DATA, show_default=False)]
MeanOpt = Annotated[Optional[str], typer.Option("--mean", help="Normalisation mean, a,b,c.", rich_help_panel=DATA,
                                                show_default=False)]
StdOpt = Annotated[Optional[str], typer.Option("--std", help="Normalisation std, a,b,c.", rich_help_panel=DATA,
                                               show_default=False)]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-j", help="Image decoding processes "
                                                   "(default: min(4, CPUs)).", rich_help_panel=DATA,
                                                   show_default=False)]
LogFreqOpt = Annotated[int, typer.Option("--log-freq", help="A 'Test:' line every N batches.", rich_help_panel=DATA)]
ResultsOpt = Annotated[Optional[Path], typer.Option("--results-file", help="Write timm's results CSV (needs "
                                                    "--data).", rich_help_panel=OUTPUT, show_default=False)]
CardOpt = Annotated[bool, typer.Option("--write-card", help="Record the result in the candidate folder's "
                                       "README.md (Verification section).", rich_help_panel=OUTPUT)]

EPILOG = ("Examples: swin-convert check out/ --against swin_tiny_patch4_window7_224.pth --runtime all | "
          "swin-convert check out/ --device cuda --dtype bf16 --data imagenet/val --results-file r.csv. "
          "Exit codes: 0 pass, 1 error, 2 usage, 3 over tolerance.")


@app.command(epilog=EPILOG)
def check(candidate: CandidateArg, against: AgainstOpt = None, runtime: RuntimeOpt = "reference",
          device: DeviceOpt = "auto", dtype: DtypeOpt = "fp32", batch_size: BatchOpt = 16,
          num_samples: SamplesOpt = 32, seed: SeedOpt = 0, atol: AtolOpt = None, rtol: RtolOpt = None,
          compile_model: CompileOpt = False, channels_last: ChannelsLastOpt = False, inputs: InputsOpt = "normal",
          data: DataOpt = None, labels: LabelsOpt = None, crop_pct: CropOpt = None, interpolation: InterpOpt = None,
          mean: MeanOpt = None, std: StdOpt = None, workers: WorkersOpt = None, log_freq: LogFreqOpt = 10,
          fmt: FormatOpt = "human", results_file: ResultsOpt = None, write_card: CardOpt = False,
          src_img_size: Annotated[Optional[int], typer.Option("--src-img-size", help="Image size of the --against "
                                                              "source, when not recorded.", rich_help_panel=CHECK,
                                                              show_default=False)] = None,
          src_split: Annotated[Optional[str], typer.Option("--src-split", help="CSWin: split of the --against "
                                                           "source, when not recorded.", rich_help_panel=CHECK,
                                                           show_default=False)] = None,
          img_size: ImgSizeOpt = None, split: SplitOpt = None, heads: HeadsOpt = None, ema: EmaOpt = None,
          num_heads: NumHeadsOpt = None, quiet: QuietOpt = False):
    """Compare a converted checkpoint's logits with its source's in reference, timm and transformers."""
    with errors(fmt, quiet) as output:
        _check_flags(fmt, data, labels, results_file, candidate if write_card else None)
        from .. import api
        from ..check import engine as chk
        run = dict(device=device, dtype=dtype, batch_size=batch_size, compile=compile_model,
                   channels_last=channels_last)
        with chk.distributed(device) as dist, _Printer(output, dist.is_main) as out:
            from ..core.values import parse_size
            cand = api.load(candidate, img_size=parse_size(img_size, "--img-size"), num_heads=num_heads, **family_flags(split, heads, ema))
            src_flags = dict(family_flags(src_split, heads, ema), **({"img_size": src_img_size} if src_img_size else {}))
            if num_heads is not None:
                src_flags["num_heads"] = num_heads
            report = api.check(cand, against, against_flags=src_flags, runtimes=runtime.split(","),
                               num_samples=num_samples, seed=seed,
                                   atol=atol, rtol=rtol, inputs=inputs, progress=out.progress(), **run)
            out.report(report)
            if data is not None:
                report.accuracy = api.evaluate_accuracy(
                    cand, data, labels=labels, runtime=report.results[0].runtime if report.results else "reference",
                    workers=workers, crop_pct=crop_pct, interpolation=interpolation, mean=_floats(mean, "--mean"),
                    std=_floats(std, "--std"), log_freq=log_freq, on_log=out.log, progress=out.progress(), **run)
            if dist.is_main:
                _finish(out, report, results_file, candidate if write_card else None)
            report.raise_for_status()


def _check_flags(fmt: str, data: Optional[Path], labels: Optional[Path], results_file: Optional[Path],
                 card_folder: Optional[str]) -> None:
    """Refuse flag combinations that cannot work before anything slow runs."""
    if results_file is not None and data is None:
        raise UsageError("--results-file writes accuracy results, which need --data.", "Add --data DIR.",
                         option="--results-file")
    if labels is not None and data is None:
        raise UsageError("--labels describes a --data folder.", "Add --data DIR.", option="--labels")
    if card_folder is not None and not Path(card_folder).is_dir():
        raise UsageError(f"--write-card needs the candidate to be a local folder; '{card_folder}' is not one.",
                         "Check a folder written by remap/upscale, or drop --write-card.", option="--write-card")


def _floats(value: Optional[str], flag: str) -> Optional[tuple]:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated numbers, got '{value}'.",
                         f"For example {flag} 0.485,0.456,0.406.", option=flag) from None


def _finish(out: "_Printer", report, results_file: Optional[Path], card_folder: Optional[str]) -> None:
    """After every measurement: the summary (or the JSON dict), the CSV, the card."""
    if results_file is not None and report.accuracy is not None:
        write_results_csv(results_file, report.accuracy.result())
    if card_folder is not None:
        from ..check.engine import write_card_verification
        readme = write_card_verification(card_folder, report)
        out.note(f"Wrote the Verification section of {readme}")
    out.final(report)


def write_results_csv(path: Path, result: dict) -> None:
    """timm's results CSV: its header, one row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerow(result)


# ----------------------------------------------------------------------------------------
# output: human lines or one JSON dict on stdout; progress bars on stderr
# ----------------------------------------------------------------------------------------
class _Printer:
    """Where the command's output goes (only rank 0 of a torchrun job prints)."""

    def __init__(self, output, main: bool):
        self.output, self.human, self.main = output, not output.json, main
        output.main = main
        self._progress = _RichProgress(enabled=main and not output.quiet)

    def __enter__(self) -> "_Printer":
        return self

    def __exit__(self, *exc) -> None:
        self._progress.close()

    def log(self, line: str) -> None:
        if self.human and self.main:
            typer.echo(line)

    def note(self, line: str) -> None:
        if self.human and self.main:
            typer.echo(line)
        else:
            self.output.talk(line)

    def progress(self):
        return self._progress

    def report(self, report) -> None:
        for line in report_lines(report):
            self.log(line)

    def final(self, report) -> None:
        if self.human:
            typer.echo(report.summary())
            return
        result = report.accuracy.result() if report.accuracy else {}
        self.output.result({**result, **report.to_dict(), "command": "check"})   # timm's result keys first


def report_lines(report) -> list[str]:
    """The human rendering of a CheckReport (the summary line comes last, separately)."""
    against = f" against {report.against}" if report.against else ""
    lines = [f"Checking {report.candidate}{against}", f"Comparison: {report.comparison}", _inputs_line(report)]
    lines += [f"Note: {n}" for n in report.notes]
    lines += [f"Skipped: {name} ({why})" for name, why in report.skipped.items()]
    lines.append(f"{'runtime':<13} {'max_abs':>10} {'mean_abs':>10} {'cos_sim':>9} {'top1_agree':>10} "
                 f"{'top5_overlap':>12} {'img/s':>9}  result")
    lines += [_row(r) for r in report.results]
    return lines


def _inputs_line(report) -> str:
    kind = "N(0,1)" if report.inputs == "normal" else "uniform-pixel"
    tol = f"atol {report.atol:g} + rtol {report.rtol:g}*|ref|" if report.gated else "not gated (agreement only)"
    precision = "float32" if report.dtype == "fp32" else f"{report.dtype} autocast"
    h, w = report.img_size if isinstance(report.img_size, (tuple, list)) else (report.img_size, report.img_size)
    return (f"Inputs: {report.num_samples} seeded {kind} images {h}x{w} "
            f"(seed {report.seed}); {precision} on {report.device}; tolerance {tol}")


def _row(r) -> str:
    if r.error:
        return f"{r.runtime:<13} FAILED: {r.error}"
    pct = lambda v: f"{v:.2f}%" if v is not None else "-"  # noqa: E731
    ips = f"{r.images_per_s:.1f}" if r.images_per_s else "-"
    result = {True: "ok", False: "OVER", None: "agreement"}[r.within_tolerance]
    return (f"{r.runtime:<13} {r.max_abs_diff:>10.3e} {r.mean_abs_diff:>10.3e} {r.cos_sim:>9.6f} "
            f"{pct(r.top1_agreement):>10} {pct(r.top5_overlap):>12} {ips:>9}  {result}")


class _RichProgress:
    """swin_convert.check.Progress as transient rich bars on stderr (off when stderr is not a terminal).

    One bar per task, stopped when the task completes or the command ends, so lines printed
    between tasks never fight a live display.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None

    def task(self, description: str, total: int):
        if not self.enabled or total <= 0:
            return lambda n=1: None
        self.close()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        # stdout lines go above the bar only when stdout is the same terminal; piped data stays untouched
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       console=console(stderr=True), transient=True, redirect_stdout=sys.stdout.isatty(),
                       redirect_stderr=False)
        task_id = bar.add_task(description, total=total)
        bar.start()
        self._bar = bar

        def advance(n: int = 1) -> None:
            bar.advance(task_id, n)
            if bar.tasks[0].finished:
                bar.stop()
        return advance

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
