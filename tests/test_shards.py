"""Sharded checkpoints (issue 13): model-0000k-of-0000n.safetensors + model.safetensors.index.json,
read (local, Hub, cache) and written (--max-shard-size) as transformers and huggingface_hub do."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from hub_server import FakeHub  # noqa: F401  (the fixtures below use it)
from runtimes import fixed_input, hf_model, logits, save_source, small_spec
from swin_convert import api
from swin_convert.core.tensors import ArraySource, read_safetensors_header
from swin_convert.errors import BadInputError, HubError, UsageError
from swin_convert.io import hub, shards
from test_errors import assert_clean_error
from test_hardening import assert_refused
from test_hub import TOKEN, fake_hub, go_offline, hf_env  # noqa: F401  (fixtures)

SHARD = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")


# --- sizes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("5GB", 5 * 10 ** 9), ("500MB", 500 * 10 ** 6), ("10MiB", 10 * 2 ** 20), ("1GiB", 2 ** 30), ("2KB", 2000),
    ("3KiB", 3072), ("123456", 123456), (123456, 123456), ("1.5GB", 1_500_000_000), ("5gb", 5 * 10 ** 9),
    (" 7 MB ", 7 * 10 ** 6), ("1TB", 10 ** 12), ("64B", 64),
])
def test_parse_size(text, expected):
    assert shards.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "5XB", "-1", "0", "0MB", "5 G B", "1e9", "five", True])
def test_parse_size_refuses(text):
    with pytest.raises(UsageError) as info:
        shards.parse_size(text)
    assert "--max-shard-size" in str(info.value) and "\n" not in str(info.value)


def test_parse_size_agrees_with_huggingface_hub():
    from huggingface_hub.serialization._base import parse_size_to_int
    for text in ("5GB", "500MB", "1.5GB", "2kb", "3TB"):
        assert shards.parse_size(text) == parse_size_to_int(text)


# --- the split: huggingface_hub's, tensor for tensor -----------------------------------------
@pytest.mark.parametrize("max_size", [1, 100, 1000, 4000, 10 ** 9])
def test_split_is_huggingface_hubs(max_size):
    from huggingface_hub import split_torch_state_dict_into_shards
    gen = torch.Generator().manual_seed(max_size)
    sizes = torch.randint(1, 600, (40,), generator=gen).tolist() + [3000, 2, 5000, 7]
    torch_sd = {f"t{i}": torch.zeros(n, dtype=torch.float32) for i, n in enumerate(sizes)}
    ours = {k: ArraySource(v.numpy()) for k, v in torch_sd.items()}
    theirs = split_torch_state_dict_into_shards(torch_sd, max_shard_size=max_size)
    plan = shards.split(ours, max_size)
    assert {name: keys for name, keys in plan} == theirs.filename_to_tensors
    index = json.loads(shards.index_json(plan, ours))
    if len(plan) > 1:
        assert index == {"metadata": theirs.metadata, "weight_map": theirs.tensor_to_filename}


# --- writing ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_source(tmp_path_factory):
    """A transformers Swin V2 folder (save_pretrained) and its model, every tensor re-drawn."""
    folder, model = save_source("hf", small_spec(2), tmp_path_factory.mktemp("src"))
    return folder, model


@pytest.fixture(scope="module")
def sharded(hf_source, tmp_path_factory):
    """The source remapped to hf with --max-shard-size 100KB (through the CLI)."""
    out = tmp_path_factory.mktemp("sharded") / "out"
    result = run_cli("remap", "auto", "hf", hf_source[0], "-o", out, "--max-shard-size", "100KB")
    assert result.returncode == 0, result.stderr
    assert "sharded into" in result.stdout
    return out


def test_shards_are_named_and_indexed_as_transformers_writes_them(sharded, hf_source, tmp_path):
    from huggingface_hub import split_torch_state_dict_into_shards
    files = sorted(p.name for p in sharded.iterdir())
    names = [f for f in files if SHARD.fullmatch(f)]
    n = len(names)
    assert n > 2 and "model.safetensors" not in files and "model.safetensors.index.json" in files
    assert names == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    text = (sharded / "model.safetensors.index.json").read_text()
    index = json.loads(text)
    assert set(index) == {"metadata", "weight_map"} and set(index["metadata"]) == {"total_size"}
    assert text == json.dumps(index, indent=2, sort_keys=True) + "\n"
    # the same grouping as huggingface_hub's split of the same state dict (same order)
    single = tmp_path / "single.safetensors"
    assert run_cli("remap", "auto", "hf", hf_source[0], "-o", single).returncode == 0
    _, order = read_safetensors_header(single)
    state = {k: torch.empty(s.nbytes, dtype=torch.uint8) for k, s in order.items()}
    theirs = split_torch_state_dict_into_shards(state, max_shard_size="100KB")
    assert index["weight_map"] == theirs.tensor_to_filename
    assert index["metadata"]["total_size"] == theirs.metadata["total_size"] == sum(s.nbytes for s in order.values())
    for name in names:   # every shard carries our provenance; none is over the max unless one tensor is
        meta, tensors = read_safetensors_header(sharded / name)
        assert meta["format"] == "pt" and meta["swin_convert.layout"] == "hf" and "swin_convert.spec" in meta
        data = sum(t.nbytes for t in tensors.values())
        assert data <= 100_000 or len(tensors) == 1
        assert set(tensors) == {k for k, v in index["weight_map"].items() if v == name}


def test_transformers_loads_the_shards_strictly(sharded, hf_source):
    import transformers
    _, source_model = hf_source
    model, info = transformers.AutoModelForImageClassification.from_pretrained(str(sharded), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = fixed_input(small_spec(2))
    assert torch.equal(logits(model.eval(), x), logits(source_model, x))


def test_sharded_output_reads_back_bit_identical(sharded, hf_source, tmp_path):
    direct, back = tmp_path / "direct.safetensors", tmp_path / "back.safetensors"
    assert run_cli("remap", "auto", "hf", hf_source[0], "-o", direct).returncode == 0
    result = run_cli("remap", "auto", "hf", sharded, "-o", back)
    assert result.returncode == 0, result.stderr
    assert re.search(r"read \d+ shards listed in model\.safetensors\.index\.json", result.stdout), result.stdout
    meta_a, a = read_safetensors_header(direct)
    meta_b, b = read_safetensors_header(back)
    assert list(a) == list(b)
    assert all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a)
    assert meta_a["swin_convert.spec"] == meta_b["swin_convert.spec"]


def test_inspect_and_check_read_a_sharded_folder(sharded):
    report = api.inspect(sharded)
    assert report.format == "safetensors" and report.ckpt.source_layout == "hf"
    assert report.file_size == sum(p.stat().st_size for p in sharded.glob("model-*.safetensors"))
    assert any("shards listed in model.safetensors.index.json" in n for n in report.ckpt.notes)
    result = run_cli("check", sharded, "--runtime", "reference,transformers", "--num-samples", "2", "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_vit_is_sharded_too_and_check_loads_the_folder(tmp_path):
    """Family-neutral: a timm ViT written to hf in shards loads strictly in transformers, logits as timm's."""
    import transformers
    from safetensors.torch import save_file
    from swin_convert.families.vit.layouts import timm as T
    from swin_convert.families.vit.spec import ViTSpec
    from vit_runtimes import randomize_
    spec = ViTSpec(embed_dim=64, depth=2, num_heads=4, img_size=32, patch_size=8, num_classes=5)
    model = randomize_(T.create(spec), 3).eval()
    src = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(src))
    out = tmp_path / "vit-hf"
    result = run_cli("remap", "timm", "hf", src, "-o", out, "--num-heads", "4", "--max-shard-size", "20KB")
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("model-*.safetensors"))) > 2
    hf, info = transformers.AutoModelForImageClassification.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (hf.eval()(pixel_values=x).logits - model(x)).abs().max().item() <= 1e-4
    check = run_cli("check", out, "--against", src, "--num-heads", "4", "--runtime", "transformers",
                    "--num-samples", "2", "--device", "cpu")
    assert check.returncode == 0, check.stdout + check.stderr


