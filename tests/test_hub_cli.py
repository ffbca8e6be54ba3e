"""The CLI against a fake Hub on 127.0.0.1: inspect from the header, remap a repo, push the result."""
from __future__ import annotations

import pytest

from conftest import run_cli
from hub_server import FakeHub
from runtimes import save_source, small_spec

TOKEN = "hf_SECRETcliToken987"
README = b"---\nlicense: mit\ndatasets:\n- imagenet-1k\n---\n# tiny swin\n"


@pytest.fixture
def hub(tmp_path):
    server = FakeHub().start()
    folder, _ = save_source("hf", small_spec(2), tmp_path / "src")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["README.md"] = README
    server.add_repo("org/swinv2-tiny", {"main": files})
    env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_TOKEN": TOKEN}
    yield server, env
    server.stop()


def test_inspect_reads_only_the_remote_header(hub):
    server, env = hub
    result = run_cli("inspect", "org/swinv2-tiny", env=env)
    assert result.returncode == 0, result.stderr
    assert "hf" in result.stdout and "Swin V2" in result.stdout and "header only" in result.stdout
    weights_gets = [r for r in server.requests if r.method == "GET" and r.path.endswith("model.safetensors")]
    assert weights_gets and all("range" in r.headers for r in weights_gets)


def test_remap_from_the_hub_writes_a_card_with_provenance(hub, tmp_path):
    server, env = hub
    out = tmp_path / "out"
    result = run_cli("remap", "auto", "timm", "org/swinv2-tiny", "-o", out, env=env)
    assert result.returncode == 0, result.stderr
    card = (out / "README.md").read_text()
    assert "base_model: org/swinv2-tiny" in card and "license: mit" in card and "imagenet-1k" in card
    assert server.commit_sha("org/swinv2-tiny") in card
    assert "swin-convert remap auto timm org/swinv2-tiny" in card


def test_push_uploads_in_one_commit_and_never_prints_the_token(hub, tmp_path):
    server, env = hub
    out = tmp_path / "out"
    assert run_cli("remap", "auto", "hf", "org/swinv2-tiny", "-o", out, env=env).returncode == 0
    result = run_cli("push", out, "me/converted", env=env)
    assert result.returncode == 0, result.stderr
    commits = [r for r in server.mutating_requests() if "/commit/" in r.path]
    assert len(commits) == 1
    uploaded = server.files("me/converted")
    assert uploaded["model.safetensors"] == (out / "model.safetensors").read_bytes()
    assert b"me/converted" in uploaded["README.md"]
    assert TOKEN not in result.stdout + result.stderr


def test_inline_token_warns_and_stays_secret(hub, tmp_path):
    server, env = hub
    env = dict(env, HF_TOKEN="")
    result = run_cli("inspect", "org/swinv2-tiny", "--token", TOKEN, env=env)
    assert result.returncode == 0, result.stderr
    assert "shell history" in result.stderr and TOKEN not in result.stdout + result.stderr


def test_missing_repo_is_one_line(hub):
    server, env = hub
    result = run_cli("remap", "auto", "timm", "org/nope", "-o", "x", env=env)
    assert result.returncode == 1 and result.stderr.startswith("Error: ") and "Traceback" not in result.stderr


def _card_folder(tmp_path):
    folder, _ = save_source("hf", small_spec(1), tmp_path / "pushsrc")
    from swin_convert.core.card import REPO_PLACEHOLDER
    (folder / "README.md").write_text(f"---\nlibrary_name: transformers\n---\nload {REPO_PLACEHOLDER}\n")
    return folder


@pytest.mark.parametrize("case", ["bad id", "offline", "unreachable", "no token"])
def test_failed_push_leaves_the_folder_untouched(tmp_path, case):
    folder = _card_folder(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    env = {"HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
           "HF_ENDPOINT": "http://127.0.0.1:9", "SWIN_CONVERT_HUB_TIMEOUT": "3"}
    repo = "me/x"
    if case == "bad id":
        repo = "not a repo id!"
    elif case == "offline":
        env["HF_HUB_OFFLINE"] = "1"
    elif case == "no token":
        env["HF_TOKEN"] = ""
    result = run_cli("push", folder, repo, env=env)
    assert result.returncode != 0 and result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_push_uploads_the_filled_card_but_keeps_the_local_one(hub, tmp_path):
    server, env = hub
    folder = _card_folder(tmp_path)
    local = (folder / "README.md").read_bytes()
    result = run_cli("push", folder, "me/filled", env=env)
    assert result.returncode == 0, result.stderr
    assert b"load me/filled" in server.files("me/filled")["README.md"]
    assert (folder / "README.md").read_bytes() == local


def test_push_to_a_silent_endpoint_times_out(tmp_path):
    import socket
    import time
    folder = _card_folder(tmp_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)          # accepts connections (kernel backlog) and never answers
    try:
        env = {"HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
               "HF_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}", "SWIN_CONVERT_HUB_TIMEOUT": "2"}
        start = time.monotonic()
        result = run_cli("push", folder, "me/x", env=env)
        took = time.monotonic() - start
    finally:
        listener.close()
    assert result.returncode == 1 and result.stderr.startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert took < 120, took
