"""swin_convert.hub against a fake Hub and a file server on 127.0.0.1 (no other network)."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import FakeHub, FileServer  # noqa: E402

from swin_convert.io import hub  # noqa: E402
from swin_convert.errors import BadInputError, HubError, UsageError  # noqa: E402

TOKEN = "hf_SECRETtoken123"
README = b"---\nlicense: mit\ndatasets:\n- imagenet-1k\n- imagenet-22k\ntags:\n- timm\n---\n# Swin\n"
CONFIG = json.dumps({"architecture": "swin_tiny_patch4_window7_224", "num_classes": 1000}).encode()


def safetensors_bytes(tensors: dict[str, list[int]], metadata: dict | None = None) -> bytes:
    """A valid F32 safetensors file (zeros) built by hand, so the test needs no torch."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


# ~300 KB: larger than the 100 kB huggingface_hub fetches to read a header.
WEIGHTS = safetensors_bytes({"layers.0.blocks.0.attn.relative_position_bias_table": [169, 3],
                             "head.fc.weight": [75, 1000]}, {"format": "pt"})
BIN = b"PK\x03\x04 fake torch zip"


@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """An isolated HF_HOME (cache, token, agent registry) with no token and online mode."""
    from huggingface_hub import constants as c

    home = tmp_path / "hf_home"
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # huggingface_hub reads these once at import: patch the module values it uses at call time.
    for name, value in {"HF_HOME": home, "HF_HUB_CACHE": home / "hub", "HF_TOKEN_PATH": home / "token",
                        "HF_STORED_TOKENS_PATH": home / "stored_tokens", "HF_XET_CACHE": home / "xet",
                        "AGENT_HARNESSES_PATH": home / ".agent_harnesses.json"}.items():
        monkeypatch.setattr(c, name, str(value))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    return home


@pytest.fixture
def fake_hub(hf_env, monkeypatch):
    from huggingface_hub import constants as c

    server = FakeHub().start()
    monkeypatch.setattr(c, "ENDPOINT", server.url)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    yield server
    server.stop()


@pytest.fixture
def files(hf_env):
    with FileServer() as server:
        yield server


def go_offline(monkeypatch):
    from huggingface_hub import constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def swin_repo(server: FakeHub, repo_id: str = "org/swin", **kwargs) -> None:
    server.add_repo(repo_id, {"main": {"model.safetensors": WEIGHTS, "config.json": CONFIG,
                                       "README.md": README, ".gitattributes": b"x"}}, **kwargs)


# --- parse_source -------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("org/name", {"repo_id": "org/name", "revision": None, "filename": None}),
    ("org/name@v1.0", {"repo_id": "org/name", "revision": "v1.0", "filename": None}),
    ("hf-hub:org/name", {"repo_id": "org/name", "revision": None, "filename": None}),
    ("hf-hub:org/name@main/ckpt/a.pth", {"repo_id": "org/name", "revision": "main", "filename": "ckpt/a.pth"}),
    ("org/name/swin_tiny.pth", {"repo_id": "org/name", "revision": None, "filename": "swin_tiny.pth"}),
    ("hf://models/org/name@refs%2Fpr%2F1", {"repo_id": "org/name", "revision": "refs/pr/1", "filename": None}),
    ("hf-hub:ckpt/swin.pth", {"repo_id": "ckpt/swin.pth", "revision": None, "filename": None}),
])
def test_parse_source_hub_forms(text, expected):
    assert hub.parse_source(text) == ("hub", expected)


def test_parse_source_local_path_wins(tmp_path, monkeypatch):
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert hub.parse_source("org/name") == ("local", {"path": Path("org/name")})
    assert hub.parse_source("https://example.com/a.pth") == ("url", {"url": "https://example.com/a.pth"})


@pytest.mark.parametrize("text", ["", "org/", "/no/such/file.pth", "ckpt/swin.pth", "swin.pth",
                                  "org/name@", "org/name@a@b", "org/na--me", "hf://datasets/org/name",
                                  "org/name/../x.pth"])
def test_parse_source_rejects_bad_strings(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError):
        hub.parse_source(text)


