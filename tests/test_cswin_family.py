"""CSWin family pieces against the official code's outputs (tests/data/cswin_golden.safetensors,
written by tools/make_cswin_golden.py from microsoft/CSWin-Transformer)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from swin_convert.errors import BadInputError, IncompatibleSpecError, UsageError
from swin_convert.families.cswin import geometry
from swin_convert.families.cswin.convert import (cls_to_seg, detect_layout, detect_seg_prefix, seg_shapes, seg_to_cls,
                                                 unwrap_container)
from swin_convert.families.cswin.reference import CSWinReference, CSWinSegReference
from swin_convert.families.cswin.shapes import canonical_keys, canonical_shapes, check_shapes, infer_spec
from swin_convert.families.cswin.spec import OFFICIAL_MODELS, CSWinSpec

GOLDEN = Path(__file__).parent / "data" / "cswin_golden.safetensors"
TOL = 1e-5


@pytest.fixture(scope="module")
def golden():
    with safe_open(str(GOLDEN), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    spec = CSWinSpec.from_json(meta["spec"])
    cls = {k[len("cls."):]: v for k, v in tensors.items() if k.startswith("cls.")}
    seg_norms = {k[len("seg."):]: v for k, v in tensors.items() if k.startswith("seg.")}
    x384 = tensors["input_u8"].float() / 64 - 2
    x224 = x384[:, :, :224, :224].contiguous()
    return dict(meta=meta, t=tensors, spec=spec, cls=cls, seg_norms=seg_norms, x224=x224, x384=x384)


def _maxdiff(a, b):
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------- golden

def test_golden_provenance(golden):
    assert len(golden["meta"]["official_commit"]) == 40
    assert GOLDEN.stat().st_size < 2_000_000


def test_canonical_keys_are_official_order(golden):
    assert canonical_keys(golden["spec"]) == json.loads(golden["meta"]["cls_key_order"])
    shapes = canonical_shapes(golden["spec"])
    assert {k: tuple(v.shape) for k, v in golden["cls"].items()} == shapes


def test_seg_keys_are_official_order(golden):
    assert list(seg_shapes(golden["spec"])) == json.loads(golden["meta"]["seg_key_order"])


@pytest.mark.parametrize("img,split,key", [(224, (1, 2, 7, 7), "logits_224"), (384, (1, 2, 12, 12), "logits_384")])
def test_reference_matches_official_classification(golden, img, split, key):
    model = CSWinReference(golden["spec"].with_geometry(img, split)).eval()
    model.load_state_dict(golden["cls"], strict=True)
    with torch.no_grad():
        out = model(golden[f"x{img}"])
    assert _maxdiff(out, golden["t"][key]) <= TOL
    assert golden["t"][key].std() > 0.1  # non-trivial


@pytest.mark.parametrize("img,split,key", [(224, (1, 2, 7, 7), "seg224"), (384, (1, 2, 7, 7), "seg384p")])
def test_seg_reference_matches_official_backbone(golden, img, split, key):
    seg_sd, _ = cls_to_seg(golden["cls"], golden["spec"], stage_norms=golden["seg_norms"])
    model = CSWinSegReference(golden["spec"].with_geometry(img, split)).eval()
    model.load_state_dict(seg_sd, strict=True)
    with torch.no_grad():
        feats = model(golden[f"x{img}"])
    assert len(feats) == 4
    for i, f in enumerate(feats):
        ref = golden["t"][f"{key}.{i}"]
        assert f.shape == ref.shape
        assert _maxdiff(f, ref) <= TOL, (key, i)


def test_seg_norm4_plus_head_is_classification(golden):
    seg_sd, _ = cls_to_seg(golden["cls"], golden["spec"])
    seg = CSWinSegReference(golden["spec"]).eval()
    seg.load_state_dict(seg_sd, strict=True)
    with torch.no_grad():
        last = seg(golden["x224"])[3].flatten(2).mean(-1)
        logits = last @ golden["cls"]["head.weight"].T + golden["cls"]["head.bias"]
    assert _maxdiff(logits, golden["t"]["logits_224"]) <= TOL


def test_reference_refuses_other_input_size(golden):
    model = CSWinReference(golden["spec"]).eval()
    with pytest.raises(UsageError, match="224"):
        model(golden["x384"])


def test_reference_refuses_non_dividing_split(golden):
    with pytest.raises(UsageError, match=r"1, 2, 3, 4, 6, 8, 12"):
        CSWinReference(golden["spec"].with_geometry(384, (1, 2, 7, 12)))


# --------------------------------------------------------------------------------------------- spec

def test_infer_spec_from_golden_shapes(golden):
    shapes = {k: tuple(v.shape) for k, v in golden["cls"].items()}
    spec, notes = infer_spec(shapes, {"num_heads": [2, 4, 8, 16], "img_size": 224, "split_size": [1, 2, 7, 7]})
    assert spec == golden["spec"] and notes == []
    spec, notes = infer_spec(shapes, {"num_heads": [2, 4, 8, 16]})
    assert spec == golden["spec"]
    assert any("img_size 224 assumed" in n for n in notes) and any("split_size" in n for n in notes)
    spec, notes = infer_spec(shapes, {"num_heads": [2, 4, 8, 16], "img_size": 384})
    assert spec.split_size == (1, 2, 12, 12) and spec.img_size == 384


def test_infer_spec_needs_heads_for_unknown_width(golden):
    shapes = {k: tuple(v.shape) for k, v in golden["cls"].items()}
    with pytest.raises(UsageError, match="heads"):
        infer_spec(shapes)


@pytest.mark.parametrize("name", sorted(OFFICIAL_MODELS))
def test_infer_spec_official_models(name):
    ref = OFFICIAL_MODELS[name]
    spec, notes = infer_spec(canonical_shapes(ref), {"img_size": ref.img_size})
    assert spec == ref
    assert any("num_heads" in n for n in notes)


def test_infer_spec_one_branch_stage():
    ref = CSWinSpec(16, (1, 1, 1, 1), (2, 4, 8, 16), (1, 2, 14, 7), 224, num_classes=0)
    assert ref.branches == (2, 2, 1, 1)
    spec, notes = infer_spec(canonical_shapes(ref), {"num_heads": ref.num_heads})
    assert spec == ref
    # the 224 default split would build two branches in stage 3: refused when asked explicitly
    with pytest.raises(UsageError, match="one attention branch"):
        infer_spec(canonical_shapes(ref), {"num_heads": ref.num_heads, "split_size": [1, 2, 7, 7]})


def test_infer_spec_bad_shapes(golden):
    shapes = {k: tuple(v.shape) for k, v in golden["cls"].items()}
    with pytest.raises(BadInputError):
        infer_spec({k: v for k, v in shapes.items() if not k.startswith("stage1_conv_embed.0")})
    bad = dict(shapes, **{"merge2.conv.weight": (16, 16, 3, 3)})
    with pytest.raises(BadInputError, match="merge2"):
        infer_spec(bad, {"num_heads": [2, 4, 8, 16]})
    with pytest.raises(BadInputError, match="unexpected"):
        check_shapes(dict(shapes, extra=(1,)), golden["spec"])


def test_spec_json_round_trip(golden):
    spec = golden["spec"]
    assert CSWinSpec.from_json(spec.to_json()) == spec
    assert CSWinSpec.from_json(spec.to_json_str()) == spec
    with pytest.raises(BadInputError):
        CSWinSpec.from_json("{not json")
    with pytest.raises(BadInputError):
        CSWinSpec.from_json({"embed_dim": 8})
    with pytest.raises(BadInputError):
        CSWinSpec.from_json(dict(spec.to_dict(), family="swin"))


def test_spec_validate_heads():
    with pytest.raises(UsageError, match="heads"):
        CSWinSpec(8, (1, 1, 1, 1), (1, 2, 4, 8), (1, 2, 7, 7)).validate()


# --------------------------------------------------------------------------------------------- geometry

def test_geometry_maps_and_branches():
    assert geometry.stage_maps(224) == (56, 28, 14, 7)
    assert geometry.stage_maps(384) == (96, 48, 24, 12)
    assert geometry.branch_counts((56, 28, 14, 7), (1, 2, 7, 7)) == (2, 2, 2, 1)
    assert geometry.branch_counts((96, 48, 24, 12), (1, 2, 24, 24)) == (2, 2, 1, 1)


def test_default_split_official_384():
    assert geometry.default_split(224, (1, 2, 7, 7), 384) == ((1, 2, 12, 12), [])
    assert geometry.default_split(384, (1, 2, 12, 12), 224) == ((1, 2, 7, 7), [])
    split, _ = geometry.default_split(224, (1, 2, 7, 7), 448)
    assert split == (2, 4, 14, 14)


def test_check_split_refusals():
    with pytest.raises(UsageError) as e:
        geometry.check_split(384, (1, 2, 7, 7))
    assert "24" in e.value.message and "1, 2, 3, 4, 6, 8, 12" in e.value.hint
    with pytest.raises(UsageError) as e:
        geometry.check_split(384, (1, 2, 24, 24), source_branches=(2, 2, 2, 1))
    assert "one attention branch" in e.value.message and "12" in e.value.hint
    with pytest.raises(UsageError):
        geometry.check_split(224, (1, 2, 14, 7), source_branches=(2, 2, 2, 1))
    with pytest.raises(UsageError, match="wider"):
        geometry.check_split(224, (1, 2, 30, 7))
    for bad in ("1,2,x,7", "1,2,7", [0, 2, 7, 7]):
        with pytest.raises(UsageError):
            geometry.parse_split(bad)


def test_check_split_normalises_last_stage():
    split, notes = geometry.check_split(384, "1,2,12,7")
    assert split == (1, 2, 12, 12) and len(notes) == 1 and "ignored" in notes[0]
    assert geometry.check_split(384, (1, 2, 7, 7), padded=True)[0] == (1, 2, 7, 12)


def test_check_img_size():
    assert geometry.check_img_size(384) == 384
    with pytest.raises(UsageError) as e:
        geometry.check_img_size(230)
    assert "256" in e.value.hint


def test_single_line_messages():
    for call in (lambda: geometry.check_split(384, (1, 2, 7, 7)), lambda: geometry.check_img_size(230)):
        with pytest.raises(UsageError) as e:
            call()
        assert "\n" not in e.value.message and "\n" not in (e.value.hint or "")


# --------------------------------------------------------------------------------------------- layouts

def _same(a: dict, b: dict):
    assert list(a) == list(b) or set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_cls_seg_round_trip_bit_exact(golden):
    spec = golden["spec"]
    body = {k: v for k, v in golden["cls"].items() if not k.startswith("head.")}
    seg_sd, notes = cls_to_seg(golden["cls"], spec, prefix="backbone.", stage_norms=golden["seg_norms"])
    assert any("head dropped" in n for n in notes)
    assert set(seg_sd) == {"backbone." + k for k in seg_shapes(spec)}
    back, notes = seg_to_cls(seg_sd)
    _same(back, body)
    assert any("norm1, norm2, norm3 dropped" in n for n in notes)
    seg_again, _ = cls_to_seg(back, spec, prefix="backbone.", stage_norms={
        k[len("backbone."):]: v for k, v in seg_sd.items() if k[len("backbone."):].startswith(("norm1.", "norm2.", "norm3."))})
    _same(seg_again, seg_sd)


def test_cls_to_seg_creates_identity_norms_and_bias(golden):
    spec = CSWinSpec(8, (1, 1, 1, 1), (2, 4, 8, 16), (1, 2, 7, 7), qkv_bias=False, num_classes=0)
    sd = {k: torch.randn(s) for k, s in canonical_shapes(spec).items()}
    seg_sd, notes = cls_to_seg(sd, spec)
    assert torch.equal(seg_sd["norm1.weight"], torch.ones(8)) and torch.equal(seg_sd["norm3.bias"], torch.zeros(32))
    assert torch.equal(seg_sd["stage2.0.qkv.bias"], torch.zeros(48))
    assert any("identity" in n for n in notes) and any("qkv biases created" in n for n in notes)
    seg = CSWinSegReference(spec)
    seg.load_state_dict(seg_sd, strict=True)


def test_seg_refusals(golden):
    large_like = CSWinSpec(8, (1, 1, 1, 1), (2, 4, 8, 8), (1, 2, 7, 7))
    with pytest.raises(IncompatibleSpecError, match="heads"):
        cls_to_seg({}, large_like)
    one_branch = CSWinSpec(8, (1, 1, 1, 1), (2, 4, 8, 16), (1, 2, 14, 7))
    with pytest.raises(IncompatibleSpecError, match="one attention branch"):
        cls_to_seg({}, one_branch)
    seg_sd, _ = cls_to_seg(golden["cls"], golden["spec"])
    seg_sd["merge3.conv.weight"] = torch.zeros(32, 32, 3, 3)
    with pytest.raises(IncompatibleSpecError, match="merge3"):
        seg_to_cls(seg_sd)


def test_mmseg_file(golden):
    seg_sd, _ = cls_to_seg(golden["cls"], golden["spec"], prefix="backbone.")
    file = {"meta": {"env_info": "x"}, "state_dict": dict(seg_sd, **{"decode_head.conv_seg.weight": torch.zeros(2),
                                                                    "auxiliary_head.conv_seg.bias": torch.zeros(2)})}
    sd, source, _ = unwrap_container(file)
    assert source == "state_dict" and detect_layout(sd) == "cswin-seg" and detect_seg_prefix(sd) == "backbone."
    cls, notes = seg_to_cls(sd)
    assert "head.weight" not in cls and any("decode_head.* (1)" in n for n in notes)
    assert detect_layout(golden["cls"]) == "cswin"


# --------------------------------------------------------------------------------------------- containers

def _sd():
    return {"stage1_conv_embed.0.weight": torch.ones(1), "norm.weight": torch.zeros(1)}


def test_container_ema_only():
    sd, source, notes = unwrap_container({"state_dict_ema": _sd()})
    assert source == "state_dict_ema" and set(sd) == set(_sd()) and notes == []


def test_container_both_defaults_to_ema():
    plain, ema = _sd(), {k: v + 1 for k, v in _sd().items()}
    file = {"epoch": 3, "state_dict": plain, "state_dict_ema": ema, "optimizer": {"state": {}}, "version": 2}
    sd, source, notes = unwrap_container(file)
    assert source == "state_dict_ema" and sd["norm.weight"] is ema["norm.weight"] and "both" in notes[0]
    sd, source, notes = unwrap_container(file, prefer="plain")
    assert source == "state_dict" and sd["norm.weight"] is plain["norm.weight"]


def test_container_module_prefix_model_and_bare():
    sd, source, notes = unwrap_container({"state_dict": {"module." + k: v for k, v in _sd().items()}})
    assert source == "state_dict" and set(sd) == set(_sd()) and any("module." in n for n in notes)
    sd, source, _ = unwrap_container({"model": _sd()})
    assert source == "model"
    sd, source, notes = unwrap_container(_sd())
    assert source == "" and notes == []


def test_container_refusals():
    with pytest.raises(BadInputError):
        unwrap_container([1, 2])
    with pytest.raises(BadInputError, match="No state dict"):
        unwrap_container({"epoch": 1, "weights": {"a": {"b": 1}}})
    with pytest.raises(BadInputError):
        unwrap_container({"state_dict": {"a": {"nested": 1}}})


def test_wrap_official_one_copy_found_by_every_loader(tmp_path):
    from swin_convert.families.cswin.convert import wrap_official
    file = wrap_official(_sd())
    path = tmp_path / "x.pth"
    torch.save(file, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["state_dict"] is loaded["state_dict_ema"]
    sd, source, notes = unwrap_container(loaded)
    assert source == "state_dict_ema" and notes == [] and set(sd) == set(_sd())


def test_split_choices():
    assert geometry.split_choices(384, (2, 2, 2, 1)) == [[1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48], [1, 2, 3, 4, 6, 8, 12, 16, 24],
                                                         [1, 2, 3, 4, 6, 8, 12], [12]]
    assert geometry.split_choices(224, (2, 2, 1, 1))[2] == [14]
