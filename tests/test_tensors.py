"""Lazy sources, the streaming safetensors writer and the torch-free remap path."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from runtimes import save_source, small_spec
from swin_convert.families import to_layout as from_canonical
from swin_convert.families import get_layout
from swin_convert.api import load as load_canonical
from swin_convert.core.tensors import (ArraySource, Concat, FileSlice, concat_rows, read_safetensors_header, row_slice,
                                  write_safetensors)


def test_writer_output_reads_back_with_safetensors(tmp_path):
    src = tmp_path / "a.safetensors"
    tensors = {"a": torch.randn(6, 4), "b": torch.arange(5, dtype=torch.int64), "c": torch.randn(3).half()}
    save_file(tensors, str(src))
    meta, sources = read_safetensors_header(src)
    out = tmp_path / "b.safetensors"
    write_safetensors(out, [("x", row_slice(sources["a"], 2, 4)), ("b", sources["b"]), ("c", sources["c"]),
                            ("arr", ArraySource(np.ones((2, 2), np.float32)))], {"k": "v"})
    back = load_file(str(out))
    assert torch.equal(back["x"], tensors["a"][2:4]) and torch.equal(back["b"], tensors["b"])
    assert torch.equal(back["c"], tensors["c"]) and torch.equal(back["arr"], torch.ones(2, 2))
    with safe_open(str(out), "pt") as f:
        assert f.metadata() == {"k": "v"}


def test_row_slices_of_a_file_stay_file_ranges_and_merge_back(tmp_path):
    src = tmp_path / "a.safetensors"
    save_file({"qkv": torch.randn(9, 3)}, str(src))
    _, sources = read_safetensors_header(src)
    parts = [row_slice(sources["qkv"], i * 3, (i + 1) * 3) for i in range(3)]
    assert all(isinstance(p, FileSlice) for p in parts)
    assert concat_rows(parts) == sources["qkv"]
    assert isinstance(concat_rows([parts[1], parts[0], parts[2]]), Concat)


def test_renamed_and_split_tensors_are_byte_copies(tmp_path):
    """timm safetensors -> hf: every weight is a file range of the input (no tensor op)."""
    path, _ = save_source("timm", small_spec(1), tmp_path)
    ckpt = load_canonical(path)
    out = from_canonical(get_layout("hf"), ckpt.spec, ckpt.tensors)
    assert all(isinstance(s, FileSlice) and s.path == str(path) for s in out.values())


def test_safetensors_remap_does_not_import_torch(tmp_path):
    spec = small_spec(2)
    path, _ = save_source("timm", spec, tmp_path)
    out = tmp_path / "off"
    code = ("import sys; from swin_convert import api; "
            f"api.remap({str(path)!r}, 'official', {str(out)!r}, img_size=64, window=4, pretrained_window=3); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (out / "model.safetensors").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        spec_json = json.loads(f.metadata()["swin_convert.spec"])
    assert spec_json["pretrained_window_sizes"] == [3, 3, 3]


def test_cli_help_does_not_import_torch():
    code = ("import sys; from swin_convert.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_pth_reader_gives_file_ranges_equal_to_torch_load(tmp_path):
    from swin_convert.io.pth import read_pth
    from swin_convert.core.torch_io import to_torch
    state = {"a": torch.randn(5, 3), "b": torch.arange(7), "h": torch.randn(4).half(),
             "p": torch.nn.Parameter(torch.randn(2, 2)), "shared": torch.randn(10)[2:6]}
    path = tmp_path / "x.pth"
    torch.save({"model": state, "epoch": 3, "optimizer": {"lr": 0.1}}, path)
    obj = read_pth(str(path))
    assert obj["epoch"] == 3 and obj["optimizer"] == {"lr": 0.1}
    assert all(isinstance(v, FileSlice) for v in obj["model"].values())
    for k, v in state.items():
        assert torch.equal(to_torch(obj["model"][k]), v.detach()), k


def test_pth_reader_hands_unusual_files_to_torch(tmp_path):
    """A non-contiguous view is outside the fast reader: torch.load(weights_only) reads it instead."""
    import pytest
    from swin_convert.io.pth import Unsupported, read_pth
    from swin_convert.io.reading import _load_pth
    path = tmp_path / "t.pth"
    t = torch.randn(3, 4)
    torch.save({"t": t.t()}, path)
    with pytest.raises(Unsupported):
        read_pth(str(path))
    from swin_convert.core.torch_io import to_torch
    assert torch.equal(to_torch(_load_pth(path)["t"]), t.t())


def test_pth_remap_does_not_import_torch(tmp_path):
    path, _ = save_source("official", small_spec(1), tmp_path)
    out = tmp_path / "t.safetensors"
    code = ("import sys; from swin_convert import api; "
            f"api.remap({str(path)!r}, 'timm', {str(out)!r}); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    ref = torch.load(path, weights_only=True)["model"]
    assert torch.equal(load_file(str(out))["head.fc.weight"], ref["head.weight"])


def _data_layout(path):
    """(data start, {name: (begin, end)}) of a safetensors file's header."""
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return 8 + n, {k: tuple(v["data_offsets"]) for k, v in header.items()}


def spy_copies(monkeypatch) -> list:
    """Every os.copy_file_range call from now on, as (offset_src, offset_dst, count); still copies."""
    import os
    calls = []
    real = os.copy_file_range

    def spy(src, dst, count, offset_src=None, offset_dst=None, *args):
        calls.append((offset_src, offset_dst, count))
        return real(src, dst, count, offset_src, offset_dst, *args)
    monkeypatch.setattr(os, "copy_file_range", spy)
    return calls