def test_below_the_max_is_one_model_safetensors(hf_source, tmp_path):
    out = tmp_path / "out"
    _, result = api.remap(hf_source[0], "hf", out, max_shard_size="5GB")
    assert (out / "model.safetensors").is_file() and not list(out.glob("model-*"))
    assert not (out / "model.safetensors.index.json").exists() and not any("shard" in n for n in result.notes)


def test_other_layouts_are_sharded_with_a_note_and_the_card_says_how_to_load(tmp_path):
    """torchvision has no folder loader: the card's huggingface_hub.load_torch_model snippet loads the
    shards strictly into torchvision's own model, logits as the source's."""
    from huggingface_hub import load_torch_model
    from swin_convert.families.swin.layouts.torchvision import build_model
    spec = small_spec(1)
    src, source_model = save_source("timm", spec, tmp_path / "src", seed=4)
    out = tmp_path / "tv"
    _, result = api.remap(src, "torchvision", out, img_size=spec.img_size, max_shard_size=60_000)
    assert len(list(out.glob("model-*.safetensors"))) > 1
    assert any("huggingface_hub.load_torch_model" in n for n in result.notes)
    card = (out / "README.md").read_text()
    assert "load_torch_model(model, folder, strict=True)" in card and 'load_file("model.safetensors")' not in card
    model = build_model(spec).eval()
    load_torch_model(model, out, strict=True)
    x = fixed_input(spec)
    assert (logits(model, x) - logits(source_model, x)).abs().max().item() <= 1e-4


