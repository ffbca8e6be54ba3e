"""The reference forward equals timm's and transformers' forward on the same weights."""
from __future__ import annotations

import pytest
import torch

from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.families.swin.shapes import canonical_shapes
from swin_convert.families.swin.reference import build_reference
from swin_convert.core.torch_io import to_torch

CLAMPED = dict(depths=(1, 1, 1, 2), num_heads=(1, 1, 2, 2), img_size=192, window_size=(12, 12, 12, 6))


def reference_of(path, **kw):
    ckpt = api.load(path, **kw)
    return ckpt, build_reference(ckpt.spec, {k: to_torch(v) for k, v in ckpt.tensors.items()})


@pytest.mark.parametrize("runtime", ("timm", "hf"))
@pytest.mark.parametrize("version", (1, 2))
def test_reference_equals_runtime(tmp_path, runtime, version):
    spec = small_spec(version)
    path, model = save_source(runtime, spec, tmp_path)
    _, ref = reference_of(path, img_size=64, window=4, pretrained_window=spec.pretrained_window_sizes or None)
    x = fixed_input(spec)
    assert (logits(ref, x) - logits(model, x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("runtime,version", [("timm", 1), ("timm", 2), ("hf", 2)])
def test_reference_equals_runtime_with_clamped_last_stage(tmp_path, runtime, version):
    """img 192 / window 12: the last stage map is 6x6, so its window is clamped to 6, shift 0."""
    spec = small_spec(version, **CLAMPED)
    path, model = save_source(runtime, spec, tmp_path)
    ckpt, ref = reference_of(path, img_size=192, window=12,
                             pretrained_window=spec.pretrained_window_sizes or None)
    assert ckpt.spec.window_size == (12, 12, 12, 6) and ckpt.spec.shift_sizes == (6, 6, 0, 0)
    x = fixed_input(spec, 1)
    assert (logits(ref, x) - logits(model, x)).abs().max().item() <= 1e-4


def test_reference_detects_a_swapped_bias_table(tmp_path):
    """The comparison is sensitive: a transposed bias table changes the logits well beyond 1e-4."""
    spec = small_spec(1)
    path, model = save_source("timm", spec, tmp_path)
    ckpt, ref = reference_of(path)
    t = ref.layers[0].blocks[0].attn.relative_position_bias_table
    with torch.no_grad():
        t.copy_(t.flip(0))
    x = fixed_input(spec)
    assert (logits(ref, x) - logits(model, x)).abs().max().item() > 1e-3


@pytest.mark.parametrize("version", (1, 2))
def test_canonical_shapes_match_reference_state_dict(version):
    spec = small_spec(version, ape=True)
    model = build_reference(spec)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == canonical_shapes(spec)
    assert list(model.state_dict()) == list(canonical_shapes(spec))
