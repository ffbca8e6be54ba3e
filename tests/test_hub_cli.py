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