def test_upscale_writes_shards(hf_source, tmp_path):
    import transformers
    out = tmp_path / "up"
    api.upscale(hf_source[0], out, to="hf", window=8, res=128, max_shard_size="150KB")
    assert len(list(out.glob("model-*.safetensors"))) > 1
    model, info = transformers.AutoModelForImageClassification.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.window_size == 8 and model.config.image_size == 128


def test_timm_refuses_shards_it_cannot_load(hf_source, tmp_path):
    out = tmp_path / "timm"
    result = run_cli("remap", "auto", "timm", hf_source[0], "-o", out, "--max-shard-size", "100KB")
    assert_clean_error(result, 2, "timm cannot load a sharded folder", out=out)
    _, written = api.remap(hf_source[0], "timm", out, max_shard_size="5GB")    # fits: one file, as ever
    assert (out / "model.safetensors").is_file()


def test_timm_really_cannot_load_a_sharded_folder(hf_source, tmp_path):
    """Why timm is refused: its local-dir: loader takes the first *.safetensors and misses the rest.
    (If a timm release learns shards, this fails and the refusal can go.)"""
    import timm
    from swin_convert.families import get_layout, to_layout
    from swin_convert.io.writing import write
    ckpt = api.load(hf_source[0])
    layout = get_layout("timm", "swin")
    tensors = to_layout(layout, ckpt.spec, ckpt.tensors)
    out = tmp_path / "forced"
    write(ckpt, layout, out, tensors, shards=shards.split(tensors, 100_000))
    with pytest.raises(RuntimeError, match="Missing key"):
        timm.create_model(f"local-dir:{out}", pretrained=True)


def test_a_file_output_with_max_shard_size_is_a_usage_error(hf_source, tmp_path):
    out = tmp_path / "x.safetensors"
    assert_clean_error(run_cli("remap", "auto", "hf", hf_source[0], "-o", out, "--max-shard-size", "1MB"), 2,
                       "single file", out=out)
    assert_clean_error(run_cli("upscale", hf_source[0], "--res", "128", "-o", tmp_path / "u.pth",
                               "--max-shard-size", "1MB"), 2, "single file")
    assert_clean_error(run_cli("remap", "auto", "hf", hf_source[0], "-o", tmp_path / "d", "--max-shard-size",
                               "5XB"), 2, "not a size")


def test_a_failed_sharded_write_leaves_nothing(hf_source, tmp_path, monkeypatch):
    from swin_convert.io import writing
    calls = []

    def failing(path, tensors, metadata):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        return real(path, tensors, metadata)
    real = writing.write_safetensors
    monkeypatch.setattr(writing, "write_safetensors", failing)
    out = tmp_path / "deep" / "out"
    with pytest.raises(OSError):
        api.remap(hf_source[0], "hf", out, max_shard_size="100KB")
    assert len(calls) == 3 and not (tmp_path / "deep").exists()
    assert os.listdir(tmp_path) == []


