"""ViT family: reference forward vs timm / transformers / torchvision, the five pos-embed
resamplers vs each runtime's own function, the FlexiViT patch resampler, key tables both ways
with strict loads into each runtime, refusals, spec inference."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from swin_convert.errors import LayoutError, UsageError
from swin_convert.families.vit import geometry
from swin_convert.families.vit.layouts import LAYOUTS, detect
from swin_convert.families.vit.reference import ReferenceViT
from swin_convert.families.vit.resample import resample_patch_embed, resample_pos_embed, resize_patches
from swin_convert.families.vit.shapes import canonical_shapes, infer_spec
from swin_convert.families.vit.spec import PosEmbedProvenance, ViTSpec

from vit_runtimes import from_layout, load_runtime, logits, random_canonical, to_layout

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
torchvision = pytest.importorskip("torchvision")

BASE = dict(embed_dim=32, depth=2, num_heads=2, img_size=32, patch_size=8, num_classes=7)
CASES = {
    "plain": dict(),
    "p16_64": dict(embed_dim=48, num_heads=3, img_size=64, patch_size=16),
    "no_qkv_bias": dict(qkv_bias=False),
    "distilled": dict(distilled=True),
    "distilled_ls": dict(distilled=True, layer_scale=True, qkv_bias=False),
    "nonsquare": dict(img_size=(32, 48)),
    "nonsquare_patch": dict(img_size=(32, 64), patch_size=(8, 16)),
    "reg_avg_ls": dict(reg_tokens=2, no_embed_class=True, global_pool="avg", fc_norm=True, layer_scale=True),
    "noclass_prenorm": dict(class_token=False, global_pool="avg", fc_norm=True, pre_norm=True),
    "representation": dict(representation_size=24),
    "hf_eps": dict(layer_norm_eps=1e-12),
}
SUPPORTED = {  # which layouts can hold each case (the others must refuse)
    "plain": ("timm", "hf", "torchvision", "deit"),
    "p16_64": ("timm", "hf", "torchvision", "deit"),
    "no_qkv_bias": ("timm", "hf", "torchvision", "deit"),
    "distilled": ("timm", "hf", "deit"),
    "distilled_ls": ("timm", "deit"),
    "nonsquare": ("timm", "hf", "deit"),
    "nonsquare_patch": ("timm", "hf", "deit"),
    "reg_avg_ls": ("timm",),
    "noclass_prenorm": ("timm", "deit"),
    "representation": ("torchvision", "deit"),
    "hf_eps": ("hf",),   # the others hold it with a caveat (eps fixed at 1e-6): checked separately
}


def spec_of(case: str) -> ViTSpec:
    return ViTSpec(**{**BASE, **CASES[case]}).validate()


def images(spec: ViTSpec, n: int = 2, seed: int = 1):
    return torch.randn(n, spec.in_chans, *spec.img_size, generator=torch.Generator().manual_seed(seed))


def reference(spec, canonical):
    model = ReferenceViT(spec)
    model.load_state_dict(canonical, strict=True)
    return model.eval()


# -- reference forward == each runtime on the same weights ------------------------------------
PAIRS = [(c, lay) for c, lays in SUPPORTED.items() for lay in lays]


@pytest.mark.parametrize("case,layout", PAIRS, ids=[f"{c}-{lay}" for c, lay in PAIRS])
def test_reference_matches_runtime_and_tables_round_trip(case, layout, tmp_path):
    spec = spec_of(case)
    canonical = random_canonical(spec, seed=hash(case) % 1000)
    assert {k: tuple(v.shape) for k, v in canonical.items()} == canonical_shapes(spec)
    sd = to_layout(layout, spec, canonical)
    back, unexpected = from_layout(layout, sd)
    assert not unexpected
    extra = set(LAYOUTS[layout].extra_tensors(spec))
    if extra:   # torchvision's zero in_proj_bias comes back as a zero qkv bias
        for k, v in list(back.items()):
            if k not in canonical:
                assert torch.count_nonzero(v) == 0
                del back[k]
    assert set(back) == set(canonical)
    assert all(torch.equal(back[k], canonical[k]) for k in canonical), "round trip is not bit-identical"
    runtime = load_runtime(layout, spec, sd, tmp_path / layout)
    x = images(spec)
    want = logits(reference(spec, canonical), x)
    got = logits(runtime, x)
    assert got.shape == want.shape == (2, spec.num_classes)
    assert (got - want).abs().max().item() <= 1e-4
    assert want.std().item() > 0.05      # non-trivial output


@pytest.mark.parametrize("case", list(CASES))
def test_limits_refuse_what_a_layout_cannot_hold(case):
    spec = spec_of(case)
    for name, mod in LAYOUTS.items():
        reason = mod.limits(spec)
        if name in SUPPORTED[case] or (case == "hf_eps"):
            assert reason is None, (name, reason)
        else:
            assert reason and "\n" not in reason, name


def test_eps_caveats():
    spec = spec_of("hf_eps")
    for name in ("timm", "torchvision", "deit"):
        assert "1e-6" in LAYOUTS[name].caveats(spec)[0]
    assert LAYOUTS["hf"].caveats(spec) == []
    assert LAYOUTS["timm"].caveats(spec_of("plain")) == []


def test_timm_refuses_representation_layer_instead_of_dropping_it():
    assert "pre_logits" in LAYOUTS["timm"].limits(spec_of("representation"))
    assert "pre_logits" in LAYOUTS["hf"].limits(spec_of("representation"))


# -- reading each runtime's own state dict ----------------------------------------------------
def _runtime_state_dict(layout, spec):
    from vit_runtimes import randomize_, timm_model, torchvision_model
    if layout in ("timm", "deit"):
        return randomize_(timm_model(spec)).state_dict(), LAYOUTS["timm"].config_json(spec)
    if layout == "torchvision":
        return randomize_(torchvision_model(spec)).state_dict(), None
    cfg = LAYOUTS["hf"].config_json(spec)
    cls = transformers.DeiTConfig if spec.distilled else transformers.ViTConfig
    config = cls(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    model_cls = (transformers.DeiTForImageClassificationWithTeacher if spec.distilled
                 else transformers.ViTForImageClassification)
    return randomize_(model_cls(config)).state_dict(), cfg


@pytest.mark.parametrize("case,layout", [p for p in PAIRS if p[1] != "deit"], ids=lambda v: str(v))
def test_infer_spec_from_runtime_state_dict(case, layout):
    spec = spec_of(case)
    sd, cfg = _runtime_state_dict(layout, spec)
    assert detect(sd) is LAYOUTS[layout]
    canonical, unexpected = from_layout(layout, sd)
    assert not unexpected, unexpected
    if layout == "torchvision" and not spec.qkv_bias:
        canonical = {k: v for k, v in canonical.items() if not k.endswith("attn.qkv.bias")}
    hints = LAYOUTS[layout].read_hints(cfg)
    if layout == "torchvision":      # no config file: heads are the user's hint (else head dim 64 is assumed)
        hints["num_heads"] = spec.num_heads
    got, notes = infer_spec({k: v.shape for k, v in canonical.items()}, hints)
    assert got == spec, (got, notes)
    assert all(isinstance(n, str) and "\n" not in n for n in notes)


def test_infer_spec_reports_assumptions_and_uses_hints():
    spec = spec_of("nonsquare")
    shapes = canonical_shapes(spec)
    guessed, notes = infer_spec(shapes)     # 4x6 grid + 1 prefix row = 25 rows: looks like 5x5
    assert guessed != spec and any("square" in n for n in notes)
    assert any("num_heads" in n for n in notes) and any("eps" in n for n in notes)
    got, notes = infer_spec(shapes, {"img_size": [32, 48], "num_heads": 2, "layer_norm_eps": 1e-6})
    assert got == spec and notes == []


def test_infer_spec_refuses_unknown_and_inconsistent_tensors():
    shapes = dict(canonical_shapes(spec_of("plain")))
    with pytest.raises(LayoutError, match="not part of a plain ViT"):
        infer_spec({**shapes, "attn_pool.latent": (1, 1, 32)})
    bad = dict(shapes)
    bad["blocks.1.mlp.fc1.weight"] = (64, 32)
    with pytest.raises(LayoutError, match="expected"):
        infer_spec(bad, {"num_heads": 2})
    with pytest.raises(LayoutError, match="no square grid"):
        infer_spec({**shapes, "pos_embed": (1, 21, 32)})


def test_torchvision_legacy_mlp_names_and_hf_v5_names_read():
    spec = spec_of("plain")
    canonical = random_canonical(spec)
    tv = to_layout("torchvision", spec, canonical)
    legacy = {k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."): v for k, v in tv.items()}
    assert any("linear_1" in k for k in legacy)
    back, unexpected = from_layout("torchvision", legacy)
    assert not unexpected and all(torch.equal(back[k], canonical[k]) for k in canonical)
    hf_model = transformers.ViTForImageClassification(transformers.ViTConfig(
        **{k: v for k, v in LAYOUTS["hf"].config_json(spec).items() if k not in ("architectures", "model_type")}))
    v5 = hf_model.state_dict()
    assert any(".layers.0.attention.q_proj." in k for k in v5)   # in-memory names of transformers 5
    back, unexpected = from_layout("hf", v5)
    assert not unexpected and set(back) == set(canonical)


def test_deit_reads_gamma_and_pre_logits_and_writes_ls_names():
    spec = ViTSpec(**{**BASE, "layer_scale": True, "representation_size": 16}).validate()
    canonical = random_canonical(spec)
    sd = to_layout("deit", spec, canonical)
    assert "pre_logits.fc.weight" in sd and "blocks.0.ls1.gamma" in sd
    old = {k.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2"): v for k, v in sd.items()}
    assert detect(old) is LAYOUTS["deit"] and detect(sd) is LAYOUTS["deit"]
    back, unexpected = from_layout("deit", old)
    assert not unexpected and all(torch.equal(back[k], canonical[k]) for k in canonical)


def test_spec_json_round_trip_with_provenance():
    prov = PosEmbedProvenance().then("timm", (4, 4), (6, 6)).then("hf", (6, 6), (6, 8))
    spec = spec_of("distilled").replace(img_size=(48, 64), provenance=prov)
    again = ViTSpec.from_json(spec.to_json())
    assert again == spec and again.provenance == prov
    assert again.provenance.trained_grid == (4, 4) and again.provenance.resampled[-1].method == "hf"
    assert spec.trained_grid == (4, 4) and spec_of("plain").trained_grid == (4, 4)
    assert spec.to_dict()["family"] == "vit"


def test_geometry_messages():
    assert geometry.grid_of(224, 16) == ((14, 14), None)
    _, bad = geometry.grid_of((224, 100), 16)
    assert "width 100" in bad[0] and "96" in bad[1]
    with pytest.raises(UsageError, match="divisible"):
        ViTSpec(**{**BASE, "num_heads": 3}).validate()
    with pytest.raises(UsageError, match="class token"):
        ViTSpec(**{**BASE, "class_token": False}).validate()
    with pytest.raises(UsageError, match="no_embed_class"):
        ViTSpec(**{**BASE, "distilled": True, "no_embed_class": True}).validate()
    assert geometry.parse_size("224,160") == (224, 160) and geometry.parse_size("384") == (384, 384)


# -- resamplers vs each runtime's own function ------------------------------------------------
def _smooth_pos(rows: int, prefix: int, grid, dim: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = grid
    yy, xx = torch.meshgrid(torch.arange(h) / h, torch.arange(w) / w, indexing="ij")
    freq = torch.rand(dim, 2, generator=g) * 6
    grid_rows = torch.sin(freq[:, 0, None, None] * yy * math.pi + freq[:, 1, None, None] * xx * math.pi)
    grid_rows = grid_rows.reshape(dim, -1).T + 0.25 * torch.randn(h * w, dim, generator=g)
    pe = torch.cat([torch.randn(prefix, dim, generator=g), grid_rows])[None]
    assert pe.shape[1] == rows
    return pe.contiguous()


@pytest.mark.parametrize("old,new,prefix", [((8, 8), (12, 12), 1), ((6, 6), (4, 4), 1), ((8, 8), (12, 12), 2),
                                            ((8, 8), (12, 12), 0), ((4, 6), (6, 9), 1), ((7, 7), (5, 9), 5)])
def test_timm_and_bilinear_resamplers_match_timm(old, new, prefix):
    from timm.layers import resample_abs_pos_embed
    pe = _smooth_pos(prefix + old[0] * old[1], prefix, old)
    ours = resample_pos_embed(pe, old, new, prefix, "timm")
    theirs = resample_abs_pos_embed(pe, list(new), list(old), num_prefix_tokens=prefix)
    assert (ours - theirs).abs().max().item() <= 1e-6
    assert torch.equal(ours[:, :prefix], pe[:, :prefix])
    ours = resample_pos_embed(pe, old, new, prefix, "bilinear")
    theirs = resample_abs_pos_embed(pe, list(new), list(old), num_prefix_tokens=prefix,
                                    interpolation="bilinear", antialias=False)   # timm's .npz loader
    assert (ours - theirs).abs().max().item() <= 1e-6


def _hf_embeddings(pe, grid, patch, distilled=False):
    dim = pe.shape[-1]
    kw = dict(hidden_size=dim, num_hidden_layers=1, num_attention_heads=2, image_size=grid * patch,
              patch_size=patch)
    if distilled:
        emb = transformers.models.deit.modeling_deit.DeiTEmbeddings(transformers.DeiTConfig(**kw))
    else:
        emb = transformers.models.vit.modeling_vit.ViTEmbeddings(transformers.ViTConfig(**kw))
    with torch.no_grad():
        emb.position_embeddings.copy_(pe)
    return emb


@pytest.mark.parametrize("old,new", [(8, (12, 12)), (6, (4, 4)), (6, (8, 10)), (14, (24, 24))])
def test_hf_resampler_matches_transformers(old, new):
    patch = 8
    for distilled in (False, True):
        prefix = 2 if distilled else 1
        pe = _smooth_pos(prefix + old * old, prefix, (old, old))
        emb = _hf_embeddings(pe, old, patch, distilled)
        tokens = torch.zeros(1, prefix + new[0] * new[1], pe.shape[-1])
        with torch.no_grad():
            theirs = emb.interpolate_pos_encoding(tokens, new[0] * patch, new[1] * patch)
        ours = resample_pos_embed(pe, (old, old), new, prefix, "hf")
        assert theirs.shape == ours.shape
        assert (ours - theirs).abs().max().item() <= 1e-6


def _hf_legacy_interpolate(position_embeddings, patch_size, height, width):
    """transformers 4.44 ViTEmbeddings.interpolate_pos_encoding (DINO), transcribed: the installed
    transformers (>= 4.45) no longer has it."""
    num_positions = position_embeddings.shape[1] - 1
    class_pos_embed = position_embeddings[:, 0]
    patch_pos_embed = position_embeddings[:, 1:]
    dim = position_embeddings.shape[-1]
    h0, w0 = height // patch_size, width // patch_size
    h0, w0 = h0 + 0.1, w0 + 0.1
    patch_pos_embed = patch_pos_embed.reshape(1, int(math.sqrt(num_positions)), int(math.sqrt(num_positions)), dim)
    patch_pos_embed = patch_pos_embed.permute(0, 3, 1, 2)
    patch_pos_embed = F.interpolate(patch_pos_embed, scale_factor=(h0 / math.sqrt(num_positions),
                                                                   w0 / math.sqrt(num_positions)),
                                    mode="bicubic", align_corners=False)
    assert int(h0) == patch_pos_embed.shape[-2] and int(w0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


@pytest.mark.parametrize("old,new", [(8, (12, 12)), (6, (8, 8)), (6, (4, 4)), (6, (8, 10)), (14, (24, 24))])
def test_hf_legacy_resampler_matches_transformers_444(old, new):
    pe = _smooth_pos(1 + old * old, 1, (old, old))
    theirs = _hf_legacy_interpolate(pe, 8, new[0] * 8, new[1] * 8)
    ours = resample_pos_embed(pe, (old, old), new, 1, "hf-legacy")
    assert (ours - theirs).abs().max().item() <= 1e-6
    assert (ours - resample_pos_embed(pe, (old, old), new, 1, "hf")).abs().max().item() > 1e-3  # really differs


@pytest.mark.parametrize("old,new", [(8, 12), (6, 4), (14, 24)])
def test_torchvision_resampler_matches_torchvision(old, new):
    from torchvision.models.vision_transformer import interpolate_embeddings
    patch = 16
    pe = _smooth_pos(1 + old * old, 1, (old, old))
    theirs = interpolate_embeddings(new * patch, patch, {"encoder.pos_embedding": pe.clone()})["encoder.pos_embedding"]
    ours = resample_pos_embed(pe, (old, old), (new, new), 1, "torchvision")
    assert (ours - theirs).abs().max().item() <= 1e-6


def test_resampler_refusals_and_identity():
    pe = _smooth_pos(17, 1, (4, 4))
    assert resample_pos_embed(pe, (4, 4), (4, 4), 1, "hf") is pe
    with pytest.raises(UsageError, match="Unknown resampling method"):
        resample_pos_embed(pe, (4, 4), (6, 6), 1, "nearest")
    with pytest.raises(UsageError, match="prefix rows"):
        resample_pos_embed(pe, (4, 4), (6, 6), 2, "timm")


def test_methods_differ_from_each_other():
    pe = _smooth_pos(65, 1, (8, 8))
    outs = {m: resample_pos_embed(pe, (8, 8), (12, 12), 1, m) for m in ("timm", "hf", "hf-legacy", "torchvision",
                                                                         "bilinear")}
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert (outs[a] - outs[b]).abs().max().item() > 1e-3, (a, b)


def test_patch_embed_resampler_matches_timm_and_is_exact_on_resized_patches(tmp_path):
    from timm.layers import resample_patch_embed as timm_resample
    spec = spec_of("plain")
    canonical = random_canonical(spec)
    w = canonical["patch_embed.proj.weight"]
    for new in ((16, 16), (6, 6), (8, 12)):
        assert (resample_patch_embed(w, new) - timm_resample(w, list(new))).abs().max().item() <= 1e-6
    # grid stays 4x4: patch 8 -> 16 means a 64 px image; pos_embed untouched
    new_spec = spec.replace(img_size=64, patch_size=16)
    moved = dict(canonical, **{"patch_embed.proj.weight": resample_patch_embed(w, (16, 16))})
    x = images(spec)
    src = logits(reference(spec, canonical), x)
    dst = logits(reference(new_spec, moved), resize_patches(x, 8, 16))
    assert (src - dst).abs().max().item() <= 1e-4


def test_hf_baked_resample_equals_runtime_interpolation(tmp_path):
    """--method hf baked into an hf folder at the new size == the source run by transformers with
    interpolate_pos_encoding=True at that size (a runtime equivalence the check can use)."""
    spec = spec_of("plain")
    canonical = random_canonical(spec)
    src = load_runtime("hf", spec, to_layout("hf", spec, canonical), tmp_path / "src")
    new_spec = spec.replace(img_size=48)
    moved = dict(canonical, pos_embed=resample_pos_embed(canonical["pos_embed"], spec.grid, new_spec.grid, 1, "hf"))
    dst = load_runtime("hf", new_spec, to_layout("hf", new_spec, moved), tmp_path / "dst")
    x = images(new_spec)
    with torch.no_grad():
        a = src(pixel_values=x, interpolate_pos_encoding=True).logits
        b = dst(pixel_values=x).logits
    assert (a - b).abs().max().item() <= 1e-6
    ref = logits(reference(new_spec, moved), x)
    assert (ref - b).abs().max().item() <= 1e-4


def test_timm_baked_resample_equals_dynamic_img_size(tmp_path):
    spec = spec_of("distilled")
    canonical = random_canonical(spec)
    from vit_runtimes import timm_model
    from swin_convert.families.vit.layouts import timm as T
    dyn = timm.create_model(T.architecture(spec), pretrained=False, dynamic_img_size=True, **T.model_args(spec))
    dyn.load_state_dict(canonical, strict=True)
    new_spec = spec.replace(img_size=(48, 40))
    moved = dict(canonical, pos_embed=resample_pos_embed(canonical["pos_embed"], spec.grid, new_spec.grid, 2, "timm"))
    dst = load_runtime("timm", new_spec, to_layout("timm", new_spec, moved), tmp_path / "dst")
    x = images(new_spec)
    assert (logits(dyn.eval(), x) - logits(dst, x)).abs().max().item() <= 1e-6
    assert timm_model  # noqa: B018


# -- transfer (plan + apply) ---------------------------------------------------------------------
from swin_convert.errors import IncompatibleSpecError  # noqa: E402
from swin_convert.families.vit import transfer  # noqa: E402


@pytest.mark.parametrize("target", ["timm", "hf", "torchvision", "deit"])
def test_transfer_default_method_is_the_target_runtimes_own(target, tmp_path):
    spec = spec_of("plain")
    canonical = random_canonical(spec)
    new, notes = transfer.plan(spec, img_size=48, target_layout=target, target_limits=LAYOUTS[target].limits)
    method = {"timm": "timm", "hf": "hf", "torchvision": "torchvision", "deit": "hf"}[target]
    assert new.provenance.resampled[-1].method == method and new.provenance.trained_grid == (4, 4)
    assert any(method in n for n in notes)
    changed = transfer.apply(spec, new, canonical)
    assert set(changed) == {"pos_embed"}
    assert torch.equal(changed["pos_embed"][:, :1], canonical["pos_embed"][:, :1])
    moved = dict(canonical, **changed)
    runtime = load_runtime(target, new, to_layout(target, new, moved), tmp_path / target)
    x = images(new)
    assert (logits(runtime, x) - logits(reference(new, moved), x)).abs().max().item() <= 1e-4


def test_transfer_refusals():
    spec = spec_of("plain")
    with pytest.raises(UsageError, match="not a multiple"):
        transfer.plan(spec, img_size=50)
    with pytest.raises(UsageError, match="already"):
        transfer.plan(spec, img_size=32)
    with pytest.raises(IncompatibleSpecError, match="non-square"):
        transfer.plan(spec, img_size=(32, 48), target_layout="torchvision", target_limits=LAYOUTS["torchvision"].limits)
    with pytest.raises(UsageError, match="Unknown"):
        transfer.plan(spec, img_size=48, method="nearest")


def test_transfer_patch_size_and_grid_together():
    spec = spec_of("distilled")
    canonical = random_canonical(spec)
    new, notes = transfer.plan(spec, img_size=96, patch_size=16, method="bilinear")   # grid 4 -> 6
    changed = transfer.apply(spec, new, canonical)
    assert set(changed) == {"pos_embed", "patch_embed.proj.weight"} and len(notes) == 2
    assert changed["pos_embed"].shape == (1, 2 + 36, 32) and changed["patch_embed.proj.weight"].shape[-1] == 16
    assert torch.equal(changed["pos_embed"][:, :2], canonical["pos_embed"][:, :2])
    ReferenceViT(new).load_state_dict(dict(canonical, **changed), strict=True)


def test_hf_pooler_is_the_representation_layer():
    """A transformers ViTModel (e.g. an in21k release) reads with its pooler as pre_logits."""
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                                 image_size=32, patch_size=8, layer_norm_eps=1e-6)
    from vit_runtimes import randomize_
    model = randomize_(transformers.ViTModel(cfg, add_pooling_layer=True)).eval()
    canonical, unexpected = from_layout("hf", model.state_dict())
    assert not unexpected
    spec, _ = infer_spec({k: v.shape for k, v in canonical.items()}, LAYOUTS["hf"].read_hints(cfg.to_dict()))
    assert spec.representation_size == 32 and spec.num_classes == 0
    x = images(spec)
    with torch.no_grad():
        want = model(pixel_values=x).pooler_output
    got = logits(reference(spec, canonical), x)
    assert (got - want).abs().max().item() <= 1e-4
    assert "pre_logits" in LAYOUTS["hf"].limits(spec)    # readable, never written back to hf


def test_hf_writer_names_equal_save_pretrained(tmp_path):
    from safetensors import safe_open
    for case in ("plain", "distilled"):
        spec = spec_of(case)
        sd, cfg = _runtime_state_dict("hf", spec)
        model_cls = (transformers.DeiTForImageClassificationWithTeacher if spec.distilled
                     else transformers.ViTForImageClassification)
        model = model_cls(transformers.AutoConfig.for_model(cfg["model_type"], **{
            k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}))
        model.save_pretrained(tmp_path / case)
        with safe_open(str(tmp_path / case / "model.safetensors"), "pt") as f:
            disk = set(f.keys())
        canonical, _ = from_layout("hf", sd)
        assert set(to_layout("hf", spec, canonical)) == disk


def test_detect_does_not_take_swin_or_cswin_keys():
    swin_timm = ["patch_embed.proj.weight", "layers.0.blocks.0.attn.qkv.weight", "head.fc.weight"]
    swin_hf = ["swin.embeddings.patch_embeddings.projection.weight", "swin.encoder.layers.0.blocks.0.output.dense.weight"]
    swin_tv = ["features.0.0.weight", "features.1.0.attn.qkv.weight"]
    cswin = ["stage1_conv_embed.0.weight", "stage1.0.qkv.weight"]
    for keys in (swin_timm, swin_hf, swin_tv, cswin):
        assert detect(keys) is None, keys


@pytest.mark.parametrize("case,layout", [("distilled", "hf"), ("no_qkv_bias", "torchvision"), ("plain", "deit"),
                                         ("reg_avg_ls", "timm")])
def test_tables_drive_the_projects_lazy_keymap(case, layout):
    """swin_convert.core.keymap applies these tables as they are: ``version`` = the layout's variant."""
    from swin_convert.core import keymap
    from swin_convert.core.tensors import TorchSource
    from swin_convert.core.torch_io import to_torch
    spec = spec_of(case)
    mod = LAYOUTS[layout]
    canonical = random_canonical(spec)
    raw = keymap.from_canonical(mod.LAYOUT, mod.variant(spec), {k: TorchSource(v) for k, v in canonical.items()})
    ours = to_layout(layout, spec, canonical)
    extra = set(mod.extra_tensors(spec))
    assert set(raw) | extra == set(ours)
    assert all(torch.equal(to_torch(raw[k]), ours[k]) for k in raw)
    parsed = keymap.to_canonical(mod.LAYOUT, mod.variant_of_keys(ours), {k: TorchSource(v) for k, v in ours.items()})
    assert not parsed.unexpected and not parsed.buffers
    got = {k: to_torch(v) for k, v in parsed.tensors.items() if not (k in extra or k not in canonical)}
    assert set(got) == set(canonical) and all(torch.equal(got[k], canonical[k]) for k in canonical)