def test_import_is_cheap():
    code = ("import sys, swin_convert.io.hub, swin_convert.core.card; "
            "bad = [m for m in ('torch', 'huggingface_hub', 'urllib.request', 'rich') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- hub downloads ------------------------------------------------------------------------


def test_hub_download_safetensors_and_config(fake_hub, hf_env):
    swin_repo(fake_hub)
    src = hub.resolve_source("org/swin", progress=False)
    assert (src.kind, src.repo_id, src.revision) == ("hub", "org/swin", "main")
    assert src.commit == fake_hub.commit_sha("org/swin")
    assert src.path.is_dir() and src.path.name == src.commit  # the snapshot directory
    assert src.path.is_relative_to(hf_env / "hub")
    assert src.filename == "model.safetensors"
    assert (src.path / "model.safetensors").read_bytes() == WEIGHTS
    assert (src.path / "config.json").read_bytes() == CONFIG
    assert src.card == {"license": "mit", "datasets": ["imagenet-1k", "imagenet-22k"]}
    assert not fake_hub.file_requests(".gitattributes")  # only what is needed
    ua = fake_hub.file_requests("model.safetensors")[0].headers["user-agent"]
    assert "swin-convert/" in ua


def test_hub_revision_forms(fake_hub):
    fake_hub.add_repo("org/swin", {"main": {"model.safetensors": b"main-bytes"},
                                   "v2": {"model.safetensors": b"v2-bytes"}})
    for source, revision in [("org/swin@v2", None), ("hf-hub:org/swin", "v2"), ("hf-hub:org/swin@v2", "v2")]:
        src = hub.resolve_source(source, revision=revision, progress=False)
        assert (src.path / src.filename).read_bytes() == b"v2-bytes"
        assert (src.revision, src.commit) == ("v2", fake_hub.commit_sha("org/swin", "v2"))
    pinned = hub.resolve_source(f"org/swin@{fake_hub.commit_sha('org/swin')}", progress=False)
    assert (pinned.path / pinned.filename).read_bytes() == b"main-bytes"
    with pytest.raises(UsageError, match="--revision"):
        hub.resolve_source("org/swin@v2", revision="main", progress=False)


def test_hub_falls_back_to_bin_then_single_pth(fake_hub):
    fake_hub.add_repo("org/bin", {"main": {"pytorch_model.bin": BIN, "config.json": CONFIG}})
    fake_hub.add_repo("org/pth", {"main": {"swin_tiny_patch4_window7_224.pth": b"pth", "README.md": b"# no yaml"}})
    src = hub.resolve_source("org/bin", progress=False)
    assert src.filename == "pytorch_model.bin" and (src.path / "pytorch_model.bin").read_bytes() == BIN
    assert (src.path / "config.json").read_bytes() == CONFIG
    src = hub.resolve_source("org/pth", progress=False)
    assert src.filename == "swin_tiny_patch4_window7_224.pth" and src.card == {}
    assert all(r.path.startswith("/org/bin/") for r in fake_hub.file_requests("config.json"))


def test_hub_several_pth_needs_a_filename(fake_hub):
    fake_hub.add_repo("org/many", {"main": {"a.pth": b"a", "sub/b.pth": b"b", "sub/config.json": CONFIG}})
    with pytest.raises(UsageError, match="2 checkpoints") as err:
        hub.resolve_source("org/many", progress=False)
    assert "org/many/" in err.value.hint
    src = hub.resolve_source("org/many/sub/b.pth", progress=False)
    assert src.filename == "b.pth" and src.path.name == "sub"
    assert (src.path / "b.pth").read_bytes() == b"b" and (src.path / "config.json").read_bytes() == CONFIG
    with pytest.raises(HubError, match="File 'c.pth' does not exist in 'org/many'"):
        hub.resolve_source("org/many/c.pth", progress=False)


def test_hub_repo_without_weights(fake_hub):
    fake_hub.add_repo("org/empty", {"main": {"README.md": README}})
    with pytest.raises(HubError, match="has no model.safetensors"):
        hub.resolve_source("org/empty", progress=False)


def test_offline_serves_the_cache(fake_hub, monkeypatch):
    swin_repo(fake_hub)
    online = hub.resolve_source("org/swin", progress=False)
    fake_hub.stop()
    go_offline(monkeypatch)
    seen = len(fake_hub.requests)
    offline = hub.resolve_source("org/swin", progress=False)
    assert offline == online and offline.card["license"] == "mit"
    assert hub.resolve_source("hf-hub:org/swin@main", progress=False).commit == online.commit
    assert hub.resolve_source(f"org/swin@{online.commit}", progress=False).path == online.path
    assert hub.remote_safetensors_header("org/swin") is None  # caller falls back to the cache
    assert len(fake_hub.requests) == seen


def test_offline_with_empty_cache(fake_hub, monkeypatch):
    swin_repo(fake_hub)
    go_offline(monkeypatch)
    with pytest.raises(HubError) as err:
        hub.resolve_source("org/swin", progress=False)
    assert err.value.message == "'org/swin' is not in the local cache and HF_HUB_OFFLINE is set."
    assert "HF_HUB_OFFLINE" in err.value.hint
    assert fake_hub.requests == []


def test_offline_revision_not_cached(fake_hub, monkeypatch):
    fake_hub.add_repo("org/swin", {"main": {"model.safetensors": b"m"}, "v2": {"model.safetensors": b"2"}})
    hub.resolve_source("org/swin", progress=False)
    go_offline(monkeypatch)
    with pytest.raises(HubError, match="at revision 'v2' is not in the local cache"):
        hub.resolve_source("org/swin@v2", progress=False)


@pytest.mark.parametrize("source, message", [
    ("org/missing", "Repository 'org/missing' was not found on the Hub."),
    ("org/private", "Repository 'org/private' was not found on the Hub."),
    ("org/gated", "Repository 'org/gated' is gated and this account has not been granted access."),
    ("org/swin@nope", "Revision 'nope' does not exist in 'org/swin'."),
])
def test_hub_errors_are_one_line(fake_hub, source, message):
    swin_repo(fake_hub)
    swin_repo(fake_hub, "org/gated", gated=True)
    swin_repo(fake_hub, "org/private", private=True)
    with pytest.raises(HubError) as err:
        hub.resolve_source(source, progress=False)
    assert err.value.message == message
    assert "\n" not in err.value.message and err.value.hint
    with pytest.raises(HubError) as err:
        hub.remote_safetensors_header(source)
    assert err.value.message == message


def test_private_repo_with_token(fake_hub):
    swin_repo(fake_hub, "org/private", private=True)
    src = hub.resolve_source("org/private", token=TOKEN, progress=False)
    assert (src.path / "model.safetensors").read_bytes() == WEIGHTS
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in fake_hub.file_requests("config.json"))


