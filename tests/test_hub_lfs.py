"""Pushing large files: the Hub's LFS path (batch, PUT or multipart, verify) and Xet, end to end
against the fake Hub on 127.0.0.1 (tests/hub_server.py), including uploads cut off or stalled.

huggingface_hub 2.4 decides the protocol on the client: with hf_xet installed (and
HF_HUB_DISABLE_XET unset) every "lfs" file goes through Xet, else through the LFS batch API.
The in-process tests force LFS (``constants.HF_HUB_DISABLE_XET``); the Xet tests run the CLI in
a subprocess, because hf_xet reads its settings from the environment once per process.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import random
import struct
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import run_cli  # noqa: E402
from hub_server import UploadFault  # noqa: E402
from test_hub import CONFIG, TOKEN, fake_hub, hf_env  # noqa: E402,F401  (fixtures)

import swin_convert  # noqa: E402
from swin_convert.errors import HubError  # noqa: E402
from swin_convert.io import hub  # noqa: E402

MIB = 1 << 20
CARD = "---\nlibrary_name: timm\nlicense: mit\n---\n# converted\n"


def weights(size: int, seed: int, zeros: int = 0) -> bytes:
    """A valid safetensors file of about ``size`` bytes: random F32 values, then ``zeros`` zero
    bytes (repeated chunks, which Xet stores once)."""
    count = (size - zeros) // 4
    header = {"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, 4 * count]}}
    if zeros:
        header["z"] = {"dtype": "F32", "shape": [zeros // 4], "data_offsets": [4 * count, 4 * count + zeros // 4 * 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + random.Random(seed).randbytes(4 * count) + bytes(zeros // 4 * 4)


def make_folder(root: Path, data: bytes) -> Path:
    out = root / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(data)
    (out / "config.json").write_bytes(CONFIG)
    (out / "README.md").write_text(CARD)
    return out


def snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def lfs_client(monkeypatch):
    """huggingface_hub on the LFS path, without upload bars (both are read at import)."""
    from huggingface_hub import constants as c

    monkeypatch.setattr(c, "HF_HUB_DISABLE_XET", True)
    bars = importlib.import_module("huggingface_hub.utils.tqdm")   # the name is shadowed by the class
    monkeypatch.setattr(bars, "HF_HUB_DISABLE_PROGRESS_BARS", True)


@pytest.fixture
def lfs_hub(fake_hub, lfs_client):
    """The fake Hub, "lfs" from 1 MiB, with the client on the LFS path."""
    fake_hub.lfs_threshold = MIB
    return fake_hub


@pytest.fixture
def waits(monkeypatch):
    """huggingface_hub's retry back-off (1, 2, 4, 8, 8 s): recorded, not slept."""
    from huggingface_hub.utils import _http

    recorded: list[float] = []
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


