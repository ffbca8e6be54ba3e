"""Every ordered pair of {official, timm, hf} x {V1, V2}: build in the source runtime, convert,
load strictly into the target runtime, compare logits; round trips are bit-identical."""
from __future__ import annotations

import itertools

import pytest
import torch
from safetensors import safe_open

from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.core.keymap import to_canonical
from swin_convert.families import get_layout
from swin_convert.families.swin import FAMILY

LAYOUTS = FAMILY.layouts
from swin_convert.io.reading import open_raw

LAYOUT_NAMES = ("official", "timm", "hf")
PAIRS = [(a, b, v) for a, b in itertools.permutations(LAYOUT_NAMES, 2) for v in (1, 2)]


def load_target(layout: str, out, spec):
    """The converted checkpoint loaded strictly into the real runtime of ``layout``."""
    if layout == "timm":
        import timm
        return timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    if layout == "hf":
        import transformers
        model, info = transformers.AutoModelForImageClassification.from_pretrained(out, output_loading_info=True)
        assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
        return model.eval()
    return official_witness(out / "model.safetensors", spec)


def official_witness(path, spec):
    """An independent reading of an official-layout file: timm's own checkpoint_filter_fn."""
    import timm
    from safetensors.torch import load_file
    from swin_convert.families.swin.layouts.timm import architecture as timm_architecture, model_args as timm_model_args
    module = timm.models.swin_transformer_v2 if spec.version == 2 else timm.models.swin_transformer
    model = timm.create_model(timm_architecture(spec), pretrained=False, **timm_model_args(spec)).eval()
    state = module.checkpoint_filter_fn(load_file(str(path)), model)
    model.load_state_dict(state, strict=True)
    return model


def tensors_of(path) -> dict:
    raw = open_raw(path)
    from swin_convert.core.torch_io import to_torch
    return {k: to_torch(v) for k, v in raw.tensors.items()}


@pytest.mark.parametrize("src,dst,version", PAIRS, ids=[f"{a}-to-{b}-v{v}" for a, b, v in PAIRS])
def test_pair_converts_and_loads_strictly(tmp_path, src, dst, version):
    spec = small_spec(version)
    path, model = save_source(src, spec, tmp_path / "src")
    x = fixed_input(spec)
    expected = logits(model, x)
    out = tmp_path / "out"
    ckpt, _ = api.remap(path, dst, out, img_size=spec.img_size, window=spec.window_size[0],
                        pretrained_window=spec.pretrained_window_sizes or None)
    assert ckpt.source_layout == src
    got = logits(load_target(dst, out, spec), x)
    assert (got - expected).abs().max().item() <= 1e-4
    assert torch.equal(got.argmax(-1), expected.argmax(-1))

    back = tmp_path / "back"
    api.remap(out, src, back, from_layout=dst)
    original, returned = tensors_of(path), tensors_of(back)
    assert original.keys() == returned.keys()
    assert all(torch.equal(original[k], returned[k]) for k in original), "round trip is not bit-identical"


@pytest.mark.parametrize("version", (1, 2))
def test_official_writer_matches_timm_filter_witness(tmp_path, version):
    """Our official writer, read back by timm's checkpoint_filter_fn, gives our reference's logits."""
    spec = small_spec(version)
    path, model = save_source("official", spec, tmp_path)
    out = tmp_path / "o.safetensors"
    api.remap(path, "official", out)
    x = fixed_input(spec)
    assert (logits(official_witness(out, spec), x) - logits(model, x)).abs().max() <= 1e-4


@pytest.mark.parametrize("layout,version", [(n, v) for n in LAYOUT_NAMES for v in (1, 2)])
def test_every_rule_is_used(tmp_path, layout, version):
    extra = {"ape": True} if (version == 1 and layout != "timm") else {}
    spec = small_spec(version, **extra)
    src = tmp_path / "x.safetensors"
    ckpt = api.load(save_source("official", spec, tmp_path)[0])
    api.save(ckpt, layout, src)
    lay = get_layout(layout)
    raw = open_raw(src)
    parsed = to_canonical(lay, version, raw.tensors)
    assert not parsed.unexpected
    wanted = {i for i, r in enumerate(lay.rules) if version in r.versions}
    assert parsed.used_rules == wanted, [lay.rules[i].canonical.text for i in wanted - parsed.used_rules]


