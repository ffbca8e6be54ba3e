"""torchvision's Swin (V1, V2): built in torchvision itself with every tensor re-drawn, converted to
and from every other layout, loaded strictly, logits within 1e-4; round trips bit-identical,
torchvision's persistent buffers included; what torchvision cannot express is refused."""
from __future__ import annotations

import pytest
import torch

import test_layouts as tl
from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.errors import IncompatibleSpecError, LayoutError, UsageError
from swin_convert.families import detect
from swin_convert.families.swin.layouts.torchvision import build_model
from swin_convert.families.swin.testing import randomize_

OTHERS = ("official", "timm", "hf")


def tv_spec(version: int, **kw):
    kw.setdefault("pretrained_window_sizes", (0, 0, 0)) if version == 2 else None
    return small_spec(version, **kw)


def torchvision_source(spec, path, seed: int = 0, middle: float = 0.0):
    """A torchvision SwinTransformer with every parameter re-drawn, saved as torchvision does
    (a bare state dict). V2's middle third of qkv.bias is what torchvision keeps: zero."""
    model = randomize_(build_model(spec), seed).eval()
    if spec.version == 2:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("attn.qkv.bias"):
                    n = p.numel() // 3
                    p[n:2 * n] = middle
    torch.save(model.state_dict(), path)
    return model


def load_torchvision(path, spec):
    model = build_model(spec).eval()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return model


@pytest.mark.parametrize("dst", OTHERS)
@pytest.mark.parametrize("version", (1, 2))
def test_from_torchvision(tmp_path, dst, version):
    spec = tv_spec(version)
    src = tmp_path / "tv.pth"
    model = torchvision_source(spec, src, seed=version)
    x = fixed_input(spec)
    expected = logits(model, x)
    out = tmp_path / "out"
    ckpt, _ = api.remap(src, dst, out, img_size=spec.img_size)
    assert ckpt.source_layout == "torchvision" and ckpt.spec.img_size == spec.img_size
    assert not ckpt.assumptions.notes
    got = logits(tl.load_target(dst, out, spec), x)
    assert (got - expected).abs().max().item() <= 1e-4

    back = tmp_path / "back.pth"
    api.remap(out, "torchvision", back, from_layout=dst)
    original, returned = torch.load(src, weights_only=True), torch.load(back, weights_only=True)
    assert original.keys() == returned.keys()
    assert all(torch.equal(original[k], returned[k]) for k in original), "round trip is not bit-identical"
    assert original["features.1.0.attn.relative_position_index"].shape == (spec.window_size[0] ** 4,)


@pytest.mark.parametrize("src_layout", OTHERS)
@pytest.mark.parametrize("version", (1, 2))
def test_to_torchvision(tmp_path, src_layout, version):
    spec = tv_spec(version)
    path, model = save_source(src_layout, spec, tmp_path / "src", seed=3)
    x = fixed_input(spec)
    out = tmp_path / "tv.pth"
    api.remap(path, "torchvision", out, img_size=spec.img_size, window=spec.window_size[0],
              pretrained_window=spec.pretrained_window_sizes or None)
    tv = load_torchvision(out, spec)                                   # strict, in torchvision itself
    assert (logits(tv, x) - logits(model, x)).abs().max().item() <= 1e-4
    # buffers as torchvision builds them, bit for bit
    fresh = dict(build_model(spec).named_buffers())
    state = torch.load(out, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in fresh.items())

    back = tmp_path / "back"
    api.remap(out, src_layout, back, img_size=spec.img_size)
    original, returned = tl.tensors_of(path), tl.tensors_of(back)
    assert original.keys() == returned.keys()
    assert all(torch.equal(original[k], returned[k]) for k in original)


def test_folder_output_records_the_image_size(tmp_path):
    spec = tv_spec(2)
    src = tmp_path / "tv.pth"
    torchvision_source(spec, src)
    api.remap(src, "torchvision", tmp_path / "folder", img_size=spec.img_size)
    again = api.load(tmp_path / "folder")          # config.json / metadata: no --img-size needed
    assert again.spec == api.load(src, img_size=spec.img_size).spec


def test_detected():
    spec = tv_spec(1)
    keys = build_model(spec).state_dict().keys()
    family, layout, version = detect(keys)
    assert (layout.name, version) == ("torchvision", 1)
    assert detect(build_model(tv_spec(2)).state_dict().keys())[1:] == (layout, 2)


def test_missing_img_size_is_one_error_line(tmp_path, cli):
    spec = tv_spec(1)
    src = tmp_path / "tv.pth"
    torchvision_source(spec, src)
    with pytest.raises(UsageError, match="--img-size"):
        api.load(src)
    out = tmp_path / "out.safetensors"
    r = cli("remap", "torchvision", "official", src, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("Error:") and "--img-size" in lines[0] and len(lines) == 2 and "Traceback" not in r.stderr
    assert not out.exists()


def test_non_zero_middle_third_is_refused(tmp_path, cli):
    spec = tv_spec(2)
    src = tmp_path / "tv.pth"
    torchvision_source(spec, src, middle=0.5)
    with pytest.raises(LayoutError, match="zeroes it at every forward"):
        api.load(src, img_size=spec.img_size)
    out = tmp_path / "out"
    r = cli("remap", "auto", "timm", src, "-o", out, "--img-size", spec.img_size)
    assert r.returncode == 1 and r.stderr.startswith("Error:") and "qkv.bias" in r.stderr.splitlines()[0]
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.parametrize("kw,match", [
    (dict(window_size=(8, 8, 4)), "one window for every stage"),       # last stage clamped by official
    (dict(pretrained_window_sizes=(3, 3, 3)), "pretrained with window 3"),
    (dict(ape=True, version=1), "absolute position embedding"),
])
def test_what_torchvision_cannot_express_is_refused(tmp_path, kw, match):
    version = kw.pop("version", 2)
    spec = small_spec(version, **kw)
    path, _ = save_source("official", spec, tmp_path)
    out = tmp_path / "tv.pth"
    with pytest.raises(IncompatibleSpecError, match=match):
        api.remap(path, "torchvision", out)
    assert not out.exists()