@pytest.mark.parametrize("case,layout", PAIRS, ids=[f"{c}-{lay}" for c, lay in PAIRS])
def test_build_runtime_loads_strictly(case, layout):
    from vit_runtimes import build_runtime
    spec = spec_of(case)
    model = build_runtime(layout, spec)
    sd = to_layout(layout, spec, random_canonical(spec))
    if layout == "hf":   # transformers 5 keeps its own module names in memory: load through its v5 mapping
        canonical, _ = from_layout("hf", sd)
        own, _ = from_layout("hf", model.state_dict())
        assert {k: v.shape for k, v in own.items()} == {k: v.shape for k, v in canonical.items()}
    else:
        model.load_state_dict(sd, strict=True)


@pytest.mark.parametrize("case", ["plain", "distilled", "reg_avg_ls", "nonsquare", "noclass_prenorm"])
def test_hints_from_timms_own_save_for_hf(case, tmp_path):
    """timm's save_for_hf writes config.json; our reader + inference recover the spec from it."""
    import json

    from safetensors import safe_open
    from timm.models._hub import save_for_hf

    from vit_runtimes import randomize_, timm_model
    spec = spec_of(case)
    model = randomize_(timm_model(spec))
    save_for_hf(model, str(tmp_path), safe_serialization=True)
    cfg = json.loads((tmp_path / "config.json").read_text())
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    got, notes = infer_spec(shapes, LAYOUTS["timm"].read_hints(cfg))
    assert got == spec, (got, cfg.get("model_args"), notes)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_resamplers_match_in_half_precision(dtype):
    """timm casts to float32; transformers and torchvision interpolate in the tensor's dtype."""
    from timm.layers import resample_abs_pos_embed
    from torchvision.models.vision_transformer import interpolate_embeddings
    pe = _smooth_pos(1 + 36, 1, (6, 6)).to(dtype)
    try:
        tv = interpolate_embeddings(160, 16, {"encoder.pos_embedding": pe.clone()})["encoder.pos_embedding"]
    except RuntimeError as e:   # bicubic not implemented for this dtype on this device
        pytest.skip(str(e))
    assert torch.equal(resample_pos_embed(pe, (6, 6), (10, 10), 1, "torchvision"), tv)
    emb = _hf_embeddings(pe.float(), 6, 16)
    emb = emb.to(dtype)
    with torch.no_grad():
        hf = emb.interpolate_pos_encoding(torch.zeros(1, 101, 32, dtype=dtype), 160, 160)
    assert torch.equal(resample_pos_embed(pe, (6, 6), (10, 10), 1, "hf"), hf)
    tm = resample_abs_pos_embed(pe, [10, 10], [6, 6], num_prefix_tokens=1)
    assert torch.equal(resample_pos_embed(pe, (6, 6), (10, 10), 1, "timm"), tm)


