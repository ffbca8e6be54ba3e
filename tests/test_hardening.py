"""Hostile files (issue 13): every one refused in one line, memory in proportion to the file,
no silent wrong weights. All crafted here."""
from __future__ import annotations

import time
import tracemalloc

import pytest
import torch

from conftest import run_cli
from crafted import (FakeTensor, memo_index_pickle, nested_dicts_pickle, one_tensor_header, pth_with_pickle,
                     safetensors_with_header, set_zip_crc, set_zip_flag, shared_reference_pickle, torch_pickle)
from swin_convert import api
from swin_convert.errors import BadInputError
from test_errors import assert_clean_error


def assert_refused(path, *fragments, limit_mb: float = 32):
    """api.inspect raises BadInputError (one line) while tracing at most ``limit_mb``."""
    tracemalloc.start()
    try:
        with pytest.raises(BadInputError) as info:
            api.inspect(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit_mb * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MB"
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag.lower() in msg.lower(), msg
    return info.value


# --- .pth -----------------------------------------------------------------------------------
def test_negative_storage_offset_is_refused(tmp_path):
    bad = pth_with_pickle(tmp_path, "neg", torch_pickle({"w": FakeTensor("0", 8, -4, (4,))}))
    with pytest.raises(RuntimeError):      # torch refuses it as well
        torch.load(bad, weights_only=True)
    assert_refused(bad, "negative storage offset")
    assert_clean_error(run_cli("inspect", bad), 1, "negative storage offset")


def test_positive_offset_view_reads_the_right_bytes(tmp_path):
    from swin_convert.io.reading import open_raw
    from swin_convert.core.torch_io import to_torch
    ok = pth_with_pickle(tmp_path, "view", torch_pickle({"w": FakeTensor("0", 8, 4, (2, 2))}))
    got = to_torch(open_raw(ok).tensors["w"])
    assert torch.equal(got, torch.load(ok, weights_only=True)["w"])


def test_tensor_past_its_storage_is_refused(tmp_path):
    bad = pth_with_pickle(tmp_path, "past", torch_pickle({"w": FakeTensor("0", 8, 6, (4,))}))
    assert_refused(bad, "past the end of its storage")


def test_negative_size_is_refused(tmp_path):
    bad = pth_with_pickle(tmp_path, "negsize", torch_pickle({"w": FakeTensor("0", 8, 0, (-4,), (1,))}))
    assert_refused(bad, "negative")


@pytest.mark.parametrize("index", [2 ** 26, 2 ** 31 - 1, 2 ** 32 - 1])
def test_huge_memo_index_stays_small(tmp_path, index):
    bad = pth_with_pickle(tmp_path, "memo", memo_index_pickle(index))
    assert bad.stat().st_size < 2000
    assert_refused(bad, "no tensors", limit_mb=8)


def test_shared_references_are_walked_once(tmp_path):
    bad = pth_with_pickle(tmp_path, "dag", shared_reference_pickle(60))
    start = time.monotonic()
    assert_refused(bad, "not a state dict")
    assert time.monotonic() - start < 5


def test_deep_nesting_is_refused(tmp_path):
    bad = pth_with_pickle(tmp_path, "deep", nested_dicts_pickle(5000))
    assert_refused(bad, "nested")
    assert_clean_error(run_cli("inspect", bad), 1, "nested")


def test_deep_nesting_through_torch_fallback_is_refused(tmp_path):
    """A legacy (non-zip) pickle goes to torch.load; its result is walked with the same bound."""
    bad = tmp_path / "legacy.pth"
    bad.write_bytes(nested_dicts_pickle(5000))
    assert_clean_error(run_cli("inspect", bad), 1)


def test_encrypted_flag_is_refused(tmp_path):
    bad = tmp_path / "enc.pth"
    torch.save({"w": torch.ones(4)}, bad)
    set_zip_flag(bad, "data.pkl", 0x1)
    assert_clean_error(run_cli("inspect", bad), 1, "encrypted")


def test_bad_crc_is_one_line(tmp_path):
    bad = tmp_path / "crc.pth"
    torch.save({"w": torch.ones(4)}, bad)
    set_zip_crc(bad, "data.pkl")
    assert_clean_error(run_cli("inspect", bad), 1)


def test_pickle_bytes_that_are_not_utf8_is_one_line(tmp_path):
    bad = pth_with_pickle(tmp_path, "utf", b"\x80\x02X\x02\x00\x00\x00\xc8\x28.")
    assert_refused(bad)


# --- safetensors headers ----------------------------------------------------------------------
HEADERS = {
    "bool dimension": one_tensor_header(shape=[True, 4]),
    "bool offset": one_tensor_header(data_offsets=[False, 16]),
    "float offsets": one_tensor_header(data_offsets=[0.0, 16.0]),
    "float dimension": one_tensor_header(shape=[4.0]),
    "string dimension": one_tensor_header(shape=["4"]),
    "null dimension": one_tensor_header(shape=[None]),
    "shape not a list": one_tensor_header(shape=4),
    "three offsets": one_tensor_header(data_offsets=[0, 8, 16]),
    "offsets reversed": one_tensor_header(data_offsets=[16, 0]),
    "negative dimension": one_tensor_header(shape=[-4]),
    "dtype not a string": one_tensor_header(dtype=["F32"]),
    "entry not an object": '{"w": [1, 2, 3]}',
    "huge offset": '{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, ' + "1" * 5000 + "]}}",
    "huge dimension": '{"w": {"dtype": "F32", "shape": [' + "9" * 30 + '], "data_offsets": [0, 16]}}',
    "exponent": '{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1.6e1]}}',
    "NaN": '{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 16]}}',
    "deep nesting": '{"w": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep metadata": '{"__metadata__": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
    "metadata not strings": '{"__metadata__": {"a": 1}, "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',
    "metadata a list": '{"__metadata__": [], "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',
    "name given twice": '{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
                        '"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}',
}


@pytest.mark.parametrize("case", sorted(HEADERS))
def test_malformed_safetensors_header_is_refused(tmp_path, case):
    bad = safetensors_with_header(tmp_path / "bad.safetensors", HEADERS[case])
    assert_refused(bad)


def test_malformed_header_cli_is_one_line(tmp_path):
    bad = safetensors_with_header(tmp_path / "bad.safetensors", HEADERS["bool dimension"])
    out = tmp_path / "o.safetensors"
    assert_clean_error(run_cli("remap", "auto", "timm", bad, "-o", out), 1, "malformed", out=out)
    bad = safetensors_with_header(tmp_path / "deep.safetensors", HEADERS["deep nesting"])
    assert_clean_error(run_cli("inspect", bad), 1, "not valid JSON")


def test_well_formed_header_with_extra_field_reads(tmp_path):
    from swin_convert.core.tensors import read_safetensors_header
    ok = safetensors_with_header(tmp_path / "ok.safetensors", one_tensor_header(extra="x"))
    _, sources = read_safetensors_header(ok)
    assert sources["w"].shape == (4,)


# --- writing ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timm_src(tmp_path_factory):
    from runtimes import save_source, small_spec
    path, _ = save_source("timm", small_spec(1), tmp_path_factory.mktemp("hsrc"))
    return path


def _fsize_limited(limit: int):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("name,extra", [("o.pth", []), ("o.safetensors", []), ("o", []),
                                        ("o", ["--dtype", "bf16"]), ("o.safetensors", ["--dtype", "fp16"])])
def test_file_size_limit_is_one_line_and_cleans_up(tmp_path, timm_src, name, extra):
    """The limit is met by a writer's helper thread too (a cast written in pieces): EFBIG there
    reaches the caller as the same one line."""
    import subprocess
    import sys

    from conftest import ROOT
    out = tmp_path / "new" / "deeper" / name
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "remap", "auto", "official", str(timm_src),
                             "-o", str(out), *extra], capture_output=True, text=True,
                            preexec_fn=_fsize_limited(65536), timeout=300)
    assert_clean_error(result, 1, str(out))
    assert not (tmp_path / "new").exists(), "parent folders created for the output were left behind"