def test_gated_hint_names_login(fake_hub):
    swin_repo(fake_hub, "org/gated", gated=True)
    with pytest.raises(HubError) as err:
        hub.resolve_source("org/gated", progress=False)
    assert "hf auth login" in err.value.hint and f"{fake_hub.url}/org/gated" in err.value.hint


def test_hub_unreachable(fake_hub):
    swin_repo(fake_hub)
    fake_hub.stop()
    with pytest.raises(HubError, match="Could not reach the Hub to download 'org/swin'") as err:
        hub.resolve_source("org/swin", progress=False)
    assert "HF_HUB_OFFLINE=1" in err.value.hint


def test_hub_unreachable_falls_back_to_cache(fake_hub, caplog):
    swin_repo(fake_hub)
    online = hub.resolve_source("org/swin", progress=False)
    fake_hub.stop()  # online mode, but the Hub cannot be reached: serve the cache, like hf_hub_download
    assert hub.resolve_source("org/swin", progress=False) == online
    assert "unreachable" in caplog.text
    with pytest.raises(HubError, match="Could not reach the Hub"):
        hub.resolve_source("org/swin@v2", progress=False)  # not cached: the network error stands


def test_hub_sha256(fake_hub):
    swin_repo(fake_hub)
    good = hashlib.sha256(WEIGHTS).hexdigest()
    assert hub.resolve_source("org/swin", sha256=good.upper(), progress=False).filename == "model.safetensors"
    with pytest.raises(BadInputError, match="SHA-256"):
        hub.resolve_source("org/swin", sha256="0" * 64, progress=False)
    with pytest.raises(UsageError):
        hub.resolve_source("org/swin", sha256="abc", progress=False)


