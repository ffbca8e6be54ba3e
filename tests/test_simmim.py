"""SimMIM pre-training checkpoints (read only): encoder. prefix, V2 rpe_mlp, mask token and decoder
dropped and listed; the encoder converts to a plain Swin that timm loads strictly."""
from __future__ import annotations

import pytest
import torch

import test_layouts as tl
from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.errors import IncompatibleSpecError, UsageError


def simmim_file(tmp_path, version, old_names=True):
    spec = small_spec(version, num_classes=0)
    path, model = save_source("official", spec, tmp_path)
    state = torch.load(path, weights_only=True)["model"]
    g = torch.Generator().manual_seed(1)
    enc = {}
    for k, v in state.items():
        if old_names:
            k = k.replace(".cpb_mlp.", ".rpe_mlp.")
        enc["encoder." + k] = v
    enc["encoder.mask_token"] = torch.randn(1, 1, spec.embed_dim, generator=g)
    enc["decoder.0.weight"] = torch.randn(4 ** 2 * 8 * 3, spec.num_features, 1, 1, generator=g)
    enc["decoder.0.bias"] = torch.randn(4 ** 2 * 8 * 3, generator=g)
    out = tmp_path / "simmim.pth"
    torch.save({"model": enc, "epoch": 100}, out)
    return out, spec, model


@pytest.mark.parametrize("version", (1, 2))
def test_simmim_reads_as_a_plain_swin(tmp_path, version):
    path, spec, model = simmim_file(tmp_path, version)
    ckpt = api.load(path)
    assert ckpt.source_layout == "simmim" and ckpt.spec.version == version and ckpt.spec.num_classes == 0
    assert any("decoder.* x2" in n and "encoder.mask_token" in n for n in ckpt.notes), ckpt.notes
    api.remap(path, "timm", tmp_path / "timm")
    x = fixed_input(spec)
    assert (logits(tl.load_target("timm", tmp_path / "timm", spec), x) - logits(model, x)).abs().max() <= 1e-4


def test_simmim_is_read_only(tmp_path):
    path, spec, _ = simmim_file(tmp_path, 1)
    with pytest.raises(UsageError, match="source layout only"):
        api.remap(path, "simmim", tmp_path / "x.pth")
    with pytest.raises(IncompatibleSpecError, match="reads only"):
        api.save(api.load(path), "simmim", tmp_path / "y.pth")
    assert not (tmp_path / "x.pth").exists() and not (tmp_path / "y.pth").exists()
