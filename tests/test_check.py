"""`swin-convert check` and swin_convert.check / swin_convert.imagedata.

Correct conversions must pass in every runtime; conversions corrupted the way real converter
bugs corrupt them (edited in the written safetensors) must exit 3. The accuracy path runs on
PNGs generated here and is compared with a direct evaluation and with timm's own transform.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from swin_convert import api
from swin_convert.check import engine as chk, imagedata
from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.cli import app
from swin_convert.errors import CheckFailedError, IncompatibleSpecError, SwinConvertError, UsageError
from swin_convert.families.swin.reference import build_reference
from swin_convert.core.tensors import TorchSource
from swin_convert.families.swin.testing import random_reference, tiny_spec
from swin_convert.core.torch_io import to_torch

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def canonical(spec, seed: int = 0, trained_like: bool = False) -> CanonicalCheckpoint:
    model = random_reference(spec, seed)
    if trained_like:
        trained_like_(model)
    return CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}, "random",
                               "official")


@torch.no_grad()
def trained_like_(model) -> None:
    """V2 logit scales at their init (log 10) and logits spread like ImageNet's (std 3): what the
    reduced-precision tolerances were calibrated on (randomize_ puts some scales past the clamp,
    which makes bf16 noise as large as a corruption)."""
    for name, p in model.named_parameters():
        if name.endswith("logit_scale"):
            p.fill_(float(np.log(10)))
    x = torch.randn(8, 3, model.spec.img_size, model.spec.img_size, generator=torch.Generator().manual_seed(1))
    scale = 3.0 / float(model(x).std())
    model.head.weight.mul_(scale)
    model.head.bias.mul_(scale)


def write_source(folder: Path, version: int, seed: int = 0, trained_like: bool = False, **kw) -> Path:
    """A random official-layout checkpoint (the ground truth)."""
    path = folder / f"v{version}_source{'_trained' if trained_like else ''}.safetensors"
    api.save(canonical(tiny_spec(version, **kw), seed + version, trained_like), "official", path)
    return path


def convert(source: Path, layout: str, out: Path) -> Path:
    api.remap(source, layout, out)
    return out


def upscale(source: Path, out: Path, layout: str = "timm", **request) -> Path:
    from swin_convert.families.swin.transfer import TransferRequest, upscale_checkpoint
    result = upscale_checkpoint(api.load(source), TransferRequest(**request))
    api.save(result.checkpoint, layout, out, extra_meta=result.metadata)
    return out


def check(*args) -> tuple[int, str, str]:
    result = runner.invoke(app, ["check", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def check_json(*args) -> tuple[int, dict]:
    code, out, err = check(*args, "--format", "json")
    assert out.strip(), err
    return code, json.loads(out)


def edit_safetensors(folder: Path, tensors_fn=None, meta_fn=None) -> None:
    """Rewrite folder/model.safetensors with edited tensors and/or metadata (a corrupted conversion)."""
    path = folder / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    if tensors_fn:
        tensors_fn(tensors)
    if meta_fn:
        meta_fn(meta)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)


# ----------------------------------------------------------------------------------------
# corruptions, each the signature of a real converter bug (timm-layout keys)
# ----------------------------------------------------------------------------------------
def swap_qk(t):
    """q and k row blocks of a fused qkv swapped (a wrong split order)."""
    w = t["layers.1.blocks.1.attn.qkv.weight"]
    c = w.shape[0] // 3
    t["layers.1.blocks.1.attn.qkv.weight"] = torch.cat([w[c:2 * c], w[:c], w[2 * c:]])


def flip_table(t):
    """V1 bias table reversed along its rows (offset (dy, dx) read as (-dy, -dx))."""
    key = "layers.0.blocks.0.attn.relative_position_bias_table"
    t[key] = t[key].flip(0)


def transpose_table(t):
    """V1 bias table with dy and dx exchanged."""
    key = "layers.1.blocks.0.attn.relative_position_bias_table"
    rows, heads = t[key].shape
    side = int(rows ** 0.5)
    t[key] = t[key].view(side, side, heads).transpose(0, 1).reshape(rows, heads)


def permute_table_heads(t):
    """V1 bias table columns (heads) in the wrong order."""
    key = "layers.2.blocks.0.attn.relative_position_bias_table"
    t[key] = t[key][:, [1, 0, 3, 2]]


def permute_cpb_heads(t):
    """V2 CPB output rows (heads) in the wrong order."""
    key = "layers.2.blocks.1.attn.cpb_mlp.2.weight"
    t[key] = t[key][[1, 0, 3, 2]]


def swap_cpb_coords(t):
    """V2 CPB MLP input columns exchanged (coordinates read as (dx, dy))."""
    key = "layers.0.blocks.0.attn.cpb_mlp.0.weight"
    t[key] = t[key][:, [1, 0]]


def merge_channel_order(t):
    """Patch-merging reduction fed mmdet's unfold order [0, 2, 1, 3] instead of the official one."""
    key = "layers.1.downsample.reduction.weight"     # timm: merge at the start of the next stage
    chunks = t[key].chunk(4, dim=1)
    t[key] = torch.cat([chunks[i] for i in (0, 2, 1, 3)], 1)