def test_local_source(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"local")
    src = hub.resolve_source(str(path), sha256=hashlib.sha256(b"local").hexdigest())
    assert (src.kind, src.path, src.card) == ("local", path, {})
    with pytest.raises(UsageError, match="--revision"):
        hub.resolve_source(str(path), revision="main")


# --- remote safetensors header ------------------------------------------------------------


def test_remote_header_without_downloading_weights(fake_hub, hf_env):
    swin_repo(fake_hub)
    head = hub.remote_safetensors_header("org/swin")
    assert head["tensors"] == {"layers.0.blocks.0.attn.relative_position_bias_table": {"dtype": "F32", "shape": [169, 3]},
                               "head.fc.weight": {"dtype": "F32", "shape": [75, 1000]}}
    assert head["metadata"] == {"format": "pt"}
    assert (head["repo_id"], head["commit"], head["filename"]) == ("org/swin", fake_hub.commit_sha("org/swin"),
                                                                    "model.safetensors")
    assert head["config"] == json.loads(CONFIG)
    gets = [r for r in fake_hub.file_requests("model.safetensors") if r.method == "GET"]
    assert gets and all(r.headers.get("range", "").startswith("bytes=") for r in gets)
    assert not [p for p in (hf_env / "hub").rglob("*") if p.is_file() and p.stat().st_size == len(WEIGHTS)]


def test_remote_header_none_cases(fake_hub, tmp_path):
    fake_hub.add_repo("org/bin", {"main": {"pytorch_model.bin": BIN}})
    assert hub.remote_safetensors_header("org/bin") is None
    assert hub.remote_safetensors_header("https://example.com/x.safetensors") is None
    (tmp_path / "x.safetensors").write_bytes(WEIGHTS)
    assert hub.remote_safetensors_header(str(tmp_path / "x.safetensors")) is None
    assert [r.path for r in fake_hub.requests if "/api/models/" in r.path] == ["/api/models/org/bin"]


# --- URL downloads ------------------------------------------------------------------------


def test_url_download_and_reuse(files, hf_env):
    files.files["swin_tiny.pth"] = WEIGHTS
    src = hub.resolve_source(files.file_url("swin_tiny.pth"), progress=False)
    assert src.kind == "url" and src.path.name == "swin_tiny.pth"
    assert src.path.read_bytes() == WEIGHTS
    assert src.path.is_relative_to(hf_env / "swin-convert" / "downloads")
    count = len(files.requests)
    again = hub.resolve_source(files.file_url("swin_tiny.pth"), progress=False)
    assert again.path == src.path and len(files.requests) == count  # served from the cache


def test_url_interrupted_then_resumed(files):
    files.files["w.safetensors"] = WEIGHTS
    files.drop_after["w.safetensors"] = 100_000
    url, digest = files.file_url("w.safetensors"), hashlib.sha256(WEIGHTS).hexdigest()
    with pytest.raises(HubError, match=f"stopped after 100000 of {len(WEIGHTS)} bytes") as err:
        hub.resolve_source(url, sha256=digest, progress=False)
    assert "again" in err.value.hint
    target = hub._url_cache_path(url, None)
    assert not target.exists()  # a half file is never under the final name
    assert target.with_name(target.name + ".incomplete").stat().st_size == 100_000
    src = hub.resolve_source(url, sha256=digest, progress=False)
    assert src.path == target and hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert files.requests[-1].headers["range"] == "bytes=100000-"
    assert not target.with_name(target.name + ".incomplete").exists()


def test_url_resume_restarts_without_range_support(files):
    files.files["w.pth"] = WEIGHTS
    files.drop_after["w.pth"] = 5000
    url = files.file_url("w.pth")
    with pytest.raises(HubError):
        hub.resolve_source(url, progress=False)
    files.ranges = False
    assert hub.resolve_source(url, progress=False).path.read_bytes() == WEIGHTS