def test_clamped_last_stage_official_timm(tmp_path):
    """192 px / window 12 clamps the last stage to 6 (121-row table): official <-> timm keep it."""
    spec = small_spec(1, depths=(1, 1, 1, 2), num_heads=(1, 1, 2, 2), img_size=192, window_size=(12, 12, 12, 6))
    path, model = save_source("timm", spec, tmp_path)
    ckpt = api.load(path)
    assert ckpt.spec.window_size == (12, 12, 12, 6)
    assert ckpt.spec.img_size == 192
    out = tmp_path / "off"
    api.save(ckpt, "official", out)
    x = fixed_input(spec, 1)
    assert (logits(official_witness(out / "model.safetensors", spec), x) - logits(model, x)).abs().max() <= 1e-4
    with pytest.raises(Exception, match="one window_size"):
        api.save(ckpt, "hf", tmp_path / "hf")


def test_timm_pre09_layout_reads_as_official(tmp_path):
    """Old timm (<= 0.6) = official keys: detected as official and converts to timm >= 0.9."""
    spec = small_spec(1)
    path, model = save_source("official", spec, tmp_path)
    ckpt = api.load(path)
    assert ckpt.source_layout == "official"
    assert "layers.0.downsample.reduction.weight" in ckpt.tensors


def test_official_buffers_regenerated_exactly(tmp_path):
    """Persisted index / coordinate table / masks equal what the official formulas give."""
    spec = small_spec(2)
    path, _ = save_source("official", spec, tmp_path)
    state = torch.load(path, weights_only=True)["model"]
    import timm
    from swin_convert.families.swin.layouts.timm import architecture as timm_architecture, model_args as timm_model_args
    ref = timm.create_model(timm_architecture(spec), **timm_model_args(spec))
    buffers = dict(ref.named_buffers())
    blk = "layers.0.blocks.1"
    timm_blk = "layers.0.blocks.1"
    assert torch.equal(state[f"{blk}.attn.relative_position_index"], buffers[f"{timm_blk}.attn.relative_position_index"])
    assert torch.equal(state[f"{blk}.attn.relative_coords_table"], buffers[f"{timm_blk}.attn.relative_coords_table"])
    assert torch.equal(state[f"{blk}.attn_mask"], buffers[f"{timm_blk}.attn_mask"])


def test_layouts_registry_refuses_silent_overwrite():
    from swin_convert.families import register_layout as register
    with pytest.raises(ValueError, match="already registered"):
        register(LAYOUTS["timm"])


def test_safetensors_output_carries_provenance(tmp_path):
    spec = small_spec(1)
    path, _ = save_source("timm", spec, tmp_path)
    out = tmp_path / "o.safetensors"
    api.remap(path, "hf", out)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt"
    assert meta["swin_convert.source_layout"] == "timm" and meta["swin_convert.layout"] == "hf"
    assert '"window_size":[4,4,4]' in meta["swin_convert.spec"]


@pytest.mark.parametrize("version", (1, 2))
def test_per_stage_windows_reach_timm(tmp_path, version):
    """Windows that are not one clamped value (4, 8, 4) travel as per-stage pairs in model_args."""
    spec = small_spec(version, window_size=(4, 8, 4))
    path, model = save_source("official", spec, tmp_path)
    out = tmp_path / "timm"
    api.remap(path, "timm", out)
    import json
    assert json.loads((out / "config.json").read_text())["model_args"]["window_size"] == [[4, 4], [8, 8], [4, 4]]
    x = fixed_input(spec)
    assert (logits(load_target("timm", out, spec), x) - logits(model, x)).abs().max().item() <= 1e-4
    with pytest.raises(Exception, match="one window_size"):
        api.remap(path, "hf", tmp_path / "hf")