def test_never_writes_over_a_shard_of_the_input(sharded, tmp_path):
    copy = tmp_path / "in"
    shutil.copytree(sharded, copy)
    shard = next(copy.glob("model-00001-*.safetensors"))
    before = shard.read_bytes()
    result = run_cli("remap", "auto", "hf", copy / "model.safetensors.index.json", "-o", shard, "--overwrite")
    assert_clean_error(result, 1, "overwrite the input")
    assert shard.read_bytes() == before


# --- malformed indexes: one line each, no traceback, memory bounded ---------------------------
@pytest.fixture
def folder(sharded, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sharded, copy)
    return copy


def _index(folder: Path) -> dict:
    return json.loads((folder / "model.safetensors.index.json").read_text())


def _write_index(folder: Path, index) -> None:
    (folder / "model.safetensors.index.json").write_text(index if isinstance(index, str) else json.dumps(index))


def _edit(folder: Path, fn) -> None:
    index = _index(folder)
    fn(index["weight_map"])
    _write_index(folder, index)


def _some(weight_map) -> tuple[str, str]:
    return next(iter(weight_map.items()))


def test_traversal_is_refused_before_reading(folder, tmp_path):
    outside = tmp_path / "x.safetensors"
    shutil.copy(next(folder.glob("model-00001-*")), outside)
    _edit(folder, lambda wm: wm.update({k: "../x.safetensors" for k in list(wm)[:1]}))
    assert_refused(folder, "'../x.safetensors'", "not a plain file name")
    assert_clean_error(run_cli("inspect", folder), 1, "not a plain file name")


def test_absolute_shard_path_is_refused(folder, tmp_path):
    target = str(next(folder.glob("model-00001-*")).resolve())
    _edit(folder, lambda wm: wm.update({k: target for k, v in wm.items() if v.startswith("model-00001")}))
    assert_refused(folder, "not a plain file name")


def test_symlink_out_of_the_folder_is_refused(folder, tmp_path):
    first = next(folder.glob("model-00001-*"))
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(first, outside)
    first.symlink_to(outside)
    assert_refused(folder, "a link that leads out of its folder")


def test_symlink_inside_the_folder_is_read(folder):
    first = next(folder.glob("model-00001-*"))
    stored = folder / "stored.bin"
    shutil.move(first, stored)
    first.symlink_to(stored.name)
    assert api.inspect(folder).ckpt.source_layout == "hf"


def test_missing_shard_is_refused(folder):
    next(folder.glob("model-00002-*")).unlink()
    assert_refused(folder, "model-00002-of-", "not in its folder")


def test_tensor_missing_from_its_shard_is_refused(folder):
    _edit(folder, lambda wm: wm.update({"ghost.weight": _some(wm)[1]}))
    assert_refused(folder, "'ghost.weight'", "which does not hold it")


def test_tensor_the_index_does_not_list_is_refused(folder):
    _edit(folder, lambda wm: wm.pop(_some(wm)[0]))
    assert_refused(folder, "does not list", "which shard")


def test_tensor_placed_in_the_wrong_shard_is_refused(folder):
    def move(wm):
        name, shard = _some(wm)
        wm[name] = next(v for v in wm.values() if v != shard)
    _edit(folder, move)
    assert_refused(folder, "but shard", "holds it")


def test_tensor_listed_twice_is_refused(folder):
    index = _index(folder)
    name, shard = _some(index["weight_map"])
    text = json.dumps(index)
    text = text.replace('"weight_map": {', f'"weight_map": {{"{name}": "{shard}", ', 1)
    _write_index(folder, text)
    assert_refused(folder, "twice")