def test_url_sha256_mismatch_leaves_nothing(files):
    files.files["w.pth"] = b"tampered"
    url = files.file_url("w.pth")
    with pytest.raises(BadInputError, match="SHA-256"):
        hub.resolve_source(url, sha256="ab" * 32, progress=False)
    folder = hub._url_cache_path(url, None).parent
    assert list(folder.iterdir()) == []


def test_url_stale_cache_is_replaced_when_sha256_differs(files):
    files.files["w.pth"] = b"old"
    url = files.file_url("w.pth")
    assert hub.resolve_source(url, progress=False).path.read_bytes() == b"old"
    files.files["w.pth"] = b"new"
    src = hub.resolve_source(url, sha256=hashlib.sha256(b"new").hexdigest(), progress=False)
    assert src.path.read_bytes() == b"new"


def test_url_errors(files, monkeypatch):
    with pytest.raises(HubError, match="failed with HTTP 404"):
        hub.resolve_source(files.file_url("missing.pth") + "?sig=secret", progress=False)
    go_offline(monkeypatch)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        hub.resolve_source(files.file_url("x.pth"), progress=False)


def test_url_error_hides_query(files):
    with pytest.raises(HubError) as err:
        hub.resolve_source(files.file_url("missing.pth") + "?X-Amz-Signature=topsecret", progress=False)
    assert "topsecret" not in str(err.value)


# --- push ---------------------------------------------------------------------------------


@pytest.fixture
def out_dir(tmp_path):
    out = tmp_path / "out"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref")
    (out / "model.safetensors").write_bytes(WEIGHTS[:4096])
    (out / "config.json").write_bytes(CONFIG)
    (out / "README.md").write_text("---\nlibrary_name: timm\n---\n# ours\n")
    return out


def test_push_creates_repo_in_one_commit(fake_hub, out_dir):
    result = hub.push_folder(out_dir, "me/converted", private=True, token=TOKEN)
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["files"] == {name: (out_dir / name).read_bytes()
                               for name in ("README.md", "config.json", "model.safetensors")}
    assert commit["summary"] == hub.DEFAULT_COMMIT_MESSAGE and commit["revision"] == "main"
    assert fake_hub.repos["me/converted"].private
    assert result.files == ("README.md", "config.json", "model.safetensors")
    assert (result.commit, result.dry_run, result.card_kept) == (commit["oid"], False, False)
    assert result.url == f"{fake_hub.url}/me/converted"


def test_push_keeps_existing_card(fake_hub, out_dir):
    fake_hub.add_repo("me/converted", {"main": {"README.md": b"# theirs\n"}})
    kept = hub.push_folder(out_dir, "me/converted", token=TOKEN, commit_message="convert")
    assert kept.card_kept and "README.md" not in kept.files
    assert sorted(fake_hub.commits[0]["files"]) == ["config.json", "model.safetensors"]
    assert fake_hub.files("me/converted")["README.md"] == b"# theirs\n"
    replaced = hub.push_folder(out_dir, "me/converted", token=TOKEN, overwrite_card=True)
    assert not replaced.card_kept and fake_hub.commits[-1]["files"] == {"README.md": (out_dir / "README.md").read_bytes()}


def test_push_dry_run_changes_nothing(fake_hub, out_dir):
    fake_hub.add_repo("me/existing", {"main": {"README.md": b"# theirs\n"}})
    result = hub.push_folder(out_dir, "me/new", dry_run=True)
    assert result.dry_run and result.commit is None and not result.card_kept
    assert result.files == ("README.md", "config.json", "model.safetensors")
    existing = hub.push_folder(out_dir, "me/existing", dry_run=True, revision="dev")
    assert existing.card_kept and existing.files == ("config.json", "model.safetensors")  # 'dev' will fork main
    assert hub.push_folder(out_dir, "me/existing", dry_run=True, overwrite_card=True).card_kept is False
    assert fake_hub.mutating_requests() == [] and fake_hub.commits == []
    assert "me/new" not in fake_hub.repos
    assert {r.method for r in fake_hub.requests} <= {"GET", "HEAD"}


