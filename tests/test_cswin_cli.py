"""CSWin through the seam, as users run it (the real CLI in a subprocess): official <-> seg remaps,
the 224 -> 384 transfer tied to the official code by the golden file, refusals, check.

The golden (tests/data/cswin_golden.safetensors, tools/make_cswin_golden.py) holds a tiny CSWin
(embed 8, depths [1,2,1,1], heads [2,4,8,16], 10 classes) with re-drawn weights and its logits
from microsoft/CSWin-Transformer at 224 [1,2,7,7] and 384 [1,2,12,12].
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import run_cli
from swin_convert import api
from swin_convert.families import detect
from swin_convert.families.cswin.convert import cls_to_seg
from swin_convert.families.cswin.reference import CSWinReference
from swin_convert.families.cswin.spec import CSWinSpec

GOLDEN = Path(__file__).parent / "data" / "cswin_golden.safetensors"
HEADS = ("--heads", "2,4,8,16")     # not in official files, and no official model has embed 8


@pytest.fixture(scope="module")
def golden():
    with safe_open(str(GOLDEN), "pt") as f:
        meta, t = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cls = {k[4:]: v for k, v in t.items() if k.startswith("cls.")}
    norms = {k[4:]: v for k, v in t.items() if k.startswith("seg.")}
    return dict(spec=CSWinSpec.from_json(meta["spec"]), t=t, cls=cls, norms=norms,
                x384=t["input_u8"].float() / 64 - 2)


@pytest.fixture(scope="module")
def files(golden, tmp_path_factory):
    """The official formats: a release file, a training-saver file (plain + EMA), an mmseg checkpoint."""
    d = tmp_path_factory.mktemp("cswin")
    torch.save({"state_dict_ema": golden["cls"]}, d / "release.pth")
    plain = {k: v + 1 for k, v in golden["cls"].items()}
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in plain.items()},
                "state_dict_ema": {"module." + k: v for k, v in golden["cls"].items()}}, d / "train.pth")
    seg, _ = cls_to_seg(golden["cls"], golden["spec"], prefix="backbone.", stage_norms=golden["norms"])
    seg["decode_head.conv_seg.weight"] = torch.randn(4, 8, 1, 1)
    seg["auxiliary_head.conv_seg.bias"] = torch.randn(4)
    torch.save({"meta": {"epoch": 1}, "state_dict": seg}, d / "upernet.pth")
    return dict(dir=d, plain=plain, seg=seg)


def ok(*args):
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def refused(out: Path, *args, code: int = 2):
    r = run_cli(*args)
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.returncode == code and len(errors) == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and not out.exists()
    return errors[0]


def _pth(path: Path, key: str) -> dict:
    obj = torch.load(path, weights_only=True)
    assert list(obj) == [key]
    return obj[key]


# --------------------------------------------------------------------------------------------- detection

def test_detection_never_confuses_cswin_with_swin(golden, files):
    fam, lay, _ = detect(golden["cls"])
    assert (fam.name, lay.name) == ("cswin", "official")
    fam, lay, _ = detect(files["seg"])
    assert (fam.name, lay.name) == ("cswin", "seg")
    from swin_convert.families.swin.testing import random_reference, tiny_spec
    fam, lay, _ = detect(random_reference(tiny_spec(1), seed=0).state_dict())
    assert fam.name == "swin"


# --------------------------------------------------------------------------------------------- remaps

def test_official_seg_official_round_trip_bit_exact(golden, files, tmp_path):
    src = files["dir"] / "release.pth"
    out = ok("remap", "auto", "seg", src, *HEADS, "-o", tmp_path / "seg.safetensors")
    assert "norm -> norm4" in out and "head dropped" in out and "norm1..norm3 created as identity" in out
    seg = load_file(tmp_path / "seg.safetensors")
    want, _ = cls_to_seg(golden["cls"], golden["spec"])
    assert list(seg) == list(want)
    for k, v in want.items():
        assert torch.equal(seg[k], v), k
    meta = safe_open(str(tmp_path / "seg.safetensors"), "pt").metadata()
    assert CSWinSpec.from_json(meta["swin_convert.cswin_spec"]).split_size == (1, 2, 7, 7)
    # back: every classification tensor but the head (the seg backbone has none), bit-exact
    ok("remap", "seg", "official", tmp_path / "seg.safetensors", "-o", tmp_path / "back.pth")
    back = _pth(tmp_path / "back.pth", "state_dict_ema")
    assert set(back) == {k for k in golden["cls"] if not k.startswith("head.")}
    for k, v in back.items():
        assert torch.equal(v, golden["cls"][k]), k
    # official -> official (.safetensors with its spec) -> official .pth: everything, head included
    ok("remap", "official", "official", src, *HEADS, "-o", tmp_path / "o.safetensors")
    ok("remap", "auto", "official", tmp_path / "o.safetensors", "-o", tmp_path / "o.pth")
    again = _pth(tmp_path / "o.pth", "state_dict_ema")
    assert set(again) == set(golden["cls"])
    assert all(torch.equal(again[k], v) for k, v in golden["cls"].items())


def test_mmseg_checkpoint_to_seg_and_official(golden, files, tmp_path):
    src = files["dir"] / "upernet.pth"
    out = ok("remap", "auto", "seg", src, *HEADS, "-o", tmp_path / "seg.pth")
    assert "backbone." in out and "decode_head.* (1 tensors)" in out
    seg = _pth(tmp_path / "seg.pth", "state_dict")
    backbone = {k[len("backbone."):]: v for k, v in files["seg"].items() if k.startswith("backbone.")}
    assert list(seg) == list(backbone)                                  # seg -> seg keeps norm1..norm3
    assert all(torch.equal(seg[k], v) for k, v in backbone.items())
    out = ok("remap", "seg", "official", src, *HEADS, "-o", tmp_path / "cls.safetensors")
    assert "norm1..norm3 (the seg backbone's stage-output norms) dropped" in out
    cls = load_file(tmp_path / "cls.safetensors")
    assert torch.equal(cls["norm.weight"], golden["cls"]["norm.weight"]) and "head.weight" not in cls


def test_plain_and_ema_weights_choose_with_a_flag(golden, files, tmp_path):
    src = files["dir"] / "train.pth"
    out = ok("remap", "auto", "official", src, *HEADS, "-o", tmp_path / "ema.safetensors")
    assert "took the EMA weights ['state_dict_ema'] (default" in out and "stripped 'module.' prefix" in out
    ok("remap", "auto", "official", src, *HEADS, "--no-ema", "-o", tmp_path / "plain.safetensors")
    ema, plain = load_file(tmp_path / "ema.safetensors"), load_file(tmp_path / "plain.safetensors")
    k = "stage3.0.qkv.weight"
    assert torch.equal(ema[k], golden["cls"][k]) and torch.equal(plain[k], files["plain"][k])


def test_seg_refuses_heads_that_do_not_double(files, tmp_path):
    err = refused(tmp_path / "seg.pth", "remap", "auto", "seg", files["dir"] / "release.pth", "--heads", "2,4,8,8",
                  "-o", tmp_path / "seg.pth", code=1)
    assert "merge widths" in err


def test_inspect_says_what_was_assumed(files):
    out = ok("inspect", files["dir"] / "release.pth", *HEADS)
    assert "unwrapped ['state_dict_ema']" in out and "assumed split_size [1, 2, 7, 7] (official default" in out
    assert "branches" in out and "28x28" in out


# --------------------------------------------------------------------------------------------- upscale

def test_upscale_224_to_384_is_a_byte_copy_and_matches_the_official_384_logits(golden, files, tmp_path):
    out = ok("upscale", files["dir"] / "release.pth", *HEADS, "--res", "384", "-o", tmp_path / "c384")
    assert "[1, 2, 7, 7] -> [1, 2, 12, 12]" in out and "not comparable" in out
    tensors = load_file(tmp_path / "c384" / "model.safetensors")
    assert set(tensors) == set(golden["cls"])
    for k, v in golden["cls"].items():
        assert tensors[k].dtype == v.dtype and tensors[k].numpy().tobytes() == v.numpy().tobytes(), k
    cfg = json.loads((tmp_path / "c384" / "config.json").read_text())
    assert cfg["official_args"]["img_size"] == 384 and cfg["official_args"]["split_size"] == [1, 2, 12, 12]
    assert "--ema-finetune" in (tmp_path / "c384" / "README.md").read_text()
    ckpt = api.load(tmp_path / "c384")
    assert (ckpt.spec.img_size, ckpt.spec.split_size) == (384, (1, 2, 12, 12)) and not ckpt.assumptions.notes
    model = CSWinReference(ckpt.spec).eval()
    model.load_state_dict({k: tensors[k] for k in tensors}, strict=True)
    with torch.no_grad():
        logits = model(golden["x384"])
    assert (logits - golden["t"]["logits_384"]).abs().max().item() <= 1e-5


def test_upscale_normalises_the_ignored_last_stage_split(files, tmp_path):
    out = ok("upscale", files["dir"] / "release.pth", *HEADS, "--res", "384", "--split", "1,2,8,7",
             "-o", tmp_path / "c.safetensors")
    assert "split[3]=7 is ignored" in out
    meta = safe_open(str(tmp_path / "c.safetensors"), "pt").metadata()
    assert CSWinSpec.from_json(meta["swin_convert.cswin_spec"]).split_size == (1, 2, 8, 12)


@pytest.mark.parametrize("args,words", [
    (("--res", "384", "--split", "1,2,7,7"), "not divisible by split 7"),      # the 224 split kept at 384
    (("--res", "384", "--split", "1,2,24,24"), "one attention branch"),        # split == map: shapes change
    (("--res", "224", "--split", "1,2,14,7"), "one attention branch"),
    (("--res", "300",), "cannot run at 300 px"),
    (("--res", "384", "--window", "12"), "takes no --window"),
])
def test_upscale_refusals(files, tmp_path, args, words):
    out = tmp_path / "out.safetensors"
    err = refused(out, "upscale", files["dir"] / "release.pth", *HEADS, *args, "-o", out)
    assert words in err


def test_swin_upscale_refuses_split(tmp_path):
    from swin_convert.families.swin.testing import random_reference, tiny_spec
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import TorchSource
    spec = tiny_spec(1)
    state = random_reference(spec, seed=1).state_dict()
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in state.items()}, "random", "official"),
             "official", tmp_path / "swin.safetensors")
    out = tmp_path / "out.safetensors"
    err = refused(out, "upscale", tmp_path / "swin.safetensors", "--res", str(spec.img_size * 2), "--split",
                  "1,2,12,12", "-o", out)
    assert "split" in err


# --------------------------------------------------------------------------------------------- check

def test_check_same_geometry_is_gated_and_after_transfer_agreement_only(files, tmp_path):
    src = files["dir"] / "release.pth"
    ok("remap", "auto", "seg", src, *HEADS, "-o", tmp_path / "seg.safetensors")
    out = ok("check", tmp_path / "seg.safetensors", "--against", src, *HEADS, "--num-samples", "2")
    assert "same geometry" in out and "bit-identical" in out and "PASS max abs" in out
    ok("upscale", src, *HEADS, "--res", "384", "-o", tmp_path / "c384.safetensors")
    out = ok("check", tmp_path / "c384.safetensors", "--against", src, *HEADS, "--num-samples", "2")
    assert "agreement only" in out and "different function by design" in out
    assert "all 98 shared tensors are bit-identical" in out
