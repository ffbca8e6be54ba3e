"""The CLI as users run it: inspect and remap outputs."""
from __future__ import annotations

import json

import torch

from conftest import run_cli
from runtimes import save_source, small_spec


def test_inspect_reports_geometry_and_assumptions(tmp_path):
    path, _ = save_source("timm", small_spec(1), tmp_path)
    result = run_cli("inspect", path)
    assert result.returncode == 0, result.stderr
    assert "timm" in result.stdout and "Swin V1" in result.stdout
    assert "assumed" in result.stdout and "image size" in result.stdout


def test_inspect_json(tmp_path):
    path, _ = save_source("official", small_spec(2), tmp_path)
    result = run_cli("inspect", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["layout"] == "official" and report["version"] == 2
    assert report["spec"]["pretrained_window_sizes"] == [3, 3, 3]     # read back from the coordinate table
    assert report["spec"]["img_size"] == 64 and report["assumed"] == []  # from the persisted masks
    assert report["shift_sizes"] == [2, 2, 0]


def test_remap_to_pth_is_official_style(tmp_path):
    path, _ = save_source("timm", small_spec(1), tmp_path)
    out = tmp_path / "x.pth"
    result = run_cli("remap", "timm", "official", path, "-o", out)
    assert result.returncode == 0, result.stderr
    obj = torch.load(out, weights_only=True)
    assert set(obj) == {"model"} and "layers.0.downsample.reduction.weight" in obj["model"]
    assert "layers.0.blocks.1.attn_mask" in obj["model"]


def test_remap_folders_have_loader_files(tmp_path):
    path, _ = save_source("official", small_spec(1), tmp_path)
    for layout, files in (("timm", {"config.json", "model.safetensors"}),
                          ("hf", {"config.json", "model.safetensors", "preprocessor_config.json"})):
        out = tmp_path / layout
        result = run_cli("remap", "auto", layout, path, "-o", out)
        assert result.returncode == 0, result.stderr
        assert files <= {p.name for p in out.iterdir()}
    cfg = json.loads((tmp_path / "timm" / "config.json").read_text())
    assert cfg["model_args"]["window_size"] == 4 and cfg["model_args"]["img_size"] == 64
    hf = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf["model_type"] == "swin" and hf["window_size"] == 4


def test_overwrite_replaces_a_folder(tmp_path):
    path, _ = save_source("official", small_spec(1), tmp_path)
    out = tmp_path / "o"
    assert run_cli("remap", "auto", "timm", path, "-o", out).returncode == 0
    (out / "stale.txt").write_text("old")
    assert run_cli("remap", "auto", "timm", path, "-o", out, "--overwrite").returncode == 0
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").exists()