def test_push_branch_and_pr(fake_hub, out_dir):
    result = hub.push_folder(out_dir, "me/converted", revision="window12", token=TOKEN,
                             commit_description="details")
    assert fake_hub.commits[0]["revision"] == "window12" and fake_hub.commits[0]["description"] == "details"
    assert fake_hub.files("me/converted", "window12")["config.json"] == CONFIG
    assert "config.json" not in fake_hub.files("me/converted", "main")
    assert result.url.endswith("/me/converted/tree/window12")
    pr = hub.push_folder(out_dir, "me/converted", create_pr=True, overwrite_card=True, token=TOKEN)
    assert fake_hub.commits[-1]["create_pr"] and pr.url.endswith("/discussions/1")
    assert "config.json" not in fake_hub.files("me/converted", "main")


def test_push_requires_login(fake_hub, out_dir):
    with pytest.raises(HubError, match="Not logged in") as err:
        hub.push_folder(out_dir, "me/converted")
    assert "hf auth login" in err.value.hint and fake_hub.requests == []


def test_push_forbidden_and_offline(fake_hub, out_dir, monkeypatch):
    fake_hub.add_repo("other/repo", {"main": {}})
    fake_hub.read_only_tokens.add(TOKEN)
    with pytest.raises(HubError, match=r"no permission to push to 'other/repo' \(HTTP 403\)"):
        hub.push_folder(out_dir, "other/repo", token=TOKEN)
    assert fake_hub.commits == []
    go_offline(monkeypatch)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        hub.push_folder(out_dir, "me/converted", token=TOKEN)


def test_push_bad_folder(fake_hub, tmp_path):
    with pytest.raises(UsageError):
        hub.push_folder(tmp_path / "nope", "me/x", token=TOKEN)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError):
        hub.push_folder(tmp_path / "empty", "me/x", token=TOKEN)
    with pytest.raises(UsageError):
        hub.push_folder(tmp_path, "not a repo", token=TOKEN)


# --- token hygiene ------------------------------------------------------------------------


def _failures(fake_hub, out_dir):
    """Calls that fail after sending the token, one per error path."""
    yield lambda: hub.resolve_source("org/missing", token=TOKEN, progress=False)
    yield lambda: hub.resolve_source("org/gated", token=TOKEN, progress=False)
    yield lambda: hub.resolve_source("org/swin@nope", token=TOKEN, progress=False)
    yield lambda: hub.resolve_source("org/swin/nope.pth", token=TOKEN, progress=False)
    yield lambda: hub.remote_safetensors_header("org/gated", token=TOKEN)
    yield lambda: hub.push_folder(out_dir, "org/swin", token=TOKEN)  # read-only token: 403


def test_token_never_leaks(fake_hub, out_dir, caplog, capfd):
    swin_repo(fake_hub)
    swin_repo(fake_hub, "org/gated", gated=True)
    fake_hub.read_only_tokens.add(TOKEN)
    caplog.set_level(logging.DEBUG)
    texts = []
    for call in _failures(fake_hub, out_dir):
        with pytest.raises(HubError) as err:
            call()
        texts += [str(err.value), err.value.message, err.value.hint or "", repr(err.value),
                  "".join(traceback.format_exception(err.value))]
    ok = hub.resolve_source("org/swin", token=TOKEN, progress=False)
    texts.append(repr(ok))
    texts += [hub.push_folder(out_dir, "org/swin", token=TOKEN, dry_run=True).__repr__()]
    out, err = capfd.readouterr()
    assert caplog.records  # logging was on, so the check below means something
    for text in texts + [caplog.text, out, err]:
        assert TOKEN not in text
    assert any(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in fake_hub.requests)


def test_entry_not_found_names_the_file(fake_hub):
    """A file that vanished between listing and download (EntryNotFound from the resolve URL)."""
    from huggingface_hub import hf_hub_download

    fake_hub.add_repo("org/x", {"main": {"model.safetensors": b"1"}})
    with pytest.raises(HubError) as err, hub._hub_errors("org/x"):
        hf_hub_download("org/x", "sub/missing.json")
    assert err.value.message == "File 'sub/missing.json' does not exist in 'org/x' at revision 'main'."