@pytest.mark.parametrize("old,new", [(14, (24, 24)), (7, (12, 9)), (24, (14, 14)), (3, (97, 5)), (16, (37, 61))])
def test_legacy_grid_is_interpolates_own_output_size(old, new):
    """The torch-free pre-check of hf-legacy sizes the output exactly as F.interpolate does."""
    from swin_convert.families.vit.spec import legacy_grid
    scale = ((new[0] + 0.1) / old, (new[1] + 0.1) / old)
    out = F.interpolate(torch.zeros(1, 1, old, old), scale_factor=scale, mode="bicubic", align_corners=False)
    assert legacy_grid((old, old), new) == tuple(out.shape[-2:])


def test_upscale_defers_the_resample_until_the_write():
    """transfer() only announces pos_embed / the patch kernel (dtype, shape); their values, the same
    as transfer.apply's, are made when first needed; every other tensor is the source's own."""
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import Deferred, TorchSource
    from swin_convert.core.torch_io import to_torch
    from swin_convert.families.vit.convert import transfer as vit_transfer
    spec = spec_of("distilled")
    canonical = random_canonical(spec)
    ckpt = CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in canonical.items()}, source="t",
                               source_layout="timm", family="vit")
    result = vit_transfer(ckpt, {"res": 96, "patch_size": 16, "method": "bilinear", "target_layout": "timm"})
    moved = result.checkpoint.tensors
    lazy = {k for k, v in moved.items() if isinstance(v, Deferred)}
    assert lazy == {"pos_embed", "patch_embed.proj.weight"}
    assert all(moved[k] is ckpt.tensors[k] for k in moved if k not in lazy)
    new, _ = transfer.plan(spec, img_size=96, patch_size=16, method="bilinear")
    want = transfer.apply(spec, new, canonical)
    for k in lazy:
        assert moved[k].shape == tuple(want[k].shape) and moved[k].dtype == "F32"
        assert torch.equal(to_torch(moved[k]), want[k])
