"""OpenMMLab layouts (mmpretrain V1/V2, mmdet V1, mmseg V1) and whole-model checkpoints.

The Unfold order is checked against a real ``nn.Unfold``; mmpretrain (when installed) is a real
runtime: sources built in it, targets loaded into it. mmdet/mmseg do not import with mmcv-lite,
so their files are checked key for key against layouts.md §1.9a / §2.7 (mmdet's own reorder
formula as the witness) and loaded into mmpretrain's identical V1 blocks.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import test_layouts as tl
from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.core.ops import UNFOLD_ORDER
from swin_convert.core.tensors import TorchSource
from swin_convert.core.torch_io import to_torch
from swin_convert.errors import LayoutError
from swin_convert.families import detect
from swin_convert.families.swin.testing import randomize_


def mm_reduction(w):            # mmdet ckpt_convert.correct_unfold_reduction_order
    out, inp = w.shape
    return w.reshape(out, 4, inp // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out, inp)


def mm_norm(x):                 # mmdet ckpt_convert.correct_unfold_norm_order
    inp = x.shape[0]
    return x.reshape(4, inp // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(inp)


# ----------------------------------------------------------------------------------------
# the Unfold permutation
# ----------------------------------------------------------------------------------------
def test_unfold_order_computes_the_official_merge():
    """Patch merging built with a real nn.Unfold, weights in UNFOLD_ORDER, equals the official
    concat-then-reduce (V1: norm before the reduction, also permuted); bit-exact inverse."""
    g = torch.Generator().manual_seed(0)
    c = 6
    x = torch.randn(2, c, 8, 8, generator=g)
    norm_w, norm_b = 1 + 0.2 * torch.randn(4 * c, generator=g), 0.1 * torch.randn(4 * c, generator=g)
    red = torch.randn(2 * c, 4 * c, generator=g)
    t = x.permute(0, 2, 3, 1)
    official = torch.cat([t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]], -1)
    expected = nn.functional.layer_norm(official, (4 * c,), norm_w, norm_b) @ red.T

    conv = lambda v: to_torch(UNFOLD_ORDER.to_layout([TorchSource(v)])[0])  # noqa: E731
    unfolded = nn.Unfold(kernel_size=2, stride=2)(x).transpose(1, 2).reshape(2, 4, 4, 4 * c)
    got = nn.functional.layer_norm(unfolded, (4 * c,), conv(norm_w), conv(norm_b)) @ conv(red).T
    assert (got - expected).abs().max() < 1e-5
    assert torch.equal(conv(red), mm_reduction(red)) and torch.equal(conv(norm_w), mm_norm(norm_w))
    back = to_torch(UNFOLD_ORDER.to_canonical([TorchSource(conv(red))])[0])
    assert torch.equal(back, red)


# ----------------------------------------------------------------------------------------
# mmdet / mmseg: key for key against the facts
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target,prefix", [("mmdet", "backbone."), ("mmseg", "")])
def test_mmdet_mmseg_key_for_key(tmp_path, target, prefix):
    spec = small_spec(1)
    path, _ = save_source("official", spec, tmp_path)
    off = torch.load(path, weights_only=True)["model"]
    out = tmp_path / f"{target}.pth"
    _, result = api.remap(path, target, out)
    file = torch.load(out, weights_only=False)
    assert set(file) == {"state_dict", "meta"}
    sd, p = file["state_dict"], prefix
    expected = {}
    for k, v in off.items():
        if k.startswith("head.") or k.endswith("attn_mask"):
            continue                                                # no head, no mask buffer
        new = k.replace("patch_embed.proj.", "patch_embed.projection.").replace(".attn.", ".attn.w_msa.")
        new = new.replace("mlp.fc1.", "ffn.layers.0.0.").replace("mlp.fc2.", "ffn.layers.1.")
        if new.startswith("norm."):
            new = new.replace("norm.", f"norm{spec.num_stages - 1}.")
        new = new.replace("layers.", "stages.", 1)
        if "downsample.reduction" in k:
            v = mm_reduction(v)
        elif "downsample.norm" in k:
            v = mm_norm(v)
        expected[p + new] = v
    assert set(sd) == set(expected)
    assert all(torch.equal(sd[k], expected[k]) for k in expected)
    assert sd[p + "stages.0.blocks.0.attn.w_msa.relative_position_index"].shape == (16, 16)
    text = " ".join(result.notes)
    assert "norm0, norm1" in text and "runtime initialises them" in text
    assert f"{target} shifts the windows of stage 2" in text and "head" in text
    # a bare mmdet backbone without norm0.. is key for key an mmpretrain backbone file: the tie
    # goes to mmpretrain (both read alike); mmseg's has no prefix
    assert detect(sd)[1].name == ("mmpretrain" if target == "mmdet" else target)
    back = api.load(out, target)
    assert back.source_layout == target and back.spec.img_size == spec.img_size   # meta records the spec


def test_mm_without_last_norm_is_one_error_line(tmp_path, cli):
    spec = small_spec(1)
    path, _ = save_source("official", spec, tmp_path)
    api.remap(path, "mmdet", tmp_path / "d.pth")
    file = torch.load(tmp_path / "d.pth", weights_only=False)
    file["state_dict"] = {k: v for k, v in file["state_dict"].items() if not k.startswith("backbone.norm2.")}
    torch.save(file, tmp_path / "broken.pth")
    with pytest.raises(LayoutError, match="no norm2.weight"):
        api.load(tmp_path / "broken.pth")
    out = tmp_path / "out.safetensors"
    r = cli("remap", "auto", "official", tmp_path / "broken.pth", "-o", out)
    assert r.returncode == 1 and r.stderr.startswith("Error:") and "norm2" in r.stderr.splitlines()[0]
    assert "Traceback" not in r.stderr and not out.exists()


# ----------------------------------------------------------------------------------------
# whole-model checkpoints
# ----------------------------------------------------------------------------------------
def _detector(tmp_path, official_names: bool):
    """A detector checkpoint: a Swin backbone (official names under backbone., or mmdet's) with
    output norms norm0..norm{S-1}, beside a neck and heads."""
    spec = small_spec(1, num_classes=0)
    path, model = save_source("official", spec, tmp_path)
    state = torch.load(path, weights_only=True)["model"]
    g = torch.Generator().manual_seed(5)
    last = spec.num_stages - 1
    if official_names:
        backbone = {f"backbone.{k}": v for k, v in state.items() if not k.startswith("norm.") and "attn_mask" not in k}
        backbone[f"backbone.norm{last}.weight"], backbone[f"backbone.norm{last}.bias"] = state["norm.weight"], state["norm.bias"]
    else:
        api.remap(path, "mmdet", tmp_path / "bb.pth")
        backbone = torch.load(tmp_path / "bb.pth", weights_only=False)["state_dict"]
    for i in range(last):
        d = spec.dims[i]
        backbone[f"backbone.norm{i}.weight"] = 1 + 0.1 * torch.randn(d, generator=g)
        backbone[f"backbone.norm{i}.bias"] = 0.1 * torch.randn(d, generator=g)
    others = {"neck.lateral_convs.0.conv.weight": torch.randn(8, 16, 1, 1, generator=g),
              "rpn_head.rpn_cls.bias": torch.randn(3, generator=g),
              "roi_head.bbox_head.fc_cls.weight": torch.randn(5, 8, generator=g)}
    det = {"state_dict": {**backbone, **others}, "meta": {"epoch": 12}}
    torch.save(det, tmp_path / "det.pth")
    return tmp_path / "det.pth", spec, state, backbone, others


@pytest.mark.parametrize("official_names", (True, False), ids=("official-release", "mmdet"))
def test_detector_checkpoint_rekeyed_for_mmdet(tmp_path, official_names):
    det, spec, state, backbone, others = _detector(tmp_path, official_names)
    ckpt = api.load(det)
    assert ckpt.source_layout == ("official" if official_names else "mmdet")
    out = tmp_path / "det-mm3.pth"
    _, result = api.remap(det, "mmdet", out)
    sd = torch.load(out, weights_only=False)["state_dict"]
    for k, v in others.items():                                            # byte for byte
        assert torch.equal(sd[k], v)
    for i in range(spec.num_stages - 1):
        assert torch.equal(sd[f"backbone.norm{i}.weight"], backbone[f"backbone.norm{i}.weight"])
    assert torch.equal(sd["backbone.stages.0.downsample.reduction.weight"],
                       mm_reduction(state["layers.0.downsample.reduction.weight"]))
    assert torch.equal(sd[f"backbone.norm{spec.num_stages - 1}.weight"], state["norm.weight"])
    assert "carried" in " ".join(result.notes) and "runtime initialises" not in " ".join(result.notes)
    # to a backbone-only target: the rest is dropped with a count
    _, result = api.remap(det, "timm", tmp_path / "timm")
    assert any(n.startswith("dropped 7 tensors") for n in result.notes), result.notes
    back = tl.tensors_of(tmp_path / "timm")
    assert not any(k.startswith(("neck", "rpn_head", "roi_head", "norm0")) for k in back)


def test_segmentor_to_mmseg_keeps_the_prefix(tmp_path):
    det, spec, state, backbone, others = _detector(tmp_path, True)
    file = torch.load(det, weights_only=False)
    file["state_dict"] = {k: v for k, v in file["state_dict"].items() if k.startswith("backbone.")}
    file["state_dict"]["decode_head.conv_seg.weight"] = torch.randn(4, 8, 1, 1)
    torch.save(file, tmp_path / "seg.pth")
    api.remap(tmp_path / "seg.pth", "mmseg", tmp_path / "seg-mm.pth")
    sd = torch.load(tmp_path / "seg-mm.pth", weights_only=False)["state_dict"]
    assert "backbone.patch_embed.projection.weight" in sd and "decode_head.conv_seg.weight" in sd
    assert detect(sd)[1].name == "mmseg"
    # --no-keep-other: a plain mmseg backbone, as swin2mmseg writes
    api.remap(tmp_path / "seg.pth", "mmseg", tmp_path / "bb.pth", keep_other=False)
    sd = torch.load(tmp_path / "bb.pth", weights_only=False)["state_dict"]
    assert "patch_embed.projection.weight" in sd and not any(k.startswith(("backbone.", "decode_head")) for k in sd)


def test_detector_without_backbone_is_one_error_line(tmp_path, cli):
    torch.save({"state_dict": {"neck.conv.weight": torch.randn(2, 2), "roi_head.fc.bias": torch.randn(2)}},
               tmp_path / "nobb.pth")
    out = tmp_path / "out.pth"
    r = cli("remap", "auto", "mmdet", tmp_path / "nobb.pth", "-o", out)
    assert r.returncode == 1 and r.stderr.startswith("Error:") and "no backbone" in r.stderr.splitlines()[0]
    assert not out.exists() and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------------------
# mmpretrain as a real runtime
# ----------------------------------------------------------------------------------------
def mm_classifier(spec, seed=0):
    pytest.importorskip("mmpretrain")
    from swin_convert.families.swin.layouts.mmpretrain import build_classifier
    return randomize_(build_classifier(spec), seed).eval()


def load_mm(path, spec):
    """Our file loaded by mmengine's load_checkpoint into mmpretrain's ImageClassifier."""
    from mmengine.runner import load_checkpoint
    from swin_convert.families.swin.layouts.mmpretrain import build_classifier
    model = build_classifier(spec).eval()
    state = torch.load(path, weights_only=False)["state_dict"]
    result = model.load_state_dict(state, strict=False)
    allowed = ("relative_position_index", "relative_coords_table") if spec.version == 2 else ()
    assert not result.unexpected_keys and all(k.endswith(allowed) for k in result.missing_keys if allowed) \
        and (allowed or not result.missing_keys), result
    load_checkpoint(model, str(path), strict=spec.version == 1, logger="silent")
    return model


@pytest.mark.parametrize("dst", ("official", "timm", "hf"))
@pytest.mark.parametrize("version", (1, 2))
def test_from_mmpretrain(tmp_path, dst, version):
    spec = small_spec(version)
    model = mm_classifier(spec, seed=version)
    src = tmp_path / "mm.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"mmpretrain_version": "1.2.0"}}, src)
    x = fixed_input(spec)
    ckpt, _ = api.remap(src, dst, tmp_path / "out", img_size=spec.img_size,
                        pretrained_window=spec.pretrained_window_sizes or None)
    assert ckpt.source_layout == "mmpretrain"
    assert (logits(tl.load_target(dst, tmp_path / "out", spec), x) - logits(model, x)).abs().max() <= 1e-4
    api.remap(tmp_path / "out", "mmpretrain", tmp_path / "back.pth", from_layout=dst)
    a = torch.load(src, weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "back.pth", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "round trip is not bit-identical"


@pytest.mark.parametrize("src_layout", ("official", "timm", "hf", "torchvision"))
@pytest.mark.parametrize("version", (1, 2))
def test_to_mmpretrain(tmp_path, src_layout, version):
    pytest.importorskip("mmpretrain")
    kw = {"pretrained_window_sizes": (0, 0, 0)} if (version == 2 and src_layout == "torchvision") else {}
    spec = small_spec(version, **kw)
    if src_layout == "torchvision":
        import test_torchvision as tt
        path = tmp_path / "tv.pth"
        model = tt.torchvision_source(spec, path)
    else:
        path, model = save_source(src_layout, spec, tmp_path / "src")
    out = tmp_path / "mm.pth"
    api.remap(path, "mmpretrain", out, img_size=spec.img_size, window=spec.window_size[0],
              pretrained_window=spec.pretrained_window_sizes or None)
    x = fixed_input(spec)
    assert (logits(load_mm(out, spec), x) - logits(model, x)).abs().max() <= 1e-4


def test_mmdet_file_loads_into_mmpretrain_blocks(tmp_path):
    """mmdet's V1 backbone keys are mmpretrain's: the mmdet file loads into mmpretrain's backbone
    (out_indices 0..2; norm0/norm1 left at init, as in mmdet) and gives the official features."""
    pytest.importorskip("mmpretrain")
    from swin_convert.families.swin.layouts.mmpretrain import build_backbone
    spec = small_spec(1)
    path, ref = save_source("official", spec, tmp_path)
    api.remap(path, "mmdet", tmp_path / "d.pth")
    sd = torch.load(tmp_path / "d.pth", weights_only=False)["state_dict"]
    bb = build_backbone(spec, out_indices=(0, 1, 2))
    bb.eval()                                  # mmpretrain's train() returns None
    result = bb.load_state_dict({k[len("backbone."):]: v for k, v in sd.items()}, strict=False)
    assert sorted(result.missing_keys) == ["norm0.bias", "norm0.weight", "norm1.bias", "norm1.weight"]
    assert not result.unexpected_keys
    x = fixed_input(spec)
    with torch.no_grad():
        feats = bb(x)[-1].mean((2, 3))
        expected = ref.forward_features(x)
    assert (feats - expected).abs().max() <= 1e-4


def test_mmpretrain_buffers_bit_equal(tmp_path):
    """Our regenerated index / V2 coordinate table (pretrained window 3) equal mmpretrain's own."""
    spec = small_spec(2)
    model = mm_classifier(spec)
    path, _ = save_source("official", spec, tmp_path)
    api.remap(path, "mmpretrain", tmp_path / "mm.pth")
    sd = torch.load(tmp_path / "mm.pth", weights_only=False)["state_dict"]
    for k, v in model.state_dict().items():
        if k.endswith(("relative_position_index", "relative_coords_table")):
            assert torch.equal(sd[k], v), k


def test_detection_of_every_mm_flavour(tmp_path):
    spec = small_spec(1)
    path, _ = save_source("official", spec, tmp_path)
    api.remap(path, "mmpretrain", tmp_path / "cls.pth")
    cls = torch.load(tmp_path / "cls.pth", weights_only=False)["state_dict"]
    assert detect(cls)[1].name == "mmpretrain"
    backbone_only = {k: v for k, v in cls.items() if not k.startswith("head.")}
    assert detect(backbone_only)[1].name == "mmpretrain"
    spec2 = small_spec(2)
    p2, _ = save_source("official", spec2, tmp_path / "v2")
    api.remap(p2, "mmpretrain", tmp_path / "v2.pth")
    v2 = torch.load(tmp_path / "v2.pth", weights_only=False)["state_dict"]
    assert detect(v2)[1:] == (detect(cls)[1], 2)
    with pytest.raises(Exception, match="no Swin V2"):
        api.remap(p2, "mmdet", tmp_path / "x.pth")


def test_cli_rekeys_an_official_detection_release(tmp_path, cli):
    det, spec, *_ = _detector(tmp_path, True)
    out = tmp_path / "det-mm3.pth"
    r = cli("remap", "official", "mmdet", det, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "carried" in r.stdout and "mmdet shifts the windows" in r.stdout and out.exists()
    r = cli("inspect", out)
    assert r.returncode == 0 and "mmdet" in r.stdout and "whole-model checkpoint" in r.stdout, r.stdout
    r = cli("remap", "mmdet", "simmim", out, "-o", tmp_path / "x.pth")
    assert r.returncode == 2 and r.stderr.startswith("Error:") and "source layout only" in r.stderr