def test_tensor_held_by_two_shards_is_refused(folder):
    """A shard that also holds a tensor the index places elsewhere (two copies, one silently ignored)."""
    from swin_convert.core.tensors import write_safetensors
    index = _index(folder)
    wm = index["weight_map"]
    second = sorted(set(wm.values()))[1]
    meta, held = read_safetensors_header(folder / second)
    stray_name, stray_shard = next((k, v) for k, v in wm.items() if v != second)
    _, stray = read_safetensors_header(folder / stray_shard)
    items = list(held.items()) + [(stray_name, ArraySource(torch.zeros(stray[stray_name].shape).numpy()))]
    tmp = folder / "rewritten"
    write_safetensors(tmp, items, meta)
    os.replace(tmp, folder / second)
    assert_refused(folder, f"'{stray_name}'", "but shard")


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "not valid JSON"),
    ("[]", "not a JSON object"),
    ("{}", "no 'weight_map'"),
    ('{"weight_map": []}', "no 'weight_map'"),
    ('{"weight_map": {}}', "no 'weight_map'"),
    ('{"weight_map": {"a": 3}}', "to a int"),
    ('{"weight_map": {"a": null}}', "not a shard file name"),
    ('{"metadata": "x", "weight_map": {"a": "b.safetensors"}}', "'metadata'"),
    ('{"weight_map": {"a": ""}}', "not a plain file name"),
    ('{"weight_map": {"a": "sub/x.safetensors"}}', "not a plain file name"),
    ('{"weight_map": {"a": "..\\\\x.safetensors"}}', "not a plain file name"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_malformed_index_is_one_line(folder, text, fragment):
    path = folder / "model.safetensors.index.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert_refused(folder, fragment)
    assert_refused(path, fragment)       # named directly, too


def test_malformed_index_through_the_cli(folder):
    _write_index(folder, '{"weight_map": {"a": 3}}')
    assert_clean_error(run_cli("remap", "auto", "timm", folder, "-o", folder.parent / "o"), 1, "shard index")


def test_corrupt_shard_gets_the_strict_header_check(folder):
    shard = next(folder.glob("model-00002-*"))
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    assert_refused(folder, "truncated")


def test_huge_index_is_refused_without_reading_it(folder, monkeypatch):
    monkeypatch.setattr(shards, "MAX_HEADER", 1000)
    assert_refused(folder, "too large for a shard index", limit_mb=4)


def test_shards_without_their_index_are_refused(folder):
    (folder / "model.safetensors.index.json").unlink()
    assert_refused(folder, "no shard index")
    for p in list(folder.glob("model-*"))[1:]:
        p.unlink()
    assert_refused(folder, "no shard index")    # a lone shard of several is not the model


def test_a_transformers_sharded_folder_is_read(hf_source, tmp_path):
    import transformers
    folder, source_model = hf_source
    model = transformers.AutoModelForImageClassification.from_pretrained(str(folder))
    model.save_pretrained(tmp_path / "tf", max_shard_size="100KB")
    assert len(list((tmp_path / "tf").glob("model-*.safetensors"))) > 1
    a = api.load(tmp_path / "tf")
    b = api.load(folder)
    assert list(a.tensors) == list(b.tensors) or set(a.tensors) == set(b.tensors)
    assert all(a.tensors[k].tobytes() == b.tensors[k].tobytes() for k in b.tensors)


def test_a_sharded_pytorch_bin_folder_is_read(hf_source, tmp_path):
    """pytorch_model-0000k-of-0000n.bin + pytorch_model.bin.index.json (huggingface_hub's pickle shards),
    each shard through the hardened .pth reader."""
    from huggingface_hub import save_torch_state_dict
    folder, source_model = hf_source
    out = tmp_path / "bin"
    out.mkdir()
    save_torch_state_dict(source_model.state_dict(), out, safe_serialization=False, max_shard_size="100KB")
    shutil.copy(folder / "config.json", out / "config.json")
    assert (out / "pytorch_model.bin.index.json").is_file() and len(list(out.glob("pytorch_model-*.bin"))) > 1
    a, b = api.load(out), api.load(folder)
    assert set(a.tensors) == set(b.tensors)
    assert all(a.tensors[k].tobytes() == b.tensors[k].tobytes() for k in b.tensors)
    index = json.loads((out / "pytorch_model.bin.index.json").read_text())
    index["weight_map"]["ghost"] = _some(index["weight_map"])[1]
    (out / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    assert_refused(out, "'ghost'", "which does not hold it")


# --- the Hub ---------------------------------------------------------------------------------
@pytest.fixture
def sharded_repo(fake_hub, sharded):
    files = {p.name: p.read_bytes() for p in sharded.iterdir()}
    fake_hub.add_repo("org/sharded", {"main": files})
    return fake_hub, sharded


def test_hub_download_of_a_sharded_repo(sharded_repo, monkeypatch):
    server, folder = sharded_repo
    names = sorted(p.name for p in folder.glob("model-*.safetensors"))
    ckpt = api.load("org/sharded")
    local = api.load(folder)
    assert all(ckpt.tensors[k].tobytes() == local.tensors[k].tobytes() for k in local.tensors)
    for name in names + ["model.safetensors.index.json"]:
        assert server.file_requests(name), name
    sha = server.commit_sha("org/sharded")
    shard_gets = [r for n in names for r in server.file_requests(n)]
    assert all(f"/resolve/{sha}/" in r.path for r in shard_gets)   # pinned to the index's commit
    with pytest.raises(UsageError, match="is sharded"):
        hub.resolve_source("org/sharded", sha256="0" * 64)
    # offline: from the cache; a shard gone from the cache is a clear Hub error
    go_offline(monkeypatch)
    again = api.load("org/sharded")
    assert set(again.tensors) == set(local.tensors)
    snapshot = Path(hub.resolve_source("org/sharded").path)
    (snapshot / names[1]).unlink()
    with pytest.raises(HubError, match="only partly in the local cache"):
        api.load("org/sharded")


def test_hub_inspect_reads_only_the_shard_headers(sharded_repo):
    server, folder = sharded_repo
    report = api.inspect("org/sharded")
    assert report.ckpt.source_layout == "hf" and any("shards" in n for n in report.ckpt.notes)
    for p in folder.glob("model-*.safetensors"):
        gets = [r for r in server.file_requests(p.name) if r.method == "GET"]
        assert gets and all("range" in r.headers for r in gets)


def test_hub_index_with_traversal_downloads_nothing_else(fake_hub, sharded):
    files = {p.name: p.read_bytes() for p in sharded.iterdir()}
    index = json.loads(files["model.safetensors.index.json"])
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = "../../x.safetensors"
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    fake_hub.add_repo("org/evil", {"main": files})
    with pytest.raises(BadInputError, match="not a plain file name"):
        api.load("org/evil")
    assert not any(fake_hub.file_requests(n) for n in files if n.startswith("model-"))
    with pytest.raises(BadInputError, match="not a plain file name"):
        api.inspect("org/evil")


def test_hub_index_naming_an_absent_shard(fake_hub, sharded):
    files = {p.name: p.read_bytes() for p in sharded.iterdir()}
    del files[sorted(n for n in files if n.startswith("model-"))[-1]]
    fake_hub.add_repo("org/partial", {"main": files})
    with pytest.raises(BadInputError, match="which the repo does not hold"):
        api.load("org/partial")


def test_push_uploads_every_shard_and_the_index(fake_hub, sharded):
    result = hub.push_folder(sharded, "me/sharded", token=TOKEN)
    uploaded = fake_hub.files("me/sharded")
    names = [p.name for p in sharded.iterdir()]
    assert set(result.files) == set(names) and len(fake_hub.commits) == 1
    assert all(uploaded[n] == (sharded / n).read_bytes() for n in names if n != "README.md")
    assert "model.safetensors.index.json" in uploaded and sum(1 for n in uploaded if SHARD.fullmatch(n)) > 2


def test_mutated_indexes_fail_only_with_our_error(folder):
    """200 seeded byte mutations of a real index: each is read correctly or refused as BadInputError."""
    import random
    from swin_convert.errors import SwinConvertError
    from swin_convert.io.reading import open_raw
    path = folder / "model.safetensors.index.json"
    original = path.read_bytes()
    rng = random.Random(13)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(200):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] = rng.choice(b'{}[]",:./\\0a \xff') if rng.random() < 0.7 else rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            raw = open_raw(folder)
            assert raw.tensors
            outcomes["read"] += 1
        except SwinConvertError as e:
            assert isinstance(e, BadInputError) and "\n" not in str(e), repr(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100


def test_shards_are_planned_on_the_cast_sizes(hf_source, tmp_path):
    """--dtype bf16 halves every float tensor before the split: the index counts the cast bytes."""
    out = tmp_path / "bf16"
    api.remap(hf_source[0], "hf", out, max_shard_size="100KB", dtype="bf16")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    total = 0
    for name in sorted(set(index["weight_map"].values())):
        _, sources = read_safetensors_header(out / name)
        assert all(s.dtype != "F32" for s in sources.values())
        total += sum(s.nbytes for s in sources.values())
    assert index["metadata"]["total_size"] == total
    assert all(os.path.getsize(out / n) < 100_000 + 8192 for n in set(index["weight_map"].values())
               if len([k for k, v in index["weight_map"].items() if v == n]) > 1)