def wrong_pretrained_window(folder: Path):
    """V2 output recording pretrained window 8 where the source normalised by its own window 4."""
    def meta_fn(meta):
        spec = json.loads(meta["swin_convert.spec"])
        spec["pretrained_window_sizes"] = [8] * len(spec["depths"])
        meta["swin_convert.spec"] = json.dumps(spec)
    edit_safetensors(folder, meta_fn=meta_fn)
    config = json.loads((folder / "config.json").read_text())
    config["model_args"]["pretrained_window_sizes"] = [8, 8, 8]
    (folder / "config.json").write_text(json.dumps(config))


TENSOR_CORRUPTIONS = [
    (1, swap_qk), (2, swap_qk), (1, flip_table), (1, transpose_table), (1, permute_table_heads),
    (2, permute_cpb_heads), (2, swap_cpb_coords), (1, merge_channel_order), (2, merge_channel_order),
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {v: write_source(root, v) for v in (1, 2)}


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory):
    """{(version, layout): folder} converted from the official sources."""
    root = tmp_path_factory.mktemp("converted")
    return {(v, layout): convert(sources[v], layout, root / f"v{v}_{layout}")
            for v in (1, 2) for layout in ("timm", "hf")}


# ----------------------------------------------------------------------------------------
# correct conversions pass
# ----------------------------------------------------------------------------------------
def _installed(runtime: str) -> bool:
    from swin_convert.check.runtimes import installed
    return installed(runtime)


@pytest.mark.parametrize("layout", ["timm", "hf"])
@pytest.mark.parametrize("version", [1, 2])
def test_correct_conversion_passes_in_every_runtime(sources, converted, version, layout):
    code, out, err = check(converted[version, layout], "--against", sources[version], "--runtime", "all")
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith(" * PASS max abs logits diff")
    for runtime in [r for r in chk.RUNTIMES if _installed(r)]:
        assert any(line.startswith(runtime) and line.endswith("ok") for line in out.splitlines()), out


def test_json_report_has_a_row_per_runtime_within_tolerance(sources, converted):
    code, report = check_json(converted[2, "timm"], "--against", sources[2], "--runtime", "all",
                              "--num-samples", "8")
    assert code == 0
    installed = [r for r in chk.RUNTIMES if _installed(r)]
    assert report["passed"] is True and report["gated"] is True
    assert all(r not in installed for r in report["skipped"]), report["skipped"]
    assert [r["runtime"] for r in report["runtimes"]] == installed
    for row in report["runtimes"]:
        assert row["within_tolerance"] and row["max_abs_diff"] < 1e-4 and row["top1_agreement"] == 100.0
        assert row["cos_sim"] > 0.99999 and row["images_per_s"] > 0
    assert report["num_samples"] == 8 and (report["atol"], report["rtol"]) == (1e-4, 1e-3)


def test_candidate_alone_is_checked_across_runtimes(converted):
    code, report = check_json(converted[1, "hf"], "--runtime", "all")
    assert code == 0 and report["against"] is None
    assert "candidate's own weights" in report["comparison"]
    assert report["runtimes"][0]["max_abs_diff"] == 0.0      # reference vs itself, fp32 CPU


# ----------------------------------------------------------------------------------------
# corrupted conversions fail with exit code 3
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version,corrupt", TENSOR_CORRUPTIONS,
                         ids=[f"v{v}-{f.__name__}" for v, f in TENSOR_CORRUPTIONS])
