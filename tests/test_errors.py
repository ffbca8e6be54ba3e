"""Bad inputs and bad requests: one `Error:` line (plus a hint), the right exit code, no traceback,
and no partial output."""
from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from conftest import run_cli
from runtimes import save_source, small_spec


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    path, _ = save_source("timm", small_spec(1), tmp_path_factory.mktemp("src"))
    return path


def assert_clean_error(result, code: int, *fragments, out=None):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[0].startswith("Error: "), result.stderr
    assert len([ln for ln in lines if not ln.startswith(("Hint:", "Warning:"))]) == 1, result.stderr
    for frag in fragments:
        assert frag.lower() in result.stderr.lower(), result.stderr
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temp file left behind"


def test_truncated_safetensors(tmp_path, timm_file):
    bad = tmp_path / "cut.safetensors"
    data = timm_file.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.safetensors"
    assert_clean_error(run_cli("remap", "auto", "hf", bad, "-o", out), 1, "truncated", out=out)


def test_corrupt_header_json(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10) + b"{not json}" + b"\0" * 16)
    assert_clean_error(run_cli("inspect", bad), 1, "not valid JSON")


def test_absurd_header_length(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    assert_clean_error(run_cli("inspect", bad), 1, "header length")


def test_header_offsets_do_not_match_shape(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}
    blob = json.dumps(header).encode()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 8)
    assert_clean_error(run_cli("inspect", bad), 1, "declares 8 bytes")


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED",))


def test_pickle_carrying_code_is_refused(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "payload": _Evil()}, bad)
    result = run_cli("inspect", bad, cwd=tmp_path)
    assert_clean_error(result, 1, "refusing")
    assert not (tmp_path / "PWNED").exists()


def test_legacy_pickle_with_code_is_refused(tmp_path):
    bad = tmp_path / "evil.bin"
    bad.write_bytes(pickle.dumps(_Evil(), protocol=2))
    result = run_cli("inspect", bad, cwd=tmp_path)
    assert_clean_error(result, 1)
    assert not (tmp_path / "PWNED").exists()


def test_not_a_swin_checkpoint(tmp_path):
    bad = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.randn(8, 3, 7, 7), "fc.weight": torch.randn(10, 8)}, str(bad))
    assert_clean_error(run_cli("inspect", bad), 1, "not a checkpoint of a known family")


def test_missing_key(tmp_path, timm_file):
    from safetensors.torch import load_file
    state = load_file(str(timm_file))
    del state["layers.1.blocks.0.mlp.fc2.bias"]
    bad = tmp_path / "missing.safetensors"
    save_file(state, str(bad))
    out = tmp_path / "o"
    assert_clean_error(run_cli("remap", "auto", "hf", bad, "-o", out), 1, "missing", "mlp.fc2.bias", out=out)


def test_unexpected_key(tmp_path, timm_file):
    from safetensors.torch import load_file
    state = load_file(str(timm_file))
    state["layers.0.blocks.0.attn.extra_scale"] = torch.ones(3)
    bad = tmp_path / "extra.safetensors"
    save_file(state, str(bad))
    out = tmp_path / "o.safetensors"
    assert_clean_error(run_cli("remap", "auto", "official", bad, "-o", out), 1, "unexpected", "extra_scale", out=out)


def test_wrongly_shaped_tensor(tmp_path, timm_file):
    from safetensors.torch import load_file
    state = load_file(str(timm_file))
    state["norm.bias"] = torch.zeros(5)
    bad = tmp_path / "shape.safetensors"
    save_file(state, str(bad))
    assert_clean_error(run_cli("remap", "auto", "official", bad, "-o", tmp_path / "o.pth"), 1, "wrongly shaped")


def test_wrong_from_layout(tmp_path, timm_file):
    out = tmp_path / "o"
    assert_clean_error(run_cli("remap", "hf", "official", timm_file, "-o", out), 1, "looks like a timm", out=out)


def test_unknown_layout_is_a_usage_error(tmp_path, timm_file):
    assert_clean_error(run_cli("remap", "auto", "onnx", timm_file, "-o", tmp_path / "o"), 2, "unknown layout")


def test_existing_output_is_kept(tmp_path, timm_file):
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"keep me")
    result = run_cli("remap", "auto", "hf", timm_file, "-o", out)
    assert_clean_error(result, 1, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep me"


def test_output_never_overwrites_input(tmp_path, timm_file):
    copy = tmp_path / "in.safetensors"
    copy.write_bytes(timm_file.read_bytes())
    result = run_cli("remap", "auto", "timm", copy, "-o", copy, "--overwrite")
    assert_clean_error(result, 1, "overwrite the input")
    assert copy.read_bytes() == timm_file.read_bytes()


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.pth"
    bad.write_bytes(b"")
    assert_clean_error(run_cli("inspect", bad), 1)


def test_folder_without_weights(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("hi")
    assert_clean_error(run_cli("inspect", tmp_path / "d"), 1, "weight files")


def test_target_cannot_express_clamped_v1(tmp_path):
    spec = small_spec(1, depths=(1, 1, 1, 2), num_heads=(1, 1, 2, 2), img_size=192, window_size=(12, 12, 12, 6))
    path, _ = save_source("timm", spec, tmp_path)
    out = tmp_path / "hf"
    assert_clean_error(run_cli("remap", "auto", "hf", path, "-o", out), 1, "one window_size", out=out)


def test_failed_write_leaves_no_partial_file(tmp_path, timm_file, monkeypatch):
    """An error in the middle of writing removes the temporary file; OUT never appears."""
    from swin_convert import api
    from swin_convert.core import tensors
    ckpt = api.load(timm_file)

    def boom(src, out, *args):          # every file range goes through it (the writer's runs, write_to)
        out.write(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tensors, "_copy_range", boom)
    out = tmp_path / "o.safetensors"
    with pytest.raises(OSError):
        api.save(ckpt, "hf", out)
    assert not out.exists() and not list(tmp_path.glob(".o.safetensors*"))
    folder = tmp_path / "folder"
    with pytest.raises(OSError):
        api.save(ckpt, "timm", folder)
    assert not folder.exists() and not list(tmp_path.glob(".folder*"))


def test_debug_env_shows_traceback(tmp_path):
    bad = tmp_path / "empty.safetensors"
    bad.write_bytes(b"")
    result = run_cli("inspect", bad, env={"SWIN_CONVERT_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr
