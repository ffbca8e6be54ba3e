"""timm's registered Swin architectures (swin_convert/data/timm_swin_archs.json) and V2
pretrained windows that come from one number (issue 14).

A released ``*_window12to16_192to256`` / ``*_window12to24_192to384`` checkpoint was pretrained at
192 px, where the last stage map is 6x6 and its window clamps to 6: timm and the official
configs record (12, 12, 12, 6). Its timm config.json names the architecture and nothing more,
so the windows must come from timm's registry (the shipped table), never from repeating 12.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from runtimes import logits
from swin_convert import api
from swin_convert.families.swin.layouts.timm import TIMM_ARCHS, timm_registered
from swin_convert.families.swin.spec import SwinSpec
from swin_convert.families.swin.testing import randomize_
from swin_convert.families.swin.transfer import TransferRequest, plan_geometry, upscale_checkpoint
from test_layouts import load_target

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ("swinv2_base_window12to16_192to256", "swinv2_large_window12to16_192to256",
            "swinv2_base_window12to24_192to384", "swinv2_large_window12to24_192to384")
# Registered image size, embed dim, heads, windows and pretrained windows; one block per stage and
# 10 classes keep the four models cheap on CPU (every stage's CPB is still evaluated at its
# registered window and pretrained window). SWIN_CONVERT_FULL_SIZE=1 builds them as registered.
FULL_SIZE = os.environ.get("SWIN_CONVERT_FULL_SIZE") == "1"
REDUCED = {} if FULL_SIZE else dict(depths=(1, 1, 1, 1), num_classes=10)
TINY_V2 = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), num_classes=10)


def _generator():
    spec = importlib.util.spec_from_file_location("gen_timm_swin_archs", ROOT / "tools" / "gen_timm_swin_archs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_matches_the_installed_timm():
    shipped = json.loads((ROOT / "swin_convert" / "data" / TIMM_ARCHS).read_text())
    fresh = _generator().generate()
    assert shipped["architectures"] == fresh["architectures"], "rerun tools/gen_timm_swin_archs.py"
    assert shipped["deprecated"] == fresh["deprecated"], "rerun tools/gen_timm_swin_archs.py"
    names = set(timm.list_models(module="swin_transformer")) | set(timm.list_models(module="swin_transformer_v2"))
    assert set(shipped["architectures"]) == names


@pytest.mark.parametrize("arch", RELEASED)
def test_table_is_what_timm_builds(arch):
    """Per stage, the table's values clamp to the windows a timm model of that name has."""
    entry, _ = timm_registered(arch)
    assert entry["pretrained_window_sizes"] == [12, 12, 12, 6]
    with torch.device("meta"):
        model = timm.create_model(arch)
    assert tuple(model.patch_embed.img_size) == (entry["img_size"],) * 2
    assert model.embed_dim == entry["embed_dim"] and model.num_classes == entry["num_classes"]
    assert [len(layer.blocks) for layer in model.layers] == entry["depths"]
    assert [layer.blocks[0].attn.num_heads for layer in model.layers] == entry["num_heads"]
    assert [layer.blocks[0].attn.pretrained_window_size[0] for layer in model.layers] == [12, 12, 12, 6]
    maps = [entry["img_size"] // 4 // 2 ** i for i in range(4)]
    assert [layer.blocks[0].window_size[0] for layer in model.layers] == [min(r, entry["window_size"]) for r in maps]


def test_tags_and_deprecated_names_resolve():
    assert timm_registered("swinv2_base_window12to16_192to256.ms_in22k_ft_in1k")[1] == "swinv2_base_window12to16_192to256"
    entry, name = timm_registered("swinv2_large_window12to24_192to384_22kft1k")
    assert name == "swinv2_large_window12to24_192to384" and entry["pretrained_window_sizes"] == [12, 12, 12, 6]
    assert timm_registered("not_a_swin")[0] is None


def _released_like(arch: str, folder: Path, seed: int = 3):
    """A random model of a registered architecture, exported by timm's own save_for_hf: its
    config.json names the architecture and holds only the arguments that differ from it."""
    model = randomize_(timm.create_model(arch, pretrained=False, **REDUCED), seed).eval()
    timm.models.save_for_hf(model, folder, safe_serialization=True)
    cfg = json.loads((folder / "config.json").read_text())
    assert "window_size" not in cfg.get("model_args", {}) and "pretrained_window_sizes" not in cfg.get("model_args", {})
    return model


@pytest.mark.parametrize("arch", RELEASED)
def test_released_v2_architecture_converts_exactly(tmp_path, arch):
    """timm -> official / hf / timm: pretrained windows (12,12,12,6), logits as timm's own model."""
    model = _released_like(arch, tmp_path / "src")
    img = model.pretrained_cfg["input_size"][-1]
    x = torch.randn(1, 3, img, img, generator=torch.Generator().manual_seed(7))
    expected = logits(model, x)
    del model
    for dst in ("official", "hf", "timm"):
        ckpt, _ = api.remap(tmp_path / "src", dst, tmp_path / dst)
        assert ckpt.spec.pretrained_window_sizes == (12, 12, 12, 6)
        assert any(f"timm's registered {arch}" in n for n in ckpt.assumptions.notes), ckpt.assumptions.notes
        got = logits(load_target(dst, tmp_path / dst, ckpt.spec), x)
        assert (got - expected).abs().max().item() <= 1e-4, dst


@pytest.mark.parametrize("arch", RELEASED)
def test_bare_architecture_config_takes_everything_from_the_table(tmp_path, arch):
    """config.json with the architecture alone (no model_args, no pretrained_cfg): geometry from the table."""
    entry, _ = timm_registered(arch)
    if FULL_SIZE:
        model = timm.create_model(arch, pretrained=False)
        cfg = {"architecture": arch}
    else:   # the weights' own depths must be in model_args, or timm could not build them either
        model = timm.create_model(arch, pretrained=False, **REDUCED)
        cfg = {"architecture": arch, "model_args": {"depths": [1, 1, 1, 1], "num_classes": 10}}
    from safetensors.torch import save_file
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    report = api.inspect(tmp_path)
    spec = report.ckpt.spec
    assert spec.img_size == entry["img_size"] and spec.pretrained_window_sizes == (12, 12, 12, 6)
    w = entry["window_size"]
    assert spec.window_size == (w, w, w, w // 2)
    assert any("pretrained windows [12, 12, 12, 6]: from timm's registered" in n for n in report.to_dict()["assumed"])


# ----------------------------------------------------------------------------------------
# one pretrained window (name, flag, config scalar, upscale) is clamped, never repeated
# ----------------------------------------------------------------------------------------
def _tiny_v2(folder: Path, img: int = 256, window: int = 16, pretrained=(12, 12, 12, 6), config: dict | None = None):
    """A tiny 4-stage timm V2 model (weights only; no persisted buffers) plus a config.json."""
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    model = randomize_(timm.create_model("swinv2_tiny_window8_256", img_size=img, window_size=window,
                                         pretrained_window_sizes=pretrained, **TINY_V2), 1).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return model


def test_unregistered_name_gives_the_clamped_pretraining_geometry(tmp_path):
    """..._window{W0}to{W1}_{R0}to{R1}: W0 clamped at R0's stage maps (192 px -> 12,12,12,6)."""
    arch = "my_swinv2_tiny_window12to16_192to256_ft"
    _tiny_v2(tmp_path, config={"architecture": arch, "model_args": {"embed_dim": 16}})
    ckpt = api.load(tmp_path)
    assert (ckpt.spec.img_size, ckpt.spec.window_size) == (256, (16, 16, 16, 8))
    assert ckpt.spec.pretrained_window_sizes == (12, 12, 12, 6)
    assert any(f"one window 12 from timm architecture name '{arch}', clamped per stage at the 192 px pretraining"
               in n for n in ckpt.assumptions.notes), ckpt.assumptions.notes


def test_one_pretrained_window_flag_is_clamped_and_matches_timm(tmp_path):
    """--pretrained-window 12 on a 256 px / window 16 model means timm's (12,12,12,6), exactly."""
    model = _tiny_v2(tmp_path / "src")
    ckpt = api.load(tmp_path / "src", img_size=256, window=16, pretrained_window=12)
    assert ckpt.spec.pretrained_window_sizes == (12, 12, 12, 6)
    assert any("one window 12 from --pretrained-window, clamped per stage at the 192 px pretraining maps" in n
               for n in ckpt.assumptions.notes), ckpt.assumptions.notes
    api.save(ckpt, "timm", tmp_path / "timm")
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(7))
    got = logits(load_target("timm", tmp_path / "timm", ckpt.spec), x)
    assert (got - logits(model, x)).abs().max().item() <= 1e-4
    given = api.load(tmp_path / "src", img_size=256, window=16, pretrained_window="12,12,12,12")
    assert given.spec.pretrained_window_sizes == (12, 12, 12, 12)          # per stage: as given
    assert api.load(tmp_path / "src", img_size=256, window=16, pretrained_window=0).spec.pretrained_window_sizes \
        == (0, 0, 0, 0)


@pytest.mark.parametrize("config", [
    {"model_type": "swinv2", "image_size": 384, "window_size": 24, "pretrained_window_sizes": 12},
    {"architecture": "swinv2_tiny_window8_256", "model_args": {"img_size": 384, "window_size": 24,
                                                               "pretrained_window_sizes": 12}},
], ids=["hf", "timm"])
def test_config_scalar_pretrained_window_is_clamped(tmp_path, config):
    _tiny_v2(tmp_path, img=384, window=24, config=config)
    ckpt = api.load(tmp_path)
    assert ckpt.spec.window_size == (24, 24, 24, 12) and ckpt.spec.pretrained_window_sizes == (12, 12, 12, 6)


def test_upscale_with_one_pretrained_window_clamps_it():
    src = SwinSpec(version=2, img_size=192, window_size=(12, 12, 12, 6), **TINY_V2)
    out = plan_geometry(src, TransferRequest(window=(24,), img_size=384, pretrained_window=(12,)))
    assert out.pretrained_window_sizes == (12, 12, 12, 6)
    assert plan_geometry(src, TransferRequest(window=(24,), img_size=384)).pretrained_window_sizes == (12, 12, 12, 6)
    per_stage = plan_geometry(src, TransferRequest(window=(24,), img_size=384, pretrained_window=(12, 12, 12, 12)))
    assert per_stage.pretrained_window_sizes == (12, 12, 12, 12)


def test_upscale_summary_says_how_one_pretrained_window_was_spread():
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import TorchSource
    from swin_convert.families.swin.testing import random_reference
    spec = SwinSpec(version=2, img_size=192, window_size=(12, 12, 12, 6), **TINY_V2)
    ckpt = CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in random_reference(spec).state_dict().items()})
    result = upscale_checkpoint(ckpt, TransferRequest(window=(24,), img_size=384, pretrained_window=(12,)))
    assert "pretrained windows [12, 12, 12, 6] (one window 12, clamped per stage at the 192 px" in result.summary[0]
