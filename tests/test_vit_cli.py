"""ViT end to end through the seam: the API and the CLI on checkpoints written by timm, transformers,
torchvision and DeiT-style pickles. Every ordered layout pair is remapped, loaded strictly in the
target's own runtime and compared with the source runtime's logits (fp32 <= 1e-4); going back is
bit-identical. Refusals are one `Error:` line with no output; each upscale method is checked; the
hf / timm methods equal the runtimes' own on-the-fly interpolation exactly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from test_errors import assert_clean_error
from vit_runtimes import randomize_

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
torchvision = pytest.importorskip("torchvision")

from safetensors.torch import load_file, save_file  # noqa: E402

from swin_convert import api  # noqa: E402
from swin_convert.families import detect  # noqa: E402
from swin_convert.families.vit.layouts import timm as T, torchvision as TV  # noqa: E402
from swin_convert.families.vit.spec import ViTSpec  # noqa: E402

# head dim 16 (not 64): sources without a config need --num-heads, as real small ViTs do
SPEC = ViTSpec(embed_dim=64, depth=2, num_heads=4, img_size=32, patch_size=8, num_classes=5)
LAYOUTS = ("timm", "hf", "torchvision", "deit")
PAIRS = [(a, b) for a in LAYOUTS for b in LAYOUTS if a != b]


def images(size=32, n=3, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def timm_model(spec=SPEC, seed=0, **extra):
    return randomize_(T.create(spec, **extra), seed).eval()


def hf_model(spec=SPEC, seed=0):
    from swin_convert.families.vit.layouts import hf as H
    cfg = H.config_json(spec)
    config = transformers.ViTConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    return randomize_(transformers.ViTForImageClassification(config), seed).eval()


def tv_model(spec=SPEC, seed=0):
    return randomize_(torchvision.models.VisionTransformer(**TV.constructor_args(spec)), seed).eval()


def run(model, x):
    with torch.no_grad():
        out = model(pixel_values=x) if isinstance(model, transformers.PreTrainedModel) else model(x)
    return getattr(out, "logits", out)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One checkpoint per layout, each written the way its ecosystem writes it: {layout: (path, model)}."""
    root = tmp_path_factory.mktemp("vit-sources")
    out = {}
    m = timm_model(seed=1)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(root / "timm.safetensors"))
    out["timm"] = (root / "timm.safetensors", m)
    m = hf_model(seed=2)
    m.save_pretrained(root / "hf")
    out["hf"] = (root / "hf", m)
    m = tv_model(seed=3)
    torch.save(m.state_dict(), root / "vit_tv.pth")
    out["torchvision"] = (root / "vit_tv.pth", m)
    m = timm_model(seed=4)
    torch.save({"model": m.state_dict()}, root / "deit.pth")        # DeiT's main.py container
    out["deit"] = (root / "deit.pth", m)
    return out


def load_target(layout: str, out: Path):
    """``out`` in the layout's own runtime, loaded strictly (through the folder users load)."""
    if layout == "timm":
        model = timm.create_model(f"local-dir:{out}", pretrained=True)
        want = load_file(str(out / "model.safetensors"))
        assert set(model.state_dict()) == set(want)
        return model.eval()
    if layout == "hf":
        model, info = transformers.AutoModelForImageClassification.from_pretrained(str(out), output_loading_info=True)
        assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
        return model.eval()
    if layout == "torchvision":
        kwargs = json.loads((out / "config.json").read_text())["kwargs"]
        model = torchvision.models.VisionTransformer(**kwargs)
        model.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
        return model.eval()
    state = torch.load(out, weights_only=True)["model"]               # deit: a .pth with {'model': sd}
    model = T.create(SPEC)
    model.load_state_dict(state, strict=True)
    return model.eval()


def target_path(tmp_path: Path, layout: str, stem: str) -> Path:
    return tmp_path / (f"{stem}.pth" if layout == "deit" else stem)


