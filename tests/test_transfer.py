"""Window / resolution transfer (``swin-convert upscale``, swin_convert.transfer).

Every expected value is computed independently of swin_convert.transfer: the official
bicubic resize re-derived from its definition (and in numpy from the cubic-convolution
formula), timm's own ``resize_rel_pos_bias_table`` and ``set_input_size``, and timm /
transformers models built natively at the new geometry with the source weights.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swin_convert import api
from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.errors import IncompatibleSpecError, UsageError
from swin_convert.families.swin.reference import build_reference
from swin_convert.families.swin.spec import SwinSpec
from swin_convert.core.tensors import FileSlice, TorchSource
from swin_convert.families.swin.testing import random_reference, randomize_
from swin_convert.core.torch_io import to_torch
from swin_convert.families.swin.transfer import (TransferRequest, load_22k_to_1k_rows, plan_geometry, resize_rel_pos_bias_table,
                                   suggested_name, upscale_checkpoint)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), num_classes=10)


def tiny(version: int = 1, img: int = 192, window: int = 12, **kw) -> SwinSpec:
    """Four stages; 192 px / window 12 clamps the last stage to 6 (as the released 192 px models)."""
    maps = [img // 4 // 2 ** i for i in range(4)]
    base = dict(TINY, version=version, img_size=img, window_size=[min(window, r) for r in maps])
    base.update(kw)
    return SwinSpec(**base).validate()


def make_ckpt(spec: SwinSpec, seed: int = 0) -> CanonicalCheckpoint:
    model = random_reference(spec, seed)
    return CanonicalCheckpoint(spec, {k: TorchSource(v.detach().clone()) for k, v in model.state_dict().items()},
                               source="test", source_layout="official")


def materialise(ckpt: CanonicalCheckpoint) -> dict[str, torch.Tensor]:
    return {k: to_torch(v) for k, v in ckpt.tensors.items()}


def forward(spec: SwinSpec, tensors: dict, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return build_reference(spec, tensors)(x)


def image(size: int, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(7))


def logits(model, x):
    with torch.no_grad():
        out = model(x)
    return getattr(out, "logits", out)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def official_bicubic(table: torch.Tensor, new_window: int) -> torch.Tensor:
    """microsoft/Swin-Transformer utils.load_pretrained, as written there."""
    l1, nh = table.shape
    s1, s2 = int(l1 ** 0.5), 2 * new_window - 1
    out = F.interpolate(table.permute(1, 0).view(1, nh, s1, s1), size=(s2, s2), mode="bicubic")
    return out.view(nh, s2 * s2).permute(1, 0)


def cubic_numpy(grid: np.ndarray, size: int) -> np.ndarray:
    """Bicubic (Keys, a=-0.75), half-pixel centres, edge-clamped taps: (nH, S, S) -> (nH, size, size)."""
    def weights(t):
        a = -0.75
        d = np.abs(np.array([t + 1, t, 1 - t, 2 - t]))
        return np.where(d <= 1, (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1, a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a)

    def matrix(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = (i + 0.5) * n_in / n_out - 0.5
            x0 = math.floor(src)
            for k, w in zip(range(x0 - 1, x0 + 3), weights(src - x0)):
                m[i, min(max(k, 0), n_in - 1)] += w
        return m
    m = matrix(grid.shape[-1], size)
    return np.einsum("ij,hjk,lk->hil", m, grid.astype(np.float64), m)


# ----------------------------------------------------------------------------------------
# V1 bias table resize: the pure function
# ----------------------------------------------------------------------------------------
WINDOW_CHANGES = [(7, 12), (12, 24), (6, 12), (8, 16), (12, 7), (24, 12), (12, 6)]


def random_table(window: int, heads: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn((2 * window - 1) ** 2, heads, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("old,new", WINDOW_CHANGES)
def test_bicubic_is_the_official_load_pretrained_resize(old, new):
    table = random_table(old)
    ours = resize_rel_pos_bias_table(table, old, new, "bicubic")
    assert ours.shape == ((2 * new - 1) ** 2, 3)
    assert torch.equal(ours, official_bicubic(table, new))          # bit-identical
    grid = table.t().reshape(3, 2 * old - 1, 2 * old - 1).numpy()
    expect = cubic_numpy(grid, 2 * new - 1).reshape(3, -1).T
    assert np.abs(ours.numpy() - expect).max() < 1e-5               # and it is what "bicubic" means


@pytest.mark.parametrize("old,new", WINDOW_CHANGES)
def test_geometric_matches_timm_resize_rel_pos_bias_table(old, new):
    from timm.layers import resize_rel_pos_bias_table as timm_resize
    table = random_table(old, seed=1)
    ours = resize_rel_pos_bias_table(table, old, new, "geometric")
    theirs = timm_resize(table, new_window_size=(new, new), new_bias_shape=((2 * new - 1) ** 2, 3))
    assert ours.shape == theirs.shape
    assert max_diff(ours, theirs) <= 1e-6


def test_resize_keeps_dtype_and_returns_same_window_unchanged():
    table = random_table(7).to(torch.bfloat16)
    assert resize_rel_pos_bias_table(table, 7, 7) is table
    assert resize_rel_pos_bias_table(table, 7, 12).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        resize_rel_pos_bias_table(table, 8, 12)      # a window-7 table is not a window-8 table
    with pytest.raises(ValueError):
        resize_rel_pos_bias_table(table, 7, 12, "nearest")


# ----------------------------------------------------------------------------------------
# geometry planning
# ----------------------------------------------------------------------------------------
def test_clamped_last_stage_moves_both_ways():
    src = tiny(1, 192, 12)
    assert src.window_size == (12, 12, 12, 6)
    up = plan_geometry(src, TransferRequest(window=(24,), img_size=384))
    assert (up.img_size, up.window_size, up.shift_sizes) == (384, (24, 24, 24, 12), (12, 12, 0, 0))
    down = plan_geometry(up, TransferRequest(window=(12,), img_size=192))
    assert down == src


def test_res_alone_keeps_the_configured_window_not_the_clamped_one():
    src = tiny(1, 192, 12)
    assert plan_geometry(src, TransferRequest(img_size=384)).window_size == (12, 12, 12, 12)
    assert plan_geometry(tiny(1, 384, 24), TransferRequest(img_size=768)).window_size == (24, 24, 24, 24)


def test_window_alone_keeps_the_image_size():
    out = plan_geometry(tiny(1, 256, 8), TransferRequest(window=(16,)))
    assert (out.img_size, out.window_size) == (256, (16, 16, 16, 8))


def test_per_stage_windows():
    out = plan_geometry(tiny(1, 384, 12), TransferRequest(window=(24, 24, 12, 12)))
    assert out.window_size == (24, 24, 12, 12)


@pytest.mark.parametrize("version,expected", [(1, ()), (2, (8, 8, 8, 8))])
def test_v2_records_the_source_windows_as_pretrained_windows(version, expected):
    out = plan_geometry(tiny(version, 256, 8), TransferRequest(window=(16,), img_size=512))
    assert out.pretrained_window_sizes == expected


def test_v2_keeps_recorded_pretrained_windows_and_accepts_overrides():
    src = tiny(2, 384, 24, pretrained_window_sizes=(12, 12, 12, 6))
    assert plan_geometry(src, TransferRequest(img_size=768)).pretrained_window_sizes == (12, 12, 12, 6)
    stretch = plan_geometry(src, TransferRequest(img_size=768, pretrained_window=(0,)))
    assert stretch.pretrained_window_sizes == (0, 0, 0, 0)
    given = plan_geometry(src, TransferRequest(window=(24,), pretrained_window=(16, 16, 16, 8)))
    assert given.pretrained_window_sizes == (16, 16, 16, 8)


@pytest.mark.parametrize("request_kw,message", [
    (dict(window=(7,), img_size=384), "does not tile stage 0"),
    (dict(img_size=200), "not a multiple of 32"),
    (dict(window=(12, 12)), "has 2 values but the model has 4 stages"),
    (dict(window=(24,), pretrained_window=(8, 8)), "has 2 values"),
    (dict(method="nearest", window=(24,)), "Unknown --method"),
    (dict(), "Nothing to change"),
    (dict(map_22k_to_1k=True), "needs a 21841-class"),
    (dict(num_classes=-1), "0 or more"),
])
def test_bad_requests_raise_usage_errors_with_alternatives(request_kw, message):
    with pytest.raises(UsageError) as err:
        plan_geometry(tiny(2, 192, 12), TransferRequest(**request_kw))
    assert message in err.value.message
    assert err.value.exit_code == 2


def test_window_error_lists_resolutions_and_windows_that_work():
    with pytest.raises(UsageError) as err:
        plan_geometry(tiny(1, 224, 7), TransferRequest(window=(7,), img_size=384))
    assert err.value.hint == ("resolutions [224, 448] fit window 7; windows that tile every stage at 384 px: "
                              "[4, 6, 12, 24].")


@pytest.mark.parametrize("request_kw", [dict(pretrained_window=(8,)), dict(bake_cpb=True)])
def test_v2_only_flags_on_v1_are_refused(request_kw):
    with pytest.raises(UsageError, match="applies to Swin V2"):
        plan_geometry(tiny(1, 256, 8), TransferRequest(window=(16,), **request_kw))


def test_suggested_names_follow_timm():
    large = SwinSpec(version=1, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                     window_size=(12,) * 4, img_size=384, num_classes=21841)
    req = TransferRequest(window=(24,), img_size=768)
    assert suggested_name(large, plan_geometry(large, req), req) == "swin_large_patch4_window12to24_384to768"
    v2 = SwinSpec(version=2, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=(8,) * 4,
                  img_size=256)
    req = TransferRequest(window=(16,), img_size=512)
    assert suggested_name(v2, plan_geometry(v2, req), req) == "swinv2_tiny_window8to16_256to512"
    req = TransferRequest(map_22k_to_1k=True)
    assert suggested_name(large, plan_geometry(large, req), req) == "swin_large_patch4_window12_384_22kto1k"


# ----------------------------------------------------------------------------------------
# V1 transfer
# ----------------------------------------------------------------------------------------
def independent_v1(src: CanonicalCheckpoint, new_spec: SwinSpec, resize) -> dict:
    """Source tensors with every bias table and the position embedding resized by the test itself."""
    out = materialise(src)
    for s, (old, new) in enumerate(zip(src.spec.window_size, new_spec.window_size)):
        for b in range(src.spec.depths[s]):
            key = f"layers.{s}.blocks.{b}.attn.relative_position_bias_table"
            out[key] = out[key] if old == new else resize(out[key], old, new)
    if src.spec.ape and new_spec.img_size != src.spec.img_size:
        ape, s1, s2 = out["absolute_pos_embed"], src.spec.img_size // 4, new_spec.img_size // 4
        grid = ape.reshape(1, s1, s1, -1).permute(0, 3, 1, 2)
        out["absolute_pos_embed"] = F.interpolate(grid, size=(s2, s2), mode="bicubic").permute(0, 2, 3, 1).flatten(1, 2)
    return out


@pytest.mark.parametrize("start,target", [((192, 12), (384, 24)), ((384, 24), (192, 12))])
def test_v1_bicubic_transfer_matches_official_load_pretrained(start, target):
    src = make_ckpt(tiny(1, *start, ape=True))
    result = upscale_checkpoint(src, TransferRequest(window=(target[1],), img_size=target[0]))
    spec = result.checkpoint.spec
    expected = independent_v1(src, spec, lambda t, old, new: official_bicubic(t, new))
    for key, value in expected.items():
        assert torch.equal(to_torch(result.checkpoint.tensors[key]), value), key
    x = image(target[0])
    assert max_diff(forward(spec, materialise(result.checkpoint), x), forward(spec, expected, x)) == 0.0


def test_v1_geometric_transfer_matches_timm_set_input_size(tmp_path):
    """timm resizes its own model at runtime with the geometric method; our file must load to the same logits."""
    import timm
    from safetensors.torch import save_file
    kw = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 1, 2, 2), num_classes=10)
    model = randomize_(timm.create_model("swin_tiny_patch4_window7_224", img_size=192, window_size=12, **kw), 3).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "src.safetensors"))
    src = api.load(tmp_path / "src.safetensors", img_size=192)
    assert src.spec.window_size == (12, 12, 12, 6)
    result = upscale_checkpoint(src, TransferRequest(window=(24,), img_size=384, method="geometric"))
    api.save(result.checkpoint, "timm", tmp_path / "out")
    ours = timm.create_model("local-dir:" + str(tmp_path / "out"), pretrained=True).eval()
    model.set_input_size(img_size=(384, 384), window_size=24)
    x = image(384)
    assert max_diff(logits(ours, x), logits(model, x)) <= 1e-5


def test_untouched_tensors_keep_their_lazy_sources(tmp_path):
    src = make_ckpt(tiny(1, 192, 12))
    api.save(src, "official", tmp_path / "src.safetensors")
    ckpt = api.load(tmp_path / "src.safetensors")
    result = upscale_checkpoint(ckpt, TransferRequest(window=(24,), img_size=384))
    for key, source in result.checkpoint.tensors.items():
        if "relative_position_bias_table" not in key:
            assert source is ckpt.tensors[key] and isinstance(source, FileSlice), key


# ----------------------------------------------------------------------------------------
# identity
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_same_geometry_is_bit_identical_through_a_file(tmp_path, version):
    from safetensors import safe_open
    api.save(make_ckpt(tiny(version, 192, 12)), "official", tmp_path / "src.safetensors")
    ckpt = api.load(tmp_path / "src.safetensors")
    result = upscale_checkpoint(ckpt, TransferRequest(window=(12,), img_size=192))
    assert result.checkpoint.spec == ckpt.spec
    assert all(result.checkpoint.tensors[k] is v for k, v in ckpt.tensors.items())
    api.save(result.checkpoint, "official", tmp_path / "out.safetensors", extra_meta=result.metadata)
    with safe_open(tmp_path / "src.safetensors", "pt") as a, safe_open(tmp_path / "out.safetensors", "pt") as b:
        assert set(a.keys()) == set(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
        assert b.metadata()["swin_convert.transfer_method"] == "none"


# ----------------------------------------------------------------------------------------
# V2 transfer against timm and transformers built natively at the new geometry
# ----------------------------------------------------------------------------------------
V2_CASES = [  # (src img, src window, new img, new window, --pretrained-window, expected pretrained windows)
    (256, 8, 512, 16, None, (8, 8, 8, 8)),      # official semantics: the source windows
    (256, 8, 512, 16, (0,), (0, 0, 0, 0)),      # stretch
    (192, 12, 384, 24, None, (12, 12, 12, 6)),  # clamped last stage: swinv2_*_window12to24_192to384
]


@pytest.mark.parametrize("src_img,src_win,img,win,override,pretrained", V2_CASES)
def test_v2_transfer_equals_timm_and_transformers_built_at_the_new_window(tmp_path, src_img, src_win, img, win,
                                                                           override, pretrained):
    import timm
    from safetensors.torch import save_file
    from transformers import AutoModelForImageClassification
    kw = dict(embed_dim=16, depths=(1, 2, 1, 1), num_heads=(1, 1, 2, 2), num_classes=10)
    source = randomize_(timm.create_model("swinv2_tiny_window8_256", img_size=src_img, window_size=src_win, **kw), 5)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "src.safetensors"))
    ckpt = api.load(tmp_path / "src.safetensors", img_size=src_img, window=src_win, pretrained_window=0)
    result = upscale_checkpoint(ckpt, TransferRequest(window=(win,), img_size=img, pretrained_window=override))
    assert result.checkpoint.spec.pretrained_window_sizes == pretrained
    assert all(result.checkpoint.tensors[k] is v for k, v in ckpt.tensors.items())   # V2: weights untouched

    native = timm.create_model("swinv2_tiny_window8_256", img_size=img, window_size=win,
                               pretrained_window_sizes=pretrained, **kw).eval()
    native.load_state_dict(state, strict=True)
    x = image(img, 1)
    expected = logits(native, x)
    api.save(result.checkpoint, "timm", tmp_path / "timm")
    via_timm = timm.create_model("local-dir:" + str(tmp_path / "timm"), pretrained=True).eval()
    api.save(result.checkpoint, "hf", tmp_path / "hf")
    via_hf = AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    assert max_diff(logits(via_timm, x), expected) <= 1e-4
    assert max_diff(logits(via_hf, x), expected) <= 1e-4
    assert max_diff(forward(result.checkpoint.spec, materialise(result.checkpoint), x), expected) <= 1e-4


def test_v2_pretrained_window_matters():
    """The three semantics give different models (so the test above can fail)."""
    ckpt = make_ckpt(tiny(2, 256, 8))
    x = image(512, 1)
    outs = []
    for override in (None, (0,), (12,)):
        result = upscale_checkpoint(ckpt, TransferRequest(window=(16,), img_size=512, pretrained_window=override))
        outs.append(forward(result.checkpoint.spec, materialise(result.checkpoint), x))
    assert max_diff(outs[0], outs[1]) > 1e-3 and max_diff(outs[0], outs[2]) > 1e-3


# ----------------------------------------------------------------------------------------
# CPB baking
# ----------------------------------------------------------------------------------------
def test_baked_cpb_gives_the_same_logits_and_only_official_can_hold_it(tmp_path):
    ckpt = make_ckpt(tiny(2, 256, 8))
    plain = upscale_checkpoint(ckpt, TransferRequest(window=(16,), img_size=512))
    baked = upscale_checkpoint(ckpt, TransferRequest(window=(16,), img_size=512, bake_cpb=True))
    spec = baked.checkpoint.spec
    assert spec.cpb_baked and not any("cpb_mlp" in k for k in baked.checkpoint.tensors)
    assert baked.checkpoint.tensors["layers.0.blocks.0.attn.relative_position_bias_table"].shape == (31 * 31, 1)
    x = image(512, 1)
    expected = forward(plain.checkpoint.spec, materialise(plain.checkpoint), x)
    assert max_diff(forward(spec, materialise(baked.checkpoint), x), expected) <= 1e-5
    api.save(baked.checkpoint, "official", tmp_path / "baked.safetensors")
    back = api.load(tmp_path / "baked.safetensors")
    assert back.spec == spec
    assert max_diff(forward(spec, materialise(back), x), expected) <= 1e-5
    with pytest.raises(IncompatibleSpecError):
        api.save(baked.checkpoint, "timm", tmp_path / "timm")
    with pytest.raises(UsageError, match="already baked"):
        upscale_checkpoint(back, TransferRequest(window=(8,), img_size=512))


# ----------------------------------------------------------------------------------------
# head
# ----------------------------------------------------------------------------------------
def test_22k_to_1k_map_is_upstreams_list():
    rows = load_22k_to_1k_rows()
    assert len(rows) == 1000 and len(set(rows)) == 1000 and all(0 <= r < 21841 for r in rows)
    assert rows[:5] == [359, 368, 460, 475, 486] and rows[-1] == 21817 and rows[850] == 5564


def test_22k_to_1k_rows_name_the_imagenet_1k_synsets():
    """Against timm's synset lists: row map[i] of the ImageNet-21k (fall11, sorted) classes is 1k class i.

    The one exception is upstream's: 1k class 850 (n04399382 teddy bear) is not a 21k synset and maps
    to n03013580 ("chemise, shimmy, shift, slip, teddy").
    """
    info = pytest.importorskip("timm").__file__
    folder = Path(info).parent / "data" / "_info"
    in21k = (folder / "imagenet21k_goog_synsets.txt").read_text().split()
    in1k = (folder / "imagenet_synsets.txt").read_text().split()
    rows = load_22k_to_1k_rows()
    wrong = [i for i, r in enumerate(rows) if in21k[r] != in1k[i]]
    assert wrong == [850] and in21k[rows[850]] == "n03013580"


def test_map_22k_to_1k_keeps_the_mapped_rows():
    ckpt = make_ckpt(tiny(1, 192, 12, num_classes=21841))
    result = upscale_checkpoint(ckpt, TransferRequest(map_22k_to_1k=True))
    rows = torch.tensor(load_22k_to_1k_rows())
    assert result.checkpoint.spec.num_classes == 1000
    for name in ("head.weight", "head.bias"):
        assert torch.equal(to_torch(result.checkpoint.tensors[name]), to_torch(ckpt.tensors[name])[rows])
    assert "ImageNet-22k -> 1k" in "\n".join(result.summary)


def test_head_map_file_drop_and_reinit(tmp_path):
    ckpt = make_ckpt(tiny(1, 192, 12))
    (tmp_path / "rows.txt").write_text("# keep three\n7\n\n2  # two\n9\n")
    kept = upscale_checkpoint(ckpt, TransferRequest(head_map=tmp_path / "rows.txt")).checkpoint
    assert torch.equal(to_torch(kept.tensors["head.weight"]), to_torch(ckpt.tensors["head.weight"])[[7, 2, 9]])
    dropped = upscale_checkpoint(ckpt, TransferRequest(num_classes=0)).checkpoint
    assert dropped.spec.num_classes == 0 and not any(k.startswith("head.") for k in dropped.tensors)
    x = image(192)
    features = forward(dropped.spec, materialise(dropped), x)
    assert features.shape == (2, 128)
    fresh = upscale_checkpoint(ckpt, TransferRequest(num_classes=5)).checkpoint
    assert not to_torch(fresh.tensors["head.weight"]).any() and fresh.spec.num_classes == 5
    (tmp_path / "bad.txt").write_text("3\n10\n")
    with pytest.raises(UsageError, match="outside the 10-class head"):
        upscale_checkpoint(ckpt, TransferRequest(head_map=tmp_path / "bad.txt"))


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------
def run_cli(*args):
    from typer.testing import CliRunner
    from swin_convert.cli import app
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "swin_192_w12.pth"
    ckpt = make_ckpt(tiny(1, 192, 12, ape=True), seed=11)
    api.save(ckpt, "official", path)
    return path, ckpt


@pytest.mark.parametrize("flags,message", [
    (["--window", "7", "--res", "384"], "Window 7 does not tile stage 0's 96x96 map at 384 px"),
    (["--res", "200"], "--res 200 is not a multiple of 32"),
    (["--window", "12,12", "--res", "384"], "--window has 2 values but the model has 4 stages"),
    (["--window", "24", "--res", "384", "--pretrained-window", "12"], "--pretrained-window applies to Swin V2"),
    (["--window", "24", "--res", "384", "--bake-cpb"], "--bake-cpb applies to Swin V2"),
    (["--window", "24", "--method", "nearest"], "Unknown --method 'nearest'"),
    ([], "Nothing to change"),
])
def test_cli_refuses_bad_requests_with_exit_code_2(v1_file, tmp_path, flags, message):
    result = run_cli("upscale", v1_file[0], "-o", tmp_path / "out.safetensors", *flags)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []            # no output, no temporary left behind


def test_cli_upscale_end_to_end(v1_file, tmp_path):
    """A real subprocess: official .pth in, safetensors out, checked against the official algorithm."""
    path, src = v1_file
    out = tmp_path / "up.safetensors"
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "upscale", str(path), "--window", "24",
                           "--res", "384", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "192 -> 384 px" in done.stdout and "swin_e16d1-1-1-1_patch4_window12to24_192to384" in done.stdout
    loaded = api.load(out)
    spec = loaded.spec
    assert (spec.img_size, spec.window_size, spec.ape, spec.num_classes) == (384, (24, 24, 24, 12), True, 10)
    assert loaded.metadata["swin_convert.transfer_method"] == "bicubic"
    assert loaded.metadata["swin_convert.windows_before"] == "12,12,12,6"
    expected = independent_v1(src, spec, lambda t, old, new: official_bicubic(t, new))
    x = image(384)
    assert max_diff(forward(spec, materialise(loaded), x), forward(spec, expected, x)) <= 1e-5


def test_cli_upscale_to_a_timm_folder_with_22k_head(tmp_path):
    ckpt = make_ckpt(tiny(2, 256, 8, num_classes=21841), seed=2)
    api.save(ckpt, "official", tmp_path / "src.safetensors")
    result = run_cli("upscale", tmp_path / "src.safetensors", "--window", "16", "--res", "512", "--to", "timm",
                     "--map-22k-to-1k", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    loaded = api.load(tmp_path / "out")
    assert (loaded.source_layout, loaded.spec.num_classes) == ("timm", 1000)
    assert loaded.spec.pretrained_window_sizes == (8, 8, 8, 8)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "swinv2_e16d1-1-1-1_window8to16_256to512_22kto1k" in card
    rows = torch.tensor(load_22k_to_1k_rows())
    for name in ("head.weight", "head.bias"):     # read from the file with numpy, not torch
        assert torch.equal(to_torch(loaded.tensors[name]), to_torch(ckpt.tensors[name])[rows])


NO_TORCH = """
import sys
from swin_convert import api
from swin_convert.families.swin.transfer import TransferRequest, upscale_checkpoint
ckpt = api.load(sys.argv[1])
result = upscale_checkpoint(ckpt, TransferRequest(window=(16,), img_size=512, head_map=sys.argv[2]))
api.save(result.checkpoint, "official", sys.argv[3], extra_meta=result.metadata)
assert "torch" not in sys.modules, "torch was imported"
"""


def test_v2_move_and_head_edit_of_a_safetensors_file_never_import_torch(tmp_path):
    """torch's import costs ~1 s and ~600 MB RSS; a V2 transfer has no tensor op to do."""
    ckpt = make_ckpt(tiny(2, 256, 8), seed=4)
    api.save(ckpt, "official", tmp_path / "src.safetensors")
    (tmp_path / "rows.txt").write_text("3\n1\n")
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(tmp_path / "src.safetensors"), str(tmp_path / "rows.txt"),
                           str(tmp_path / "out.safetensors")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = api.load(tmp_path / "out.safetensors")
    assert (out.spec.window_size, out.spec.num_classes) == ((16, 16, 16, 16), 2)
    assert torch.equal(to_torch(out.tensors["head.weight"]), to_torch(ckpt.tensors["head.weight"])[[3, 1]])