def test_corrupted_conversion_exits_3(sources, converted, tmp_path, version, corrupt):
    bad = shutil.copytree(converted[version, "timm"], tmp_path / "bad")
    edit_safetensors(bad, corrupt)
    code, out, err = check(bad, "--against", sources[version])
    assert code == 3, out + err
    summary = out.splitlines()[-1]
    assert summary.startswith(" * FAIL reference: max abs logits diff")
    assert float(summary.rsplit("(", 1)[1].split("x")[0]) > 100      # far beyond fp32 noise
    assert "Error: The check failed in reference" in err


def test_wrong_pretrained_window_fails_in_every_runtime(sources, converted, tmp_path):
    bad = shutil.copytree(converted[2, "timm"], tmp_path / "bad")
    wrong_pretrained_window(bad)
    assert api.load(bad).spec.pretrained_window_sizes == (8, 8, 8)
    code, report = check_json(bad, "--against", sources[2], "--runtime", "all")
    assert code == 3
    assert len(report["runtimes"]) >= 3 and not any(r["within_tolerance"] for r in report["runtimes"])
    assert any("pretrained windows differ" in n for n in report["notes"])


def test_corruption_is_caught_by_timm_and_transformers_too(sources, converted, tmp_path):
    bad = shutil.copytree(converted[1, "hf"], tmp_path / "bad")
    hf_key = "swin.encoder.layers.0.blocks.0.attention.self.relative_position_bias_table"
    edit_safetensors(bad, lambda t: t.__setitem__(hf_key, t[hf_key].flip(0)))
    code, report = check_json(bad, "--against", sources[1], "--runtime", "all")
    assert code == 3
    assert all(r["tol_ratio"] > 10 for r in report["runtimes"])