def test_writer_keeps_the_order_and_page_aligns_the_largest_range(tmp_path, monkeypatch):
    """Header and data in the order given; tensors adjacent in their file and here are one kernel
    copy; the header is padded so the largest range keeps its offset within a page."""
    src = tmp_path / "a.safetensors"
    tensors = {"a": torch.randn(1024, 4), "b": torch.randn(3000), "c": torch.randn(7)}
    save_file(tensors, str(src), metadata={"note": "x" * 37})   # an odd header length
    src_start, src_spans = _data_layout(src)
    _, sources = read_safetensors_header(src)
    order = sorted(tensors, key=lambda k: src_spans[k][0])          # as they lie in the file
    calls = spy_copies(monkeypatch)
    out = tmp_path / "b.safetensors"
    items = [("arr", ArraySource(np.arange(6, dtype=np.float32)))] + [(k, sources[k]) for k in order]
    write_safetensors(out, items, {"k": "v"})
    start, spans = _data_layout(out)
    assert list(spans) == ["arr"] + order
    assert sorted(spans, key=lambda k: spans[k][0]) == ["arr"] + order     # data in the same order
    assert len(calls) == 1 and calls[0][2] == sum(t.numel() * 4 for t in tensors.values())
    assert (start + spans[order[0]][0]) % 4096 == (src_start + src_spans[order[0]][0]) % 4096
    assert start % 8 == 0
    back = load_file(str(out))
    assert list(back) == ["arr"] + order
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)
    assert torch.equal(back["arr"], torch.arange(6, dtype=torch.float32))


def test_vit_safetensors_remap_is_one_kernel_copy(tmp_path, monkeypatch):
    """ViT timm -> hf of a whole file: renames and q/k/v row blocks lie back to back in both, so the
    data section is one copy_file_range, at the same offset within a page."""
    from swin_convert import api
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.families.vit.shapes import canonical_shapes
    from swin_convert.families.vit.spec import ViTSpec
    spec = ViTSpec(embed_dim=64, depth=3, num_heads=4, img_size=32, patch_size=8, num_classes=5)
    rng = np.random.default_rng(0)
    tensors = {k: ArraySource(rng.standard_normal(s, dtype=np.float32)) for k, s in canonical_shapes(spec).items()}
    path = tmp_path / "timm.safetensors"
    api.save(CanonicalCheckpoint(spec, tensors, source="t", source_layout="timm", family="vit"), "timm", path)
    calls = spy_copies(monkeypatch)
    out = tmp_path / "hf.safetensors"
    api.remap(path, "hf", out)
    start, spans = _data_layout(path)
    assert len(calls) == 1 and calls[0][2] == max(end for _, end in spans.values())
    assert calls[0][0] == start and (calls[0][1] - start) % 4096 == 0
    back, want = load_file(str(out)), load_file(str(path))
    assert torch.equal(back["vit.encoder.layer.2.attention.attention.value.weight"],
                       want["blocks.2.attn.qkv.weight"][128:])


def test_deferred_sources_are_made_after_the_copies_and_checked(tmp_path):
    import pytest

    from swin_convert.core.tensors import Deferred
    src = tmp_path / "a.safetensors"
    save_file({"w": torch.randn(64, 64)}, str(src))
    _, sources = read_safetensors_header(src)
    out = tmp_path / "o.safetensors"
    seen = []

    def make():
        seen.append(("make", out.stat().st_size))       # by now the file range is written
        return ArraySource(np.ones((2, 3), np.float32))
    lazy = Deferred("F32", (2, 3), make, label="lazy", prepare=lambda: seen.append(("prepare", None)))
    assert not seen and lazy.nbytes == 24
    write_safetensors(out, [("lazy", lazy), ("w", sources["w"])], {})
    assert [e for e, _ in seen] == ["prepare", "make"] and seen[1][1] >= 64 * 64 * 4
    assert torch.equal(load_file(str(out))["lazy"], torch.ones(2, 3))
    wrong = Deferred("F32", (3, 2), lambda: ArraySource(np.ones((2, 3), np.float32)), label="wrong")
    with pytest.raises(RuntimeError, match="wrong came out F32 \\[2, 3\\]"):
        write_safetensors(tmp_path / "x.safetensors", [("wrong", wrong)], {})


def test_vit_remap_of_file_ranges_imports_neither_torch_nor_numpy(tmp_path):
    """Renames and row splits are byte copies: from .safetensors or a zip .pth, no numpy, no torch."""
    from swin_convert import api
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.families.vit.shapes import canonical_shapes
    from swin_convert.families.vit.spec import ViTSpec
    spec = ViTSpec(embed_dim=32, depth=2, num_heads=2, img_size=32, patch_size=8, num_classes=5)
    rng = np.random.default_rng(1)
    tensors = {k: ArraySource(rng.standard_normal(s, dtype=np.float32)) for k, s in canonical_shapes(spec).items()}
    ckpt = CanonicalCheckpoint(spec, tensors, source="t", source_layout="timm", family="vit")
    for name in ("timm.safetensors", "timm.pth"):
        api.save(ckpt, "timm", tmp_path / name)
        out = tmp_path / f"{name}-hf"
        code = ("import sys; from swin_convert import api; "
                f"api.remap({str(tmp_path / name)!r}, 'hf', {str(out)!r}); "
                "heavy = [m for m in ('torch', 'numpy') if m in sys.modules]; assert not heavy, heavy")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        assert torch.equal(load_file(str(out / "model.safetensors"))["vit.embeddings.cls_token"],
                           torch.from_numpy(tensors["cls_token"].array))