def test_outputs_follow_the_umask(tmp_path, timm_src):
    import os
    import stat
    old = os.umask(0o022)
    try:
        api.remap(timm_src, "official", tmp_path / "a.safetensors")
        api.remap(timm_src, "official", tmp_path / "a.pth")
        api.remap(timm_src, "timm", tmp_path / "sub" / "folder")
    finally:
        os.umask(old)
    for p, mode in [("a.safetensors", 0o644), ("a.pth", 0o644), ("sub", 0o755), ("sub/folder", 0o755),
                    ("sub/folder/model.safetensors", 0o644)]:
        assert stat.S_IMODE((tmp_path / p).stat().st_mode) == mode, p


def test_non_regular_output_is_refused(tmp_path, timm_src):
    import os

    from swin_convert.errors import OutputExistsError
    from swin_convert.io.writing import check_output
    with pytest.raises(OutputExistsError, match="not a regular file"):
        check_output(__import__("pathlib").Path("/dev/null"), [], overwrite=True)
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    assert_clean_error(run_cli("remap", "auto", "official", timm_src, "-o", fifo, "--overwrite"), 1,
                       "not a regular file")
    assert fifo.is_fifo()


def test_huge_resolution_on_official_layout_is_refused(tmp_path):
    from runtimes import save_source, small_spec
    src, _ = save_source("official", small_spec(1), tmp_path / "src")
    out = tmp_path / "big.pth"
    start = time.monotonic()
    result = run_cli("upscale", src, "--res", "22400", "-o", out)
    assert_clean_error(result, 2, "attention masks", "GiB", out=out)
    assert time.monotonic() - start < 60


