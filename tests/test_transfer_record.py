"""An upscale's record (what the geometry was, how it moved) travels through later remaps: their cards
and metadata say it, instead of "unchanged" (issue 13)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import swin_convert
from swin_convert.api import carried_transfer
from swin_convert.core.tensors import read_safetensors_header

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import remap_demo  # noqa: E402  (builds small random checkpoints)


def _details(folder: Path) -> str:
    card = (folder / "README.md").read_text()
    return card.split("## Conversion details", 1)[1].split("\n## ", 1)[0]


def test_swin_upscale_record_survives_two_remaps(tmp_path):
    src = tmp_path / "v2.pth"
    remap_demo.build_source(src, 2)
    up = tmp_path / "up.safetensors"
    swin_convert.upscale(src, up, window=8, res=64, command="swin-convert upscale v2.pth --window 8")
    swin_convert.remap(up, "timm", tmp_path / "t")
    swin_convert.remap(tmp_path / "t", "hf", tmp_path / "h")
    for folder in (tmp_path / "t", tmp_path / "h"):
        text = _details(folder)
        assert "Window size per stage: [4, 4, 4] → [8, 8, 4]" in text, text
        assert "(unchanged)" not in text.split("Image size")[0]
        assert "CPB re-evaluated" in text
        assert "swin-convert upscale v2.pth --window 8" in text
        assert "changed without training" in (folder / "README.md").read_text()
        meta, _ = read_safetensors_header(folder / "model.safetensors")
        assert meta["swin_convert.windows_before"] == "4,4,4"
        assert json.loads(meta["swin_convert.transfer_record"])["windows_before"] == [4, 4, 4]
        assert meta["swin_convert.layout"] == folder.name.replace("t", "timm").replace("h", "hf")


def test_vit_upscale_record_survives_remap(tmp_path):
    src = tmp_path / "vit.safetensors"
    remap_demo.build_vit(src)
    up = tmp_path / "up.safetensors"
    swin_convert.upscale(src, up, res=48, method="hf")
    swin_convert.remap(up, "hf", tmp_path / "h")
    text = _details(tmp_path / "h")
    assert "Image size: 32 → 48" in text
    assert "copied unchanged" not in text and "`hf` resampler" in text


def test_plain_remap_has_no_record(tmp_path):
    src = tmp_path / "v1.pth"
    remap_demo.build_source(src, 1)
    swin_convert.remap(src, "timm", tmp_path / "t")
    meta, _ = read_safetensors_header(tmp_path / "t" / "model.safetensors")
    assert "swin_convert.transfer_record" not in meta
    assert "Window size per stage: [4, 4, 4] (unchanged)" in _details(tmp_path / "t")


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"windows_before": [true]}', '{"method": {"a": 1}}',
                                  "{" * 100000, json.dumps({"windows_before": list(range(1000))})])
def test_untrusted_record_is_ignored(text):
    assert carried_transfer({"swin_convert.transfer_record": text}) == (None, {})