def state_of(layout: str, path: Path) -> dict:
    if layout == "hf" or path.is_dir():
        return load_file(str(path / "model.safetensors"))
    if path.suffix == ".safetensors":
        return load_file(str(path))
    obj = torch.load(path, weights_only=True)
    return obj["model"] if "model" in obj else obj


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_layout_pair_loads_strictly_matches_logits_and_round_trips(sources, src, dst, tmp_path):
    path, model = sources[src]
    heads = None if src == "hf" else SPEC.num_heads                  # hf's config records them
    out = target_path(tmp_path, dst, "out")
    ckpt, written = api.remap(path, dst, out, from_layout=src, num_heads=heads)
    assert ckpt.family == "vit" and ckpt.spec == SPEC.replace(layer_norm_eps=ckpt.spec.layer_norm_eps)
    x = images()
    diff = (run(load_target(dst, out), x) - run(model, x)).abs().max().item()
    assert diff <= 1e-4, diff
    back = target_path(tmp_path, src, "back") if src != "timm" else tmp_path / "back.safetensors"
    api.remap(out, src, back)                                       # our output records the spec: no flags
    want, got = state_of(src, path), state_of(src, back)
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_detection_never_confuses_families(sources):
    for layout, (path, _) in sources.items():
        ckpt = api.load(path, num_heads=None if layout == "hf" else SPEC.num_heads)
        assert ckpt.family == "vit" and ckpt.source_layout == ("timm" if layout == "deit" else layout)
    raw = {k: None for k in timm_model().state_dict()}
    assert (detect(raw)[0].name, detect(raw)[1].name) == ("vit", "timm")
    raw["pre_logits.fc.weight"] = None
    assert detect(raw)[1].name == "deit"


def test_swin_checkpoints_still_detect_as_swin(tmp_path):
    from runtimes import save_source, small_spec
    for version in (1, 2):
        for layout in ("timm", "hf", "official"):
            path, _ = save_source(layout, small_spec(version), tmp_path / f"{layout}{version}")
            ckpt = api.load(path)
            assert (ckpt.family, ckpt.source_layout, ckpt.spec.version) == ("swin", layout, version)


def test_card_facts_cite_deit_for_a_distilled_model():
    from swin_convert.families import get_family
    facts = get_family("vit").card_facts(SPEC.replace(distilled=True))
    assert facts["family_tag"] == "deit" and "touvron2021training" in facts["citation"]
    assert "dosovitskiy2021image" in facts["citation"]
    assert "touvron" not in get_family("vit").card_facts(SPEC)["citation"]


def test_inspect_shows_spec_and_provenance(sources, tmp_path):
    up = tmp_path / "up"
    result = run_cli("upscale", sources["timm"][0], "--res", 48, "--method", "hf", "--num-heads", 4, "-o", up)
    assert result.returncode == 0, result.stderr
    result = run_cli("inspect", up)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "ViT" in text and "heads 4" in text and "4x4 -> 6x6 (hf)" in text and "trained grid" in text
    data = json.loads(run_cli("inspect", up, "--format", "json").stdout)
    assert data["family"] == "vit" and data["spec"]["provenance"]["resampled"][0]["method"] == "hf"
    card = (up / "README.md").read_text()
    assert "Position embedding: position embedding grid 4x4 -> 6x6, `hf` resampler" in card
    assert "dosovitskiy2021image" in card and "library_name: timm" in card


def test_refusals_are_one_error_line_and_no_output(tmp_path):
    reg = ViTSpec(embed_dim=64, depth=1, num_heads=4, img_size=32, patch_size=8, num_classes=5, reg_tokens=2,
                  no_embed_class=True, global_pool="avg", fc_norm=True)
    m = timm_model(reg)
    src = tmp_path / "reg.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(src))
    out = tmp_path / "hf-out"
    assert_clean_error(run_cli("remap", "timm", "hf", src, "-o", out, "--num-heads", 4), 1, "cannot write hf",
                       "register tokens", out=out)
    out = tmp_path / "deit.pth"
    assert_clean_error(run_cli("remap", "auto", "deit", src, "-o", out, "--num-heads", 4), 1, "cannot write deit",
                       "register tokens", out=out)
    out = tmp_path / "tv"
    assert_clean_error(run_cli("remap", "auto", "torchvision", src, "-o", out, "--num-heads", 4), 1,
                       "cannot write torchvision", out=out)
    # a distilled DeiT in hf form cannot go to torchvision; upscale to an hf-legacy grid it cannot reach
    plain = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in timm_model().state_dict().items()}, str(plain))
    out = tmp_path / "x"
    assert_clean_error(run_cli("upscale", plain, "--res", 48, "--window", 7, "-o", out), 2, "--window", out=out)
    assert_clean_error(run_cli("upscale", plain, "--res", 48, "--method", "bicubic", "-o", out), 2,
                       "resampling method", out=out)
    assert_clean_error(run_cli("upscale", plain, "--res", 44, "-o", out), 2, "multiple of the patch", out=out)
    assert_clean_error(run_cli("remap", "auto", "official", plain, "-o", out), 2, "unknown layout", out=out)


