"""Training-file wrappers: DDP 'module.', {'model'}, {'state_dict'}, timm's {'state_dict_ema'},
{'model_ema'}; with plain and EMA weights --ema / --no-ema chooses, EMA by default (said)."""
from __future__ import annotations

import json

import pytest
import torch

from runtimes import save_source, small_spec
from swin_convert import api
from swin_convert.errors import UsageError


@pytest.fixture
def weights(tmp_path):
    spec = small_spec(1)
    path, _ = save_source("official", spec, tmp_path)
    plain = torch.load(path, weights_only=True)["model"]
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in plain.items()}
    return plain, ema


def _head(ckpt):
    from swin_convert.core.torch_io import to_torch
    return to_torch(ckpt.tensors["head.bias"])


@pytest.mark.parametrize("plain_key,ema_key", [("model", "model_ema"), ("state_dict", "state_dict_ema")])
def test_ema_is_the_default_and_said(tmp_path, weights, plain_key, ema_key):
    plain, ema = weights
    f = tmp_path / "train.pth"
    torch.save({plain_key: plain, ema_key: ema, "epoch": 3, "optimizer": {"lr": 0.1}}, f)
    ckpt = api.load(f)
    assert torch.equal(_head(ckpt), ema["head.bias"])
    assert any("EMA" in n and "default" in n for n in ckpt.notes)
    ckpt = api.load(f, ema=False)
    assert torch.equal(_head(ckpt), plain["head.bias"]) and any("--no-ema" in n for n in ckpt.notes)


def test_ddp_prefix_and_ema_flag_errors(tmp_path, weights, cli):
    plain, _ = weights
    f = tmp_path / "ddp.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in plain.items()}}, f)
    ckpt = api.load(f)
    assert torch.equal(_head(ckpt), plain["head.bias"]) and any("module." in n for n in ckpt.notes)
    with pytest.raises(UsageError, match="no EMA weights"):
        api.load(f, ema=True)
    r = cli("inspect", f, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert any("DDP" in n for n in json.loads(r.stdout)["notes"])
    r = cli("remap", "auto", "timm", f, "-o", tmp_path / "o", "--ema")
    assert r.returncode == 2 and r.stderr.startswith("Error:") and "--ema" in r.stderr and not (tmp_path / "o").exists()