@pytest.fixture
def hub_timeout(monkeypatch):
    """Set SWIN_CONVERT_HUB_TIMEOUT for this test. swin_convert installs its client factory once
    per process, so reset huggingface_hub's factory to make the next call install it afresh."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    for name in ("HF_XET_CLIENT_READ_TIMEOUT", "HF_XET_CLIENT_CONNECT_TIMEOUT"):  # restored afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    def set_timeout(seconds: float) -> None:
        monkeypatch.setenv("SWIN_CONVERT_HUB_TIMEOUT", str(seconds))
        set_client_factory(_http.default_client_factory)
    yield set_timeout
    set_client_factory(_http.default_client_factory)


def paths(server, method: str, prefix: str) -> list[str]:
    return [r.path for r in server.requests if r.method == method and r.path.startswith(prefix)]


# --- the LFS path -------------------------------------------------------------------------


def test_large_push_goes_through_lfs_in_one_commit(fake_hub, lfs_client, tmp_path):
    """A model.safetensors past the Hub's 10 MB rule (the server's default threshold)."""
    data = weights(10 * MIB + 4096, seed=1)
    folder = make_folder(tmp_path, data)
    before = snapshot(folder)
    result = swin_convert.push(folder, "me/big", token=TOKEN)
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["lfs"] == {"model.safetensors": sha256(data)}          # a pointer, not inline bytes
    stored = fake_hub.files("me/big")
    assert stored["model.safetensors"] == data and sha256(stored["model.safetensors"]) == sha256(data)
    assert set(commit["files"]) - set(commit["lfs"]) == {"README.md", "config.json"}  # regular, inline
    assert stored["config.json"] == CONFIG and stored["README.md"] == CARD.encode()
    assert fake_hub.lfs_files("me/big") == {"model.safetensors": sha256(data)}
    assert result.commit == commit["oid"] and result.files == ("README.md", "config.json", "model.safetensors")
    puts = [r for r in fake_hub.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [f"/lfs-storage/me/big/{sha256(data)}"]
    assert "authorization" not in puts[0].headers   # the token never goes to the storage URL
    assert len(paths(fake_hub, "POST", "/me/big.git/info/lfs/objects/verify")) == 1
    assert [u["received"] for u in fake_hub.uploads] == [len(data)]
    assert snapshot(folder) == before


def test_multipart_upload_is_assembled_in_order(lfs_hub, tmp_path):
    lfs_hub.multipart_chunk = MIB
    data = weights(2 * MIB + MIB // 2, seed=2)
    folder = make_folder(tmp_path, data)
    hub.push_folder(folder, "me/parts", token=TOKEN)
    parts = paths(lfs_hub, "PUT", "/lfs-storage/")
    assert [p.rsplit("/", 1)[1] for p in parts] == ["1", "2", "3"]
    assert [u["received"] for u in lfs_hub.uploads] == [MIB, MIB, len(data) - 2 * MIB]
    assert len(paths(lfs_hub, "POST", "/api/complete_multipart/me/parts/")) == 1
    assert lfs_hub.files("me/parts")["model.safetensors"] == data
    assert len(lfs_hub.commits) == 1 and lfs_hub.commits[0]["lfs"] == {"model.safetensors": sha256(data)}


def test_an_object_the_storage_holds_is_not_sent_again(lfs_hub, tmp_path):
    data = weights(2 * MIB, seed=3)
    folder = make_folder(tmp_path, data)
    hub.push_folder(folder, "me/twice", token=TOKEN)
    other = tmp_path / "second"
    other.mkdir()
    (other / "weights.safetensors").write_bytes(data)     # same bytes, new path
    hub.push_folder(other, "me/twice", token=TOKEN)
    assert len(paths(lfs_hub, "PUT", "/lfs-storage/")) == 1
    assert lfs_hub.commits[1]["lfs"] == {"weights.safetensors": sha256(data)}
    assert lfs_hub.files("me/twice")["weights.safetensors"] == data


def test_a_transient_cut_is_retried(lfs_hub, tmp_path, waits):
    data = weights(3 * MIB, seed=4)
    lfs_hub.fault = UploadFault("cut", after=MIB // 2, times=1)
    hub.push_folder(make_folder(tmp_path, data), "me/flaky", token=TOKEN)
    assert [u["outcome"] for u in lfs_hub.uploads] == ["cut", "ok"] and waits == [1]
    assert lfs_hub.files("me/flaky")["model.safetensors"] == data and len(lfs_hub.commits) == 1


@pytest.mark.parametrize("fault, message", [
    (UploadFault("cut", after=MIB // 2), "was cut off"),
    (UploadFault("status", status=500), "failed with HTTP 500 from the storage"),
    (UploadFault("status", status=403), "failed with HTTP 403 from the storage"),
])
def test_a_failed_upload_commits_nothing(lfs_hub, tmp_path, waits, fault, message):
    folder = make_folder(tmp_path, weights(3 * MIB, seed=5))
    before = snapshot(folder)
    lfs_hub.fault = fault
    with pytest.raises(HubError) as err:
        hub.push_folder(folder, "me/cut", token=TOKEN)
    assert err.value.message.startswith(f"Uploading 'model.safetensors' to 'me/cut' {message}")
    assert err.value.message.endswith("so nothing was committed.") and "\n" not in err.value.message
    assert "run the same push again" in err.value.hint
    retried = fault.status != 403                      # 5xx and broken connections are retried
    assert len(lfs_hub.uploads) == (6 if retried else 1) and len(waits) == (5 if retried else 0)
    assert lfs_hub.commits == [] and paths(lfs_hub, "POST", "/api/models/me/cut/commit/") == []
    assert lfs_hub.repos["me/cut"].lfs == {}           # nothing half-stored either
    assert snapshot(folder) == before


def test_a_stalled_upload_times_out(lfs_hub, tmp_path, waits, hub_timeout):
    hub_timeout(0.5)
    folder = make_folder(tmp_path, weights(3 * MIB, seed=6))
    lfs_hub.fault = UploadFault("stall")
    with pytest.raises(HubError) as err:
        hub.push_folder(folder, "me/stall", token=TOKEN)
    # Without the timeout each attempt would wait until the server gives up (120 s), and the
    # server, not the client, would end it.
    assert "timed out" in err.value.message and "SWIN_CONVERT_HUB_TIMEOUT" in err.value.hint
    assert [(u["outcome"], u["abandoned"]) for u in lfs_hub.settled_uploads()] == [("stall", True)] * 6
    assert lfs_hub.commits == []


def test_cli_push_cut_off_is_one_line(lfs_hub, tmp_path, waits, capsys, monkeypatch):
    """The command line as users see it (in-process, so the back-off is not slept)."""
    from swin_convert.cli import _run

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = make_folder(tmp_path, weights(3 * MIB, seed=7))
    before = snapshot(folder)
    lfs_hub.fault = UploadFault("cut", after=MIB)
    code = _run(["push", str(folder), "me/cli"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 2 and lines[0].startswith("Error: Uploading 'model.safetensors' to 'me/cli' was cut off")
    assert lines[1].startswith("Hint: ") and "Traceback" not in err and TOKEN not in err
    assert lfs_hub.commits == [] and snapshot(folder) == before


def test_upload_error_mapping_leaves_other_errors_alone():
    refused = hub._map_upload_exception(ValueError("LFS batch API returned errors:\nx"), "me/x")
    assert refused.message == "The Hub's large-file storage refused a file for 'me/x', so nothing was committed."
    assert hub._map_upload_exception(RuntimeError("a bug"), "me/x") is None          # stays a traceback
    assert hub._map_upload_exception(ValueError("Invalid metadata in README.md."), "me/x") is None
    disk = OSError(28, "No space left on device", "/tmp/x")
    assert hub._map_upload_exception(disk, "me/x") is None                          # the general mapping's
    xet = ConnectionError("Server error: Request error: HTTP status server error (503 Service Unavailable)")
    assert "failed with HTTP 503 from the storage" in hub._map_upload_exception(xet, "me/x").message


# --- the fake server's own rules (a test double must be able to say no) --------------------


def _post(url: str, body: dict | bytes, *, method: str = "POST", token: str | None = TOKEN) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_server_refuses_bad_bytes_and_pointers_to_missing_objects(lfs_hub):
    lfs_hub.add_repo("me/rules", {"main": {}})
    data = b"x" * 5000
    oid = sha256(data)
    status, body = _post(f"{lfs_hub.url}/me/rules.git/info/lfs/objects/batch",
                         {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    assert status == 200
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    assert _post(href, b"y" * 5000, method="PUT", token=None)[0] == 400      # sha256 mismatch
    assert _post(href, data[:-1], method="PUT", token=None)[0] == 400        # size mismatch
    assert lfs_hub.repos["me/rules"].lfs == {}
    pointer = json.dumps({"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid,
                                                      "size": len(data)}}).encode()
    header = json.dumps({"key": "header", "value": {"summary": "x"}}).encode()
    commit_url = f"{lfs_hub.url}/api/models/me/rules/commit/main"
    status, body = _post(commit_url, header + b"\n" + pointer)
    assert status == 400 and b"does not exist" in body and lfs_hub.commits == []
    assert _post(href, data, method="PUT", token=None)[0] == 200
    assert _post(commit_url, header + b"\n" + pointer)[0] == 200
    assert lfs_hub.files("me/rules")["w.bin"] == data


# --- Xet (the path a real push takes where hf_xet is installed) ----------------------------


def _xet_env(server, tmp_path, **extra) -> dict:
    """Everything the subprocess depends on, set here rather than inherited from the user."""
    return {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
            "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_XET": "0",
            "HF_XET_CACHE": str(tmp_path / "xet"), "HF_XET_XORB_COMPRESSION_POLICY": "none",
            "HF_XET_TELEMETRY_ENABLED": "false", "HF_XET_CLIENT_RETRY_MAX_ATTEMPTS": "1",
            "HF_XET_CLIENT_RETRY_BASE_DELAY": "10ms", "HF_XET_CLIENT_READ_TIMEOUT": "60s",
            "SWIN_CONVERT_HUB_TIMEOUT": "", **extra}


@pytest.fixture
def xet_hub(fake_hub):
    pytest.importorskip("hf_xet")
    return fake_hub


def test_cli_push_through_xet(xet_hub, tmp_path):
    """Past 10 MB (the server's default threshold); the zeros repeat a chunk, so the shard's
    segments, not the xorb's chunk order, rebuild the file."""
    data = weights(10 * MIB + 4096, seed=8, zeros=3 * MIB)
    folder = make_folder(tmp_path, data)
    before = snapshot(folder)
    result = run_cli("push", folder, "me/xet", env=_xet_env(xet_hub, tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(xet_hub.commits) == 1 and xet_hub.commits[0]["lfs"] == {"model.safetensors": sha256(data)}
    assert xet_hub.files("me/xet")["model.safetensors"] == data
    assert xet_hub.files("me/xet")["README.md"] == CARD.encode()
    assert paths(xet_hub, "GET", "/api/models/me/xet/xet-write-token/") and paths(xet_hub, "POST", "/cas/v1/xorbs/")
    assert paths(xet_hub, "POST", "/me/xet.git/info/lfs/") == []        # no LFS batch on this path
    assert sum(u["received"] for u in xet_hub.uploads) < len(data)       # the repeated chunks went once
    assert snapshot(folder) == before and TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("fault, extra, message", [
    (UploadFault("cut", after=MIB), {}, "The upload to 'me/x' was cut off"),
    (UploadFault("status", status=500), {}, "The upload to 'me/x' failed with HTTP 500 from the storage"),
    # Without SWIN_CONVERT_HUB_TIMEOUT reaching hf_xet, its 60 s read timeout above would apply.
    (UploadFault("stall"), {"HF_XET_CLIENT_READ_TIMEOUT": None, "SWIN_CONVERT_HUB_TIMEOUT": "1"},
     "The upload to 'me/x' was cut off"),
])
def test_cli_failed_xet_upload_is_one_line(xet_hub, tmp_path, fault, extra, message):
    folder = make_folder(tmp_path, weights(2 * MIB, seed=9))
    before = snapshot(folder)
    xet_hub.lfs_threshold = MIB
    xet_hub.fault = fault
    env = {k: v for k, v in _xet_env(xet_hub, tmp_path, **extra).items() if v is not None}
    if "HF_XET_CLIENT_READ_TIMEOUT" not in env:
        env["HF_XET_CLIENT_READ_TIMEOUT"] = ""   # run_cli starts from os.environ: blank out the user's value
    result = run_cli("push", folder, "me/x", env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 2 and lines[0].startswith(f"Error: {message}") and lines[1].startswith("Hint: ")
    assert "nothing was committed" in lines[0] and "Traceback" not in result.stderr
    assert xet_hub.commits == [] and xet_hub.repos["me/x"].lfs == {}
    assert {u["outcome"] for u in xet_hub.uploads} == {fault.kind if fault.kind != "status" else "status 500"}
    if fault.kind == "stall":   # hf_xet gave up (1 s), not the server (120 s)
        assert all(u["abandoned"] for u in xet_hub.settled_uploads())
    assert snapshot(folder) == before


def test_xet_timeout_follows_swin_convert_hub_timeout(monkeypatch):
    for name in ("HF_XET_CLIENT_READ_TIMEOUT", "HF_XET_CLIENT_CONNECT_TIMEOUT", "SWIN_CONVERT_HUB_TIMEOUT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    hub._install_xet_timeout()
    assert "HF_XET_CLIENT_READ_TIMEOUT" not in __import__("os").environ   # hf_xet's own default stays
    monkeypatch.setenv("SWIN_CONVERT_HUB_TIMEOUT", "45")
    monkeypatch.setenv("HF_XET_CLIENT_CONNECT_TIMEOUT", "5s")              # the user's own setting wins
    hub._install_xet_timeout()
    import os
    assert os.environ["HF_XET_CLIENT_READ_TIMEOUT"] == "45000ms"
    assert os.environ["HF_XET_CLIENT_CONNECT_TIMEOUT"] == "5s"