def test_swin_refuses_vit_options(tmp_path):
    from runtimes import save_source, small_spec
    path, _ = save_source("timm", small_spec(1), tmp_path / "swin")
    out = tmp_path / "x"
    assert_clean_error(run_cli("upscale", path, "--res", 128, "--patch-size", 8, "-o", out), 2, "--patch-size",
                       out=out)
    assert_clean_error(run_cli("upscale", path, "--res", 128, "--method", "hf", "-o", out), 2, "method", out=out)
    assert_clean_error(run_cli("remap", "auto", "hf", path, "--num-heads", 2, "-o", out), 2, "--num-heads", out=out)


@pytest.mark.parametrize("method,exact", [("timm", True), ("hf", True), ("hf-legacy", False),
                                          ("torchvision", False), ("bilinear", False)])
def test_upscale_each_method_then_check(sources, method, exact, tmp_path):
    out = tmp_path / "up"
    src = sources["timm"][0]
    result = run_cli("upscale", src, "--res", 48, "--method", method, "--num-heads", 4, "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"with the {method} resampler" in result.stdout
    result = run_cli("check", out, "--against", src, "--runtime", "all", "--num-samples", 4, "--format", "json",
                     "--num-heads", 4)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["gated"] is exact
    assert ("exact comparison" in report["comparison"]) is exact
    runs = {r["runtime"]: r for r in report["runtimes"]}
    assert set(runs) == {"reference", "timm", "transformers", "torchvision"}
    if exact:
        assert all(r["max_abs_diff"] <= 1e-4 for r in runs.values()), runs


def test_patch_size_upscale_is_agreement_only(sources, tmp_path):
    out = tmp_path / "p10"
    src = sources["timm"][0]
    result = run_cli("upscale", src, "--res", 40, "--patch-size", 10, "--num-heads", 4, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "FlexiViT" in result.stdout
    ckpt = api.load(out)
    assert ckpt.spec.patch_size == (10, 10) and ckpt.spec.img_size == (40, 40)
    report = api.check(out, api.load(src, num_heads=4), runtimes=("all",), num_samples=2)
    assert not report.gated and "patch kernel was resampled" in report.comparison


def test_hf_method_equals_transformers_interpolate_pos_encoding(sources, tmp_path):
    """upscale --method hf, loaded in transformers == the source in transformers with
    interpolate_pos_encoding=True at the new size (the same bicubic function)."""
    path, model = sources["hf"]
    out = tmp_path / "hf48"
    api.upscale(path, out, res=48, method="hf")
    moved = load_target("hf", out)
    x = images(48)
    with torch.no_grad():
        want = model(pixel_values=x, interpolate_pos_encoding=True).logits
        got = moved(pixel_values=x).logits
    assert (got - want).abs().max().item() <= 1e-5


def test_timm_method_equals_timm_dynamic_img_size(sources, tmp_path):
    """upscale --method timm, loaded in timm == the source in timm with dynamic_img_size=True."""
    path, model = sources["timm"]
    dynamic = T.create(SPEC, dynamic_img_size=True).eval()
    dynamic.load_state_dict(model.state_dict(), strict=True)
    out = tmp_path / "timm48"
    api.upscale(path, out, res=48, method="timm", num_heads=4)
    moved = load_target("timm", out)
    x = images(48)
    with torch.no_grad():
        diff = (moved(x) - dynamic(x)).abs().max().item()
    assert diff <= 1e-5, diff


def test_default_method_follows_the_target_layout(sources, tmp_path):
    result, _ = api.upscale(sources["timm"][0], tmp_path / "tv", to="torchvision", res=48, num_heads=4)
    assert result.checkpoint.spec.provenance.resampled[-1].method == "torchvision"
    result, _ = api.upscale(sources["hf"][0], tmp_path / "hf", res=48)
    assert result.checkpoint.spec.provenance.resampled[-1].method == "hf"


def test_remap_from_safetensors_imports_no_torch(sources, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "o.safetensors"
    code = ("import sys; from swin_convert import api; "
            f"api.remap({str(sources['timm'][0])!r}, 'hf', {str(out)!r}, num_heads=4); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert out.exists()


@pytest.mark.parametrize("dst", ["hf", "deit"])
def test_distilled_deit_from_timm(dst, tmp_path):
    """A distilled DeiT (dist token + head_dist) -> DeiTForImageClassificationWithTeacher / a DeiT pickle
    and back: strict loads, equal logits (the two heads averaged), bit-identical return."""
    spec = SPEC.replace(distilled=True)
    model = timm_model(spec, seed=5)
    src = tmp_path / "deit_distilled.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(src))
    out = target_path(tmp_path, dst, "out")
    result = run_cli("remap", "timm", dst, src, "-o", out, "--num-heads", 4)
    assert result.returncode == 0, result.stderr
    if dst == "hf":
        moved, info = transformers.AutoModelForImageClassification.from_pretrained(str(out), output_loading_info=True)
        assert type(moved).__name__ == "DeiTForImageClassificationWithTeacher"
        assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    else:
        moved = T.create(spec)
        moved.load_state_dict(torch.load(out, weights_only=True)["model"], strict=True)
    x = images()
    assert (run(moved.eval(), x) - run(model, x)).abs().max().item() <= 1e-4
    back = tmp_path / "back.safetensors"
    api.remap(out, "timm", back)
    want, got = load_file(str(src)), load_file(str(back))
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert_clean_error(run_cli("remap", "auto", "torchvision", out, "-o", tmp_path / "tv"), 1, "distillation token",
                       out=tmp_path / "tv")


def test_non_square_grid_from_the_cli(sources, tmp_path):
    """--res H,W: a 6x5 grid that timm loads and runs as its own dynamic_img_size resample of the
    4x4 source; a copy that records nothing needs --img-size H,W; what cannot tile, what the target
    cannot hold and a square-only family are refused."""
    path, model = sources["timm"]
    out = tmp_path / "ns"
    result = run_cli("upscale", path, "--res", "48,40", "--method", "timm", "--num-heads", 4, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "4x4 -> 6x5" in result.stdout and "32 -> 48x40 px" in result.stdout
    moved = load_target("timm", out)
    dynamic = T.create(SPEC, dynamic_img_size=True).eval()
    dynamic.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (moved(x) - dynamic(x)).abs().max().item() <= 1e-5
    bare = tmp_path / "bare.safetensors"           # no metadata: 31 rows are 6x5 or 5x6
    save_file(load_file(str(out / "model.safetensors")), str(bare))
    assert_clean_error(run_cli("inspect", bare, "--num-heads", 4), 1, "no square grid", "--img-size H,W")
    for size, shown in (("48,40", "48x40"), ("40x48", "40x48")):
        result = run_cli("inspect", bare, "--img-size", size, "--num-heads", 4)
        assert result.returncode == 0 and f"image size    {shown}" in result.stdout, result.stderr
    bad = tmp_path / "bad"
    assert_clean_error(run_cli("upscale", path, "--res", "48,44", "--num-heads", 4, "-o", bad), 2,
                       "not a multiple of the patch", out=bad)
    assert_clean_error(run_cli("upscale", path, "--res", "48,40", "--to", "torchvision", "--num-heads", 4,
                               "-o", bad), 1, "non-square", out=bad)
    assert_clean_error(run_cli("upscale", path, "--res", "48,x", "-o", bad), 2, "--res takes a size", out=bad)
    from runtimes import save_source, small_spec
    swin, _ = save_source("timm", small_spec(1), tmp_path / "swin")
    assert_clean_error(run_cli("upscale", swin, "--res", "128,96", "-o", bad), 2, "Swin takes square images", out=bad)
    assert_clean_error(run_cli("inspect", swin, "--img-size", "64,48"), 2, "Swin takes square images")
