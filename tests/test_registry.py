"""The family registry: one file adds a layout; detection by scored signatures; a clear error."""
from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest
import torch

from swin_convert import api
from swin_convert.core.tensors import TorchSource
from swin_convert.errors import LayoutError
from swin_convert.families import detect, get_family, get_layout, register_layout
from swin_convert.families.swin.testing import random_reference, tiny_spec
from swin_convert.core.checkpoint import CanonicalCheckpoint

THROWAWAY = '''
"""A made-up layout: every key under 'net.', stages renamed 'stage{s+1}', q/k/v split in three files,
patch-merging reduction columns in Unfold order."""
from swin_convert.core.ops import PermuteBlocks
from swin_convert.core.schema import Layout, Signature, rule

TOY = Layout(
    name="toy",
    title="a throw-away layout",
    rules=(
        rule("layers.{s}.blocks.{b}.attn.qkv.{w}", ("net.stage{s+1}.{b}.q.{w}", "net.stage{s+1}.{b}.k.{w}",
                                                     "net.stage{s+1}.{b}.v.{w}")),
        rule("layers.{s}.downsample.reduction.weight", "net.stage{s+1}.merge.weight",
             op=PermuteBlocks((0, 2, 1, 3), dim=-1)),
        rule("layers.{s}.{*}", "net.stage{s+1}.{*}"),
        rule("{*}", "net.{*}"),
    ),
    signature=Signature(required=(r"^net\\.stage1\\.",)),
)
'''


@pytest.fixture
def toy_layout(tmp_path):
    path = tmp_path / "toy_layout.py"
    path.write_text(textwrap.dedent(THROWAWAY))
    spec = importlib.util.spec_from_file_location("toy_layout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    register_layout(module.TOY, "swin")              # the one registry line
    yield module.TOY
    get_family("swin").layouts.pop("toy")
    sys.modules.pop("toy_layout", None)


def test_a_layout_from_a_temporary_module_round_trips(toy_layout, tmp_path):
    spec = tiny_spec(1)
    model = random_reference(spec, seed=3)
    state = model.state_dict()
    ckpt = CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in state.items()}, "random", "official")
    api.save(ckpt, "toy", tmp_path / "toy.safetensors")
    from safetensors.torch import load_file
    toy = load_file(tmp_path / "toy.safetensors")
    assert "net.stage1.0.q.weight" in toy and "net.stage1.merge.weight" in toy and "net.norm.weight" in toy
    assert not torch.equal(toy["net.stage1.merge.weight"], state["layers.0.downsample.reduction.weight"])
    family, layout, version = detect(toy)
    assert (family.name, layout.name, version) == ("swin", "toy", 1)
    back = api.load(tmp_path / "toy.safetensors", img_size=spec.img_size)
    assert back.source_layout == "toy"
    api.save(back, "official", tmp_path / "official.safetensors")
    again = load_file(tmp_path / "official.safetensors")
    for k, v in state.items():
        assert torch.equal(again[k], v), k                     # bit-identical there and back


def test_registry_refuses_silent_overwrite():
    with pytest.raises(ValueError, match="already registered"):
        register_layout(get_layout("timm"), "swin")


def test_unknown_keys_name_the_closest_layouts():
    with pytest.raises(LayoutError) as e:
        detect(["layers.0.blocks.0.norm1.weight", "something.else"])
    assert "not a checkpoint of a known family" in e.value.message
    assert "Closest: swin/official, swin/timm" in e.value.hint


def test_detection_scores():
    off = ["patch_embed.proj.weight", "layers.0.blocks.0.norm1.weight", "layers.0.downsample.norm.weight", "head.weight"]
    tim = ["patch_embed.proj.weight", "layers.0.blocks.0.norm1.weight", "layers.1.downsample.norm.weight",
           "head.fc.weight"]
    hf = ["swin.embeddings.patch_embeddings.projection.weight"]
    assert detect(off)[1].name == "official" and detect(tim)[1].name == "timm" and detect(hf)[1].name == "hf"
    assert detect(off[:2])[1].name == "official"       # a tie goes to the first registered