def test_runtime_that_cannot_load_strictly_is_a_failure(sources, converted, tmp_path):
    bad = shutil.copytree(converted[1, "timm"], tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["model_args"]["depths"] = [2, 2, 1]      # the config timm users load disagrees with the weights
    (bad / "config.json").write_text(json.dumps(config))
    code, out, err = check(bad, "--against", sources[1], "--runtime", "reference,timm")
    assert code == 3
    row = next(line for line in out.splitlines() if line.startswith("timm "))
    assert "FAILED: timm could not load the weights strictly: 13 unexpected key(s) (layers.2.blocks.1." in row


def test_transformers_config_mismatch_is_a_failure(sources, converted, tmp_path):
    bad = shutil.copytree(converted[2, "hf"], tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["num_heads"] = [1, 2, 2]          # its own config.json is what from_pretrained uses
    (bad / "config.json").write_text(json.dumps(config))
    code, report = check_json(bad, "--against", sources[2], "--runtime", "transformers")
    assert code == 3
    assert report["runtimes"][0]["error"].startswith("transformers could not")


# ----------------------------------------------------------------------------------------
# geometry changes
# ----------------------------------------------------------------------------------------
def test_v2_upscaled_passes_against_source_at_new_geometry(sources, tmp_path):
    cand = upscale(sources[2], tmp_path / "up", window=(8,), img_size=128)
    assert api.load(cand).spec.window_size == (8, 8, 8)
    code, report = check_json(cand, "--against", sources[2], "--runtime", "all", "--num-samples", "8")
    assert code == 0, report
    assert report["gated"] is True and "evaluated at the candidate's geometry" in report["comparison"]
    assert "window [4, 4, 4] -> [8, 8, 8], 64 -> 128 px" in report["comparison"]
    assert report["max_abs_diff"] < 1e-4 and report["img_size"] == 128


def test_v2_upscaled_with_corruption_still_fails(sources, tmp_path):
    cand = upscale(sources[2], tmp_path / "up", window=(8,), img_size=128)
    edit_safetensors(cand, swap_cpb_coords)
    code, _, _ = check(cand, "--against", sources[2])
    assert code == 3


def test_v1_upscaled_reports_agreement_without_failing(sources, tmp_path):
    cand = upscale(sources[1], tmp_path / "up", window=(8,), img_size=128)
    code, out, err = check(cand, "--against", sources[1], "--runtime", "all")
    assert code == 0, out + err
    assert "bias tables were resized" in out and "agreement only (not gated)" in out
    assert out.splitlines()[-1].startswith(" * PASS agreement only (not gated): cos sim")
    code, report = check_json(cand, "--against", sources[1])
    assert report["gated"] is False and report["runtimes"][0]["within_tolerance"] is None


def test_v1_new_resolution_same_windows_is_exact(sources, tmp_path):
    cand = upscale(sources[1], tmp_path / "up", img_size=128)    # windows stay 4: the tables fit
    code, report = check_json(cand, "--against", sources[1])
    assert code == 0 and report["gated"] is True and report["max_abs_diff"] < 1e-4


def test_head_rows_kept_from_source_compare_on_those_logits(sources, tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("3\n1\n7\n")
    cand = upscale(sources[1], tmp_path / "up", head_map=rows)
    code, report = check_json(cand, "--against", sources[1], "--runtime", "all")
    assert code == 0, report
    assert "keeps 3 of the source's 10 classes" in report["comparison"] and report["output"] == "logits"


def test_new_head_compares_pooled_features(sources, tmp_path):
    cand = upscale(sources[2], tmp_path / "up", num_classes=0)
    code, report = check_json(cand, "--against", sources[2], "--runtime", "all")
    assert code == 0, report
    assert report["output"] == "features" and report["runtimes"][0]["top1_agreement"] is None
    assert report["max_abs_diff"] < 1e-4


def test_different_architecture_is_refused(sources, tmp_path):
    other = write_source(tmp_path, 1, embed_dim=32)
    with pytest.raises(IncompatibleSpecError, match="embed_dim 32 vs 16"):
        api.check(other, sources[1])


# ----------------------------------------------------------------------------------------
# runtimes: selection, skipping, errors
# ----------------------------------------------------------------------------------------
def test_all_skips_runtimes_that_cannot_express_the_spec(tmp_path):
    src = write_source(tmp_path, 1, window_size=(8, 8, 4))   # per-stage windows: transformers' Swin can't
    code, report = check_json(src, "--runtime", "all", "--num-samples", "4")
    assert code == 0
    ran = [r["runtime"] for r in report["runtimes"]]
    assert ran[:2] == ["reference", "timm"] and set(ran) <= {"reference", "timm", "mmpretrain"}   # per-stage windows
    assert "one window_size for every stage" in report["skipped"]["transformers"]
    assert "one window for every stage" in report["skipped"]["torchvision"]
    code, out, err = check(src, "--runtime", "transformers")
    assert code == 1 and "cannot run this model" in err


def test_missing_runtime_is_skipped_by_all_and_an_error_when_asked(converted, monkeypatch):
    from swin_convert.check import runtimes
    monkeypatch.setattr(runtimes, "installed", lambda r, family="swin": r != "timm")
    names, skipped = chk.resolve_runtimes(["all"], api.load(converted[1, "timm"]).spec)
    assert names[:2] == ["reference", "transformers"] and "timm" not in names and "swin-convert[timm]" in skipped["timm"]
    code, out, err = check(converted[1, "timm"], "--runtime", "timm")
    assert code == 1 and "The timm runtime is not installed." in err and "pip install" in err


@pytest.mark.parametrize("args,message", [
    (["--runtime", "onnx"], "Unknown runtime 'onnx'"),
    (["--dtype", "fp8"], "Unknown dtype 'fp8'"),
    (["--results-file", "r.csv"], "--results-file writes accuracy results, which need --data"),
    (["--num-samples", "0"], "--num-samples must be at least 1"),
    (["--format", "yaml"], "Unknown --format 'yaml'"),
])
def test_bad_requests_exit_2(converted, args, message):
    code, out, err = check(converted[1, "timm"], *args)
    assert code == 2 and message in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(converted):
    code, _, err = check(converted[1, "timm"], "--device", "cuda")
    assert code == 2 and "no CUDA device is available" in err


def test_reduced_precision_uses_looser_default_tolerances(converted):
    code, report = check_json(converted[1, "timm"], "--dtype", "bf16", "--num-samples", "8", "--runtime", "timm")
    assert (report["atol"], report["rtol"]) == chk.DEFAULT_TOLERANCES["bf16"]
    assert code == 0 and 0 < report["max_abs_diff"] < 0.1      # bf16 noise: visible, within tolerance


def test_report_api_raises_check_failed(sources, converted, tmp_path):
    bad = shutil.copytree(converted[1, "timm"], tmp_path / "bad")
    edit_safetensors(bad, flip_table)
    report = api.check(bad, sources[1], num_samples=4)
    assert not report.passed and report.summary().startswith(" * FAIL")
    with pytest.raises(CheckFailedError) as info:
        report.raise_for_status()
    assert info.value.exit_code == 3


def test_compare_outputs_uses_the_allclose_rule():
    truth = torch.tensor([[1.0, -2.0, 0.0]])
    ok = chk.compare_outputs(truth + torch.tensor([[1e-3, -2e-3, 5e-5]]), truth, atol=1e-4, rtol=1e-3)
    assert ok["within_tolerance"] and ok["tol_ratio"] == pytest.approx(2 / 2.1, rel=1e-3)
    over = chk.compare_outputs(truth + torch.tensor([[0.0, 0.0, 2e-4]]), truth, atol=1e-4, rtol=1e-3)
    assert not over["within_tolerance"]
    nan = chk.compare_outputs(torch.full_like(truth, float("nan")), truth, atol=1.0, rtol=1.0)
    assert not nan["within_tolerance"]


def test_top5_overlap_and_agreement():
    a = torch.tensor([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]])
    b = torch.tensor([[5.0, 4, 3, 2, 0, 1], [0, 1, 2, 3, 5, 4]])
    assert chk.top1_agreement(a, b) == 50.0
    assert chk.topk_overlap(a, b, 5) == pytest.approx(90.0)


# ----------------------------------------------------------------------------------------
# model card
# ----------------------------------------------------------------------------------------
def test_write_card_records_the_result(sources, converted, tmp_path):
    cand = shutil.copytree(converted[1, "timm"], tmp_path / "cand")
    code, out, err = check(cand, "--against", sources[1], "--write-card")
    assert code == 0, out + err
    card = (cand / "README.md").read_text()
    assert "## Verification" in card and "| Result | PASS |" in card and "Max abs logit diff" in card
    assert card.count("## Verification") == 1


def test_write_card_needs_a_folder(sources):
    code, _, err = check(sources[1], "--write-card")
    assert code == 2 and "needs the candidate to be a local folder" in err


# ----------------------------------------------------------------------------------------
# accuracy on an image folder
# ----------------------------------------------------------------------------------------
CLASSES = ("ant", "bee", "cat")


def make_images(folder: Path, per_class: int = 7) -> list[tuple[str, str]]:
    """Random PNGs of assorted sizes in class subfolders; returns (relative path, class)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    made = []
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(56, 120)), int(rng.integers(56, 120))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"img{i}.png")
            made.append((f"{name}/img{i}.png", name))
    return made


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    make_images(folder)
    return folder


def direct_accuracy(ckpt, folder: Path, crop_pct: float, interpolation: str) -> tuple[float, float]:
    """Top-1/top-5 computed by hand: our transform, the reference model, sorted class folders."""
    model = build_reference(ckpt.spec, {k: to_torch(v) for k, v in ckpt.tensors.items()})
    tf = imagedata.EvalTransform(ckpt.spec.img_size, crop_pct, interpolation, (0.485, 0.456, 0.406),
                                 (0.229, 0.224, 0.225))
    from PIL import Image
    hits1 = hits5 = total = 0
    for label, name in enumerate(CLASSES):
        for path in sorted((folder / name).iterdir()):
            with torch.no_grad():
                logits = model(tf(Image.open(path).convert("RGB"))[None])[0]
            top = logits.topk(5).indices.tolist()
            hits1, hits5, total = hits1 + (top[0] == label), hits5 + (label in top), total + 1
    return 100 * hits1 / total, 100 * hits5 / total


def test_accuracy_matches_direct_evaluation(converted, image_folder):
    ckpt = api.load(converted[1, "timm"])
    acc = api.evaluate_accuracy(ckpt, image_folder, workers=0, batch_size=4)
    top1, top5 = direct_accuracy(ckpt, image_folder, 0.9, "bicubic")
    assert acc.num_images == 21
    assert acc.top1 == pytest.approx(top1) and acc.top5 == pytest.approx(top5)
    assert (acc.crop_pct, acc.interpolation) == (0.9, "bicubic")     # data_config defaults for 64 px


@pytest.mark.parametrize("interpolation,crop_pct", [("bicubic", 0.875), ("bilinear", 1.0), ("bicubic", 0.95)])
def test_eval_transform_matches_timm(image_folder, interpolation, crop_pct):
    pytest.importorskip("torchvision")
    from PIL import Image
    from timm.data import create_transform
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ours = imagedata.EvalTransform(64, crop_pct, interpolation, mean, std)
    theirs = create_transform(input_size=(3, 64, 64), interpolation=interpolation, crop_pct=crop_pct,
                              mean=mean, std=std, crop_mode="center")
    for path in sorted(image_folder.rglob("*.png"))[:6]:
        image = Image.open(path).convert("RGB")
        assert torch.equal(ours(image), theirs(image)), path


def test_accuracy_cli_json_and_results_csv(converted, image_folder, tmp_path):
    csv_path = tmp_path / "results.csv"
    code, report = check_json(converted[2, "timm"], "--data", image_folder, "--results-file", csv_path,
                              "--workers", "2", "--batch-size", "8", "--crop-pct", "1.0",
                              "--interpolation", "bilinear")
    assert code == 0
    assert list(report)[:9] == ["model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size",
                                "crop_pct", "interpolation"]
    assert report["top1"] + report["top1_err"] == pytest.approx(100)
    assert (report["img_size"], report["crop_pct"], report["interpolation"]) == (64, 1.0, "bilinear")
    assert report["param_count"] == round(api.load(converted[2, "timm"]).num_params / 1e6, 2)
    assert report["passed"] is True and "max_abs_diff" in report
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["model", "img_size", "top1", "top1_err", "top5", "top5_err", "param_count", "crop_pct",
                       "interpolation"]
    assert rows[1] == [str(report[k]) for k in rows[0]]


def test_accuracy_human_output_reads_like_validate_py(converted, image_folder):
    code, out, err = check(converted[1, "timm"], "--data", image_folder, "--workers", "0", "--batch-size", "5",
                           "--log-freq", "2")
    assert code == 0, out + err
    lines = out.splitlines()
    assert "Data processing configuration for current model + dataset:" in lines
    assert "\tinterpolation: bicubic" in lines and "\tcrop_pct: 0.9" in lines and "\tinput_size: (3, 64, 64)" in lines
    tests = [line for line in lines if line.startswith("Test: [")]
    assert [t[:13] for t in tests] == ["Test: [   0/5", "Test: [   2/5", "Test: [   4/5"]
    assert "Acc@1:" in tests[0] and "Acc@5:" in tests[0] and "/s)" in tests[0]
    assert lines[-2].startswith(" * Acc@1 ") and lines[-1].startswith(" * PASS")


def test_flat_folder_with_labels_file_gives_the_same_accuracy(converted, image_folder, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = []
    for label, name in enumerate(CLASSES):
        for path in sorted((image_folder / name).iterdir()):
            shutil.copy(path, flat / f"{name}_{path.name}")
            lines.append(f"{name}_{path.name} {label}")
    (tmp_path / "labels.txt").write_text("# file label\n" + "\n".join(lines) + "\n")
    ckpt = api.load(converted[1, "timm"])
    a = api.evaluate_accuracy(ckpt, image_folder, workers=0)
    b = api.evaluate_accuracy(ckpt, flat, labels=tmp_path / "labels.txt", workers=0)
    assert (a.top1, a.top5, a.num_images) == (b.top1, b.top5, b.num_images)


def test_integer_folder_names_are_class_indices(tmp_path):
    for name in ("0", "3", "7"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(b"")
    samples = imagedata.find_samples(tmp_path)
    assert samples.labels == [0, 3, 7] and samples.classes == []


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "has no class subfolders"),
    (lambda p: (p / "a").mkdir(), "No images"),
])
def test_bad_image_folders_are_explained(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(SwinConvertError, match=message):
        imagedata.find_samples(tmp_path)


def test_labels_file_errors_name_the_line(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    labels = tmp_path / "labels.txt"
    labels.write_text("a.png 1\nb.png 2\n")
    with pytest.raises(SwinConvertError, match="Line 2 .* names 'b.png'"):
        imagedata.find_samples(tmp_path, labels)
    labels.write_text("a.png one\n")
    with pytest.raises(SwinConvertError, match="Line 1 .* is not 'filename label'"):
        imagedata.find_samples(tmp_path, labels)


def test_labels_beyond_the_head_are_refused(converted, tmp_path):
    make_images(tmp_path / "data", per_class=1)
    (tmp_path / "data" / "ant").rename(tmp_path / "data" / "12")
    for name in ("bee", "cat"):
        shutil.rmtree(tmp_path / "data" / name)
    with pytest.raises(UsageError, match="class index 12 but the model has 10 classes"):
        api.evaluate_accuracy(api.load(converted[1, "timm"]), tmp_path / "data", workers=0)


def test_missing_pillow_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(SwinConvertError, match="needs Pillow") as info:
        imagedata.require_pil()
    assert "swin-convert[images]" in info.value.hint


# ----------------------------------------------------------------------------------------
# distributed (torchrun, gloo on CPU)
# ----------------------------------------------------------------------------------------
def test_shard_and_unshard_round_trip():
    for n, world in ((7, 2), (5, 3), (2, 4)):
        parts = [torch.arange(n)[chk.shard_indices(n, r, world)] for r in range(world)]
        assert sorted(sum((p.tolist() for p in parts), [])) == list(range(n))
        assert torch.equal(chk.unshard([p[:, None].float() for p in parts], n)[:, 0], torch.arange(n).float())


def test_torchrun_two_processes_match_a_single_process(converted, image_folder):
    args = [str(ROOT / "cli.py"), "check", str(converted[1, "timm"]), "--data", str(image_folder),
            "--format", "json", "--workers", "0", "--num-samples", "7", "--batch-size", "4", "--runtime", "all"]
    env = dict(os.environ, OMP_NUM_THREADS="1", NO_COLOR="1")
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                            *args], capture_output=True, text=True, env=env, timeout=120)
    assert multi.returncode == 0, multi.stderr[-3000:]
    single = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)
    a, b = json.loads(multi.stdout), json.loads(single.stdout)        # one dict: only rank 0 printed
    assert (a["top1"], a["top5"]) == (b["top1"], b["top5"])
    for ra, rb in zip(a["runtimes"], b["runtimes"]):
        assert ra["max_abs_diff"] == pytest.approx(rb["max_abs_diff"], abs=1e-6)
        assert ra["top1_agreement"] == rb["top1_agreement"]


# ----------------------------------------------------------------------------------------
# start-up cost
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"]])
def test_help_does_not_import_torch(argv):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom swin_convert.cli import app\n"
            f"r = CliRunner().invoke(app, {argv!r})\nassert r.exit_code == 0, r.output\n"
            "assert '--against' in r.output or 'check' in r.output\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'transformers', 'PIL')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------
# GPU
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """{version: (source, timm folder)} of models like the ones the tolerances were calibrated on."""
    root = tmp_path_factory.mktemp("trained_like")
    out = {}
    for v in (1, 2):
        src = write_source(root, v, trained_like=True)
        out[v] = src, convert(src, "timm", root / f"v{v}_timm")
    return out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("version", [1, 2])
def test_cuda_check_passes(trained_like, version, dtype):
    src, cand = trained_like[version]
    code, report = check_json(cand, "--against", src, "--device", "cuda", "--dtype", dtype, "--runtime", "all",
                              "--channels-last", "--num-samples", "64")
    assert code == 0, report
    assert report["device"] == "cuda" and all(r["within_tolerance"] for r in report["runtimes"])
    assert report["source_noise"] is None if dtype == "fp32" else report["source_noise"] < 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_cuda_reduced_precision_still_catches_corruption(trained_like, tmp_path, dtype):
    src, cand = trained_like[1]
    bad = shutil.copytree(cand, tmp_path / "bad")

    def flip_every_table(t):      # a wrong table mapping hits every block
        for key in [k for k in t if k.endswith("relative_position_bias_table")]:
            t[key] = t[key].flip(0)
    edit_safetensors(bad, flip_every_table)
    code, report = check_json(bad, "--against", src, "--device", "cuda", "--dtype", dtype, "--num-samples", "64")
    assert code == 3 and report["runtimes"][0]["tol_ratio"] > 1.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_compile(sources, converted):
    code, report = check_json(converted[2, "timm"], "--against", sources[2], "--device", "cuda", "--compile",
                              "--runtime", "reference,timm", "--num-samples", "8")
    assert code == 0, report


def test_face_check_stays_the_function_after_the_subpackage_is_imported():
    import swin_convert
    import swin_convert.check.engine  # noqa: F401  (the import system sets swin_convert.check)
    assert callable(swin_convert.check) and swin_convert.check.__module__ == "swin_convert.api"