# --- recorded geometry: our metadata, config.json ---------------------------------------------
@pytest.mark.parametrize("spec_text", ["{not json", "[1, 2]", '{"version": "one"}',
                                       '{"version": 1, "embed_dim": 16, "depths": [2, null], "num_heads": [1, 2],'
                                       ' "window_size": [4, 4], "img_size": 64}',
                                       '{"version": 1, "embed_dim": 16, "depths": [2, 2], "num_heads": [1, 2],'
                                       ' "window_size": "abc", "img_size": 64}'])
def test_bad_spec_metadata_is_one_line(tmp_path, timm_src, spec_text):
    from safetensors.torch import load_file, save_file
    bad = tmp_path / "meta.safetensors"
    save_file(load_file(str(timm_src)), str(bad), metadata={"swin_convert.spec": spec_text})
    assert_refused(bad, "swin_convert.spec")


@pytest.mark.parametrize("config", [{"model_type": "swin", "window_size": "abc"},
                                    {"model_type": "swin", "window_size": [None, 7]},
                                    {"model_type": "swin", "image_size": 224, "window_size": [[None]]},
                                    {"architecture": "swin_tiny", "model_args": {"window_size": ["x"]}},
                                    {"architecture": "swin_tiny", "model_args": [1, 2]},
                                    {"architecture": 7}])
def test_bad_config_geometry_is_one_line(tmp_path, timm_src, config):
    import json
    import shutil
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(timm_src, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    assert_refused(folder, "config.json")
    if config.get("window_size") == "abc":
        assert_clean_error(run_cli("inspect", folder), 1, "config.json")


# --- CLI: usage errors, signals ------------------------------------------------------------------
@pytest.mark.parametrize("args,fragment", [(["inspect", "x", "--format", "bogus"], "--format"),
                                           (["remap", "auto", "timm", "x"], "--output"),
                                           (["inspect", "--bogus"], "--bogus"),
                                           (["upscale", "x", "-o", "y", "--res", "abc"], "--res"),
                                           (["remap"], "FROM")])
def test_usage_errors_are_one_line_exit_2(args, fragment):
    result = run_cli(*args)
    assert_clean_error(result, 2, fragment)
    assert "Hint:" in result.stderr and "╭" not in result.stderr


def test_help_still_works():
    assert run_cli("--help").returncode == 0
    assert run_cli("remap", "--help").returncode == 0


@pytest.fixture(scope="module")
def big_official(tmp_path_factory):
    """A 100 MB official checkpoint (Swin-T shapes, random), so that a write takes a while."""
    import numpy as np

    from swin_convert.api import save
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import ArraySource
    from swin_convert.families.swin.shapes import canonical_shapes
    from swin_convert.families.swin.spec import SwinSpec
    spec = SwinSpec(version=1, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=(7,) * 4,
                    img_size=224).validate()
    rng = np.random.default_rng(0)
    tensors = {k: ArraySource(rng.standard_normal(s, dtype=np.float32)) for k, s in canonical_shapes(spec).items()}
    path = tmp_path_factory.mktemp("big") / "swin_t.safetensors"
    save(CanonicalCheckpoint(spec, tensors, source="test", source_layout="official"), "official", path)
    return path


@pytest.mark.parametrize("suffix,extra", [(".pth", []), (".safetensors", []), ("", []), ("", ["--dtype", "bf16"])])
def test_sigterm_while_writing_leaves_nothing(tmp_path, big_official, suffix, extra):
    """A cast is written by two threads: the signal stops both before the output is removed."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT
    for attempt in range(3):
        out = tmp_path / f"try{attempt}" / f"out{suffix}"
        proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "remap", "official", "timm", str(big_official),
                                 "-o", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            parent = out.parent
            if parent.exists() and any(p.name.startswith(f".{out.name}.") for p in parent.iterdir()):
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.002)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            continue           # finished before the signal landed: try again
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        assert not out.parent.exists() or not os.listdir(out.parent), os.listdir(out.parent)
        return
    pytest.skip("the write finished before SIGTERM could land")
