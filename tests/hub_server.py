"""Test doubles on 127.0.0.1: a fake Hugging Face Hub and a plain file server.

``FakeHub`` speaks the endpoints huggingface_hub 2.4.0 calls for what swin_convert.hub does
(read from huggingface_hub/hf_api.py, file_download.py, _commit_api.py, utils/_http.py):

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: model info with
  ``sha`` and ``siblings`` (``model_info``, ``repo_info``).
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: files, with the headers ``hf_hub_download``
  requires (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and Range support (the
  safetensors header is read with ``range: bytes=0-100000``).
* ``POST /api/repos/create``, ``/api/models/{repo}/branch/{b}``, ``/api/validate-yaml``,
  ``/api/models/{repo}/preupload/{rev}`` and ``/api/models/{repo}/commit/{rev}`` (ndjson).
* ``GET /api/whoami-v2``.
* Large files (``_commit_api.py``, ``lfs.py``, ``utils/_xet.py``): preupload answers
  ``uploadMode: "lfs"`` from ``lfs_threshold`` bytes (default 10 MiB; the real Hub also follows
  the repo's .gitattributes), and the commit then carries ``lfsFile`` pointers (sha256, size)
  that must name objects the storage holds, else the whole commit is refused (HTTP 400).
  - LFS: ``POST /{repo}.git/info/lfs/objects/batch`` hands out a presigned ``PUT`` URL (or, with
    ``multipart_chunk``, ``chunk_size`` + numbered part URLs and a completion URL) and a verify
    URL; a PUT is stored only when its sha256 and size match the oid; objects already stored get
    no upload action.
  - Xet: ``GET /api/models/{repo}/xet-write-token/{rev}`` returns a CAS at ``/cas``; it answers
    the global-dedup query, upload grants and v2 shards with 404 (hf_xet 1.8 then uploads xorbs
    directly and sends a v1 shard), reads the xorbs' chunks, and rebuilds each file from the
    shard's segments, checking it against the sha256 the shard records.

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``GatedRepo``, ``RevisionNotFound``,
``EntryNotFound``): ``hf_raise_for_status`` picks the exception class from that header, not
from the status code (its 401 fallback only matches ``https://`` URLs).

Which path a client takes is its own decision: huggingface_hub 2.4 sends every "lfs" file
through Xet when hf_xet is installed and HF_HUB_DISABLE_XET is unset, and never asks the LFS
batch API for an "xet" transfer; so tests choose the path by that setting. ``fault``
(:class:`UploadFault`) cuts off, fails or stalls upload requests on either path.

Limits: the CAS reads uncompressed xorbs only (the client must run with
HF_XET_XORB_COMPRESSION_POLICY=none; a compressed one is refused with HTTP 400), and the
protocol is that of hf_xet 1.8 (xorb and shard layouts are read from what it sends; a newer
hf_xet may need this server updated). hf_xet sends the shard without a read timeout, so a CAS
that stalls on the shard hangs the client; faults therefore apply to xorbs, not shards.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


@dataclass
class Recorded:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.app.connections.add(self.connection)  # so stop() can cut keep-alive clients

    def finish(self):
        self.server.app.connections.discard(self.connection)
        super().finish()

    def do_GET(self):  # noqa: N802 - http.server naming
        split = urlsplit(self.path)
        # Upload bodies are read by their route, piece by piece (so a test can cut them off).
        body = b"" if self.server.app.streams(self.command, split.path) else b"".join(body_pieces(self))
        rec = Recorded(self.command, split.path, parse_qs(split.query),
                       {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.app.record(rec)
        self.server.app.handle(self, rec)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def reply(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
        """Send a complete response (no body for HEAD)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


def body_pieces(h: BaseHTTPRequestHandler, size: int = 1 << 16):
    """The request body in pieces: Content-Length or chunked transfer encoding."""
    if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
        while True:
            n = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if n == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return
            left = n
            while left:
                piece = h.rfile.read(min(left, size))
                if not piece:
                    return
                left -= len(piece)
                yield piece
            h.rfile.readline()
    left = int(h.headers.get("Content-Length") or 0)
    while left:
        piece = h.rfile.read(min(left, size))
        if not piece:
            return
        left -= len(piece)
        yield piece


class _Server:
    """A threaded HTTP server on 127.0.0.1:<free port> that records every request."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.stopping = threading.Event()  # set by stop(): stalled handlers give up

    def streams(self, method: str, path: str) -> bool:
        """Whether the route reads the body itself (uploads)."""
        return False

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting and hang up on open keep-alive connections: the server is gone."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _send_bytes(h: _Handler, data: bytes, headers: dict) -> None:
    """200 or 206 (single ``bytes=a-b`` / ``bytes=a-`` range), 416 when out of bounds."""
    spec = h.headers.get("Range")
    if not spec or not spec.startswith("bytes="):
        return h.reply(200, data, headers)
    start_s, _, end_s = spec[len("bytes="):].partition("-")
    start = int(start_s)
    end = min(int(end_s), len(data) - 1) if end_s else len(data) - 1
    if start >= len(data):
        return h.reply(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
    h.reply(206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})


@dataclass
class _Repo:
    commits: dict = field(default_factory=dict)    # sha -> {path: bytes}
    branches: dict = field(default_factory=dict)   # name -> sha
    pointers: dict = field(default_factory=dict)   # sha -> {path: sha256} for the commit's LFS files
    lfs: dict = field(default_factory=dict)        # sha256 -> bytes: LFS storage (uploaded, verified objects)
    gated: bool = False
    private: bool = False
    prs: int = 0

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None

    def add_commit(self, files: dict, salt: str, pointers: dict | None = None) -> str:
        digest = hashlib.sha1(salt.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha1(files[path]).digest())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.pointers[sha] = dict(pointers or {})
        return sha


@dataclass
class UploadFault:
    """What the storage does to upload requests (LFS PUTs, multipart parts, Xet xorbs).

    kind: "cut" reads ``after`` body bytes, then hangs up without answering; "status" reads the
    body, then answers ``status``; "stall" reads the body and never answers (the upload record
    says whether the client gave up, ``abandoned``, before the server's 120 s).
    times: how many upload requests it hits (None: all of them).
    """

    kind: str
    after: int = 0
    status: int = 500
    times: int | None = None


class FakeHub(_Server):
    """In-memory Hub. ``repos`` maps repo id -> {branch: {path: bytes}}.

    Attributes:
        requests: Every request received, in order (upload bodies are not kept there).
        commits: Every commit made through the commit endpoint: dicts with ``repo_id``,
            ``revision``, ``summary``, ``description``, ``files`` ({path: bytes}, LFS files
            with their stored bytes), ``lfs`` ({path: sha256} of the LFS files), ``deleted``,
            ``create_pr`` and ``oid``.
        read_only_tokens: Tokens that may read but get 403 on writes.
        lfs_threshold: preupload answers "lfs" for files of at least this many bytes (the Hub's
            10 MB rule; the real Hub also sends files matching .gitattributes to LFS).
        multipart_chunk: When set, the LFS batch answers files larger than this with a
            multipart upload of parts of this size.
        xet: Whether the Hub hands out Xet write tokens (its CAS lives under ``/cas``).
        fault: An :class:`UploadFault` applied to upload requests, or None.
        uploads: One dict per upload request: ``kind`` ("lfs", "part", "xorb"), ``path``,
            ``received`` (body bytes read) and ``outcome``.
    """

    WRITE_SUFFIXES = ("/commit/", "/branch/")

    def __init__(self, repos: dict | None = None, *, gated=(), private=()):
        super().__init__()
        self.repos: dict[str, _Repo] = {}
        self.commits: list[dict] = []
        self.read_only_tokens: set[str] = set()
        self.lfs_threshold = 10 * 1024 * 1024
        self.multipart_chunk: int | None = None
        self.xet = True
        self.fault: UploadFault | None = None
        self.uploads: list[dict] = []
        self._pending: dict = {}      # (repo_id, sha256) -> size announced to the batch endpoint
        self._parts: dict = {}        # (repo_id, sha256) -> {part number: bytes}
        self._xet_tokens: dict = {}   # access token -> repo id
        self._xorbs: dict = {}        # xorb hash -> [chunk bytes]
        for repo_id, branches in (repos or {}).items():
            self.add_repo(repo_id, branches, gated=repo_id in gated, private=repo_id in private)

    # -- test helpers ------------------------------------------------------------------

    def add_repo(self, repo_id: str, branches: dict, *, gated: bool = False, private: bool = False) -> None:
        repo = _Repo(gated=gated, private=private)
        for name, files in branches.items():
            repo.branches[name] = repo.add_commit(files, f"{repo_id}@{name}")
        self.repos[repo_id] = repo

    def commit_sha(self, repo_id: str, revision: str = "main") -> str:
        return self.repos[repo_id].resolve(revision)

    def files(self, repo_id: str, revision: str = "main") -> dict:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    def lfs_files(self, repo_id: str, revision: str = "main") -> dict:
        """{path: sha256} of the LFS files at ``revision``."""
        repo = self.repos[repo_id]
        return repo.pointers[repo.resolve(revision)]

    def settled_uploads(self, limit: float = 10.0) -> list[dict]:
        """``uploads`` once no stalled one is still waiting to see whether its client gives up."""
        deadline = time.monotonic() + limit
        while any(u.get("abandoned", False) is None for u in self.uploads) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.uploads

    def mutating_requests(self) -> list[Recorded]:
        """Requests that change state: repo creation, branch creation, commits."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD") and (
            r.path == "/api/repos/create" or any(s in r.path for s in self.WRITE_SUFFIXES))]

    def file_requests(self, filename: str) -> list[Recorded]:
        return [r for r in self.requests if "/resolve/" in r.path and unquote(r.path).endswith("/" + filename)]

    # -- routing -----------------------------------------------------------------------

    def streams(self, method: str, path: str) -> bool:
        return (method == "PUT" and path.startswith("/lfs-storage/")) or (
            method == "POST" and path.startswith("/cas/v1/xorbs/"))

    def handle(self, h: _Handler, rec: Recorded) -> None:
        seg = [unquote(s) for s in rec.path.strip("/").split("/")]
        if seg[:1] == ["api"]:
            return self._api(h, rec, seg[1:])
        if seg[:1] == ["lfs-storage"] and rec.method == "PUT" and len(seg) in (4, 6):
            return self._storage_put(h, f"{seg[1]}/{seg[2]}", seg[3], int(seg[5]) if len(seg) == 6 else None)
        if seg[:1] == ["cas"]:
            return self._cas(h, rec, seg[1:])
        if len(seg) == 6 and seg[1].endswith(".git") and seg[2:5] == ["info", "lfs", "objects"]:
            repo_id = f"{seg[0]}/{seg[1][:-len('.git')]}"
            if seg[5] == "batch" and rec.method == "POST":
                return self._lfs_batch(h, rec, repo_id)
            if seg[5] == "verify" and rec.method == "POST":
                return self._lfs_verify(h, rec, repo_id)
        if len(seg) >= 5 and seg[2] == "resolve":
            return self._resolve(h, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        h.reply(404, {"error": "Not found"})

    def _api(self, h: _Handler, rec: Recorded, seg: list[str]) -> None:
        if seg == ["whoami-v2"]:
            return self._whoami(h)
        if seg == ["repos", "create"] and rec.method == "POST":
            return self._create_repo(h, json.loads(rec.body or b"{}"))
        if seg == ["validate-yaml"]:
            return h.reply(200, {"errors": [], "warnings": []})
        if seg[:1] == ["complete_multipart"] and len(seg) == 4 and rec.method == "POST":
            return self._complete_multipart(h, rec, f"{seg[1]}/{seg[2]}", seg[3])
        if len(seg) < 3 or seg[0] != "models":
            return h.reply(404, {"error": "Not found"})
        repo_id, rest = f"{seg[1]}/{seg[2]}", seg[3:]
        if not rest or rest[0] == "revision":
            return self._model_info(h, repo_id, rest[1] if len(rest) > 1 else "main")
        if rest[0] == "xet-write-token" and len(rest) == 2 and rec.method == "GET":
            return self._xet_token(h, repo_id, rest[1])
        routes = {"preupload": self._preupload, "commit": self._commit, "branch": self._branch}
        if rest[0] in routes and len(rest) == 2 and rec.method == "POST":
            return routes[rest[0]](h, rec, repo_id, rest[1])
        h.reply(404, {"error": "Not found"})

    # -- access ------------------------------------------------------------------------

    def _token(self, h: _Handler) -> str | None:
        auth = h.headers.get("Authorization") or ""
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def _access(self, h: _Handler, repo_id: str, *, write: bool = False) -> _Repo | None:
        """The repo, or None after sending the error the Hub would send."""
        token, repo = self._token(h), self.repos.get(repo_id)
        if repo is None or (repo.private and token is None):
            h.reply(401 if token is None else 404, {"error": "Repository not found"},
                    {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return None
        if repo.gated:
            message = f"Access to model {repo_id} is restricted and you are not in the authorized list."
            h.reply(403, {"error": message}, {"X-Error-Code": "GatedRepo", "X-Error-Message": message})
            return None
        if write and not self._may_write(h):
            return None
        return repo

    def _may_write(self, h: _Handler) -> bool:
        token = self._token(h)
        if token is None:
            h.reply(401, {"error": "Invalid username or password."})
            return False
        if token in self.read_only_tokens:
            h.reply(403, {"error": "You don't have the rights to write to this repo"},
                    {"X-Error-Message": "You don't have the rights to write to this repo"})
            return False
        return True

    def _revision(self, h: _Handler, repo: _Repo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            h.reply(404, {"error": f"Invalid rev id: {revision}"},
                    {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {revision}"})
        return sha

    # -- reads -------------------------------------------------------------------------

    def _whoami(self, h: _Handler) -> None:
        if self._token(h) is None:
            return h.reply(401, {"error": "Invalid credentials in Authorization header"})
        h.reply(200, {"type": "user", "name": "tester", "auth": {"type": "access_token"}})

    def _model_info(self, h: _Handler, repo_id: str, revision: str) -> None:
        repo = self._access(h, repo_id)
        sha = repo and self._revision(h, repo, revision)
        if not sha:
            return
        siblings = [{"rfilename": path} for path in sorted(repo.commits[sha])]
        h.reply(200, {"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                      "gated": "manual" if repo.gated else False, "disabled": False, "siblings": siblings})

    def _resolve(self, h: _Handler, repo_id: str, revision: str, path: str) -> None:
        repo = self._access(h, repo_id)
        sha = repo and self._revision(h, repo, revision)
        if not sha:
            return
        data = repo.commits[sha].get(path)
        if data is None:
            return h.reply(404, {"error": "Entry not found"},
                           {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        _send_bytes(h, data, headers)

    # -- writes ------------------------------------------------------------------------

    def _create_repo(self, h: _Handler, payload: dict) -> None:
        if not self._may_write(h):
            return
        repo_id = f"{payload.get('organization') or 'tester'}/{payload['name']}"
        if repo_id in self.repos:
            return h.reply(409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"})
        self.add_repo(repo_id, {"main": {".gitattributes": GITATTRIBUTES}},
                      private=payload.get("visibility") == "private" or bool(payload.get("private")))
        h.reply(200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _branch(self, h: _Handler, rec: Recorded, repo_id: str, branch: str) -> None:
        repo = self._access(h, repo_id, write=True)
        if repo is None:
            return
        if branch in repo.branches:
            return h.reply(409, {"error": "Reference already exists"})
        start = json.loads(rec.body or b"{}").get("startingPoint") or "main"
        sha = self._revision(h, repo, start)
        if sha:
            repo.branches[branch] = sha
            h.reply(200, {})

    def _preupload(self, h: _Handler, rec: Recorded, repo_id: str, revision: str) -> None:
        """"lfs" at or past ``lfs_threshold`` bytes, else "regular"; ``oid`` of the file there now
        (sha256 for an LFS file, the git blob sha1 for a regular one)."""
        repo = self._access(h, repo_id, write=True)
        sha = repo and self._revision(h, repo, revision)
        if not sha:
            return
        current, pointers = repo.commits[sha], repo.pointers[sha]
        files = []
        for f in json.loads(rec.body)["files"]:
            path, lfs = f["path"], int(f["size"]) >= self.lfs_threshold
            oid = None
            if path in current:
                oid = pointers[path] if lfs and path in pointers else git_blob_sha1(current[path])
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        h.reply(200, {"files": files, "commitOid": sha})

    def _commit(self, h: _Handler, rec: Recorded, repo_id: str, revision: str) -> None:
        """ndjson: header, file (base64), lfsFile (sha256 + size of an uploaded object), deletedFile.
        A pointer to an object the storage does not hold refuses the whole commit, as on the Hub."""
        repo = self._access(h, repo_id, write=True)
        parent = repo and self._revision(h, repo, revision)
        if not parent:
            return
        lines = [json.loads(line) for line in rec.body.splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        added = {x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in lines if x["key"] == "file"}
        pointers = {x["value"]["path"]: x["value"] for x in lines if x["key"] == "lfsFile"}
        for path, pointer in pointers.items():
            stored = repo.lfs.get(pointer.get("oid"))
            if pointer.get("algo") != "sha256" or stored is None or len(stored) != pointer.get("size"):
                message = f"Your push was rejected because an LFS pointer pointed to a file that does not exist: {path}"
                return h.reply(400, {"error": message}, {"X-Error-Message": message})
            added[path] = stored
        deleted = [x["value"]["path"] for x in lines if x["key"] in ("deletedFile", "deletedFolder")]
        files = {k: v for k, v in repo.commits[parent].items() if k not in deleted}
        kept = {k: v for k, v in repo.pointers[parent].items() if k not in deleted and k not in added}
        lfs = {path: pointer["oid"] for path, pointer in pointers.items()}
        sha = repo.add_commit({**files, **added}, f"{parent}:{len(self.commits)}", {**kept, **lfs})
        create_pr = rec.query.get("create_pr") == ["1"]
        self.commits.append({"repo_id": repo_id, "revision": revision, "summary": header.get("summary"),
                             "description": header.get("description"), "files": added, "lfs": lfs,
                             "deleted": deleted, "create_pr": create_pr, "oid": sha})
        h.reply(200, self._land(repo, repo_id, revision, sha, create_pr))

    def _land(self, repo: _Repo, repo_id: str, revision: str, sha: str, create_pr: bool) -> dict:
        """Move the branch (or open refs/pr/N) to the new commit; the commit endpoint's answer."""
        pr_url = None
        if create_pr:
            repo.prs += 1
            repo.branches[f"refs/pr/{repo.prs}"] = sha
            pr_url = f"{self.url}/{repo_id}/discussions/{repo.prs}"
        else:
            repo.branches[revision] = sha
        return {"success": True, "commitOid": sha, "commitUrl": f"{self.url}/{repo_id}/commit/{sha}",
                "pullRequestUrl": pr_url}

    # -- LFS (huggingface_hub/lfs.py: batch, PUT or multipart parts + completion, verify) -------

    def _lfs_batch(self, h: _Handler, rec: Recorded, repo_id: str) -> None:
        """Upload actions per object; none for an object the storage already holds."""
        repo = self._access(h, repo_id, write=True)
        if repo is None:
            return
        payload = json.loads(rec.body)
        multipart = self.multipart_chunk is not None and "multipart" in payload.get("transfers", ["basic"])
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry = {"oid": oid, "size": size}
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                entry["error"] = {"code": 422, "message": "Invalid oid or size"}
            elif oid not in repo.lfs:
                self._pending[(repo_id, oid)] = size
                entry["authenticated"] = True
                entry["actions"] = {"upload": self._upload_action(repo_id, oid, size, multipart),
                                    "verify": {"href": f"{self.url}/{repo_id}.git/info/lfs/objects/verify",
                                               "header": {}}}
            objects.append(entry)
        chosen = "multipart" if multipart else "basic"
        h.reply(200, {"transfer": chosen, "objects": objects, "hash_algo": "sha256"},
                {"Content-Type": "application/vnd.git-lfs+json"})

    def _upload_action(self, repo_id: str, oid: str, size: int, multipart: bool) -> dict:
        signed = "?X-Amz-Signature=fake"  # presigned storage URLs: no Authorization header is sent
        if not multipart or size <= self.multipart_chunk:
            return {"href": f"{self.url}/lfs-storage/{repo_id}/{oid}{signed}", "header": {}}
        parts = -(-size // self.multipart_chunk)
        header = {"chunk_size": str(self.multipart_chunk)}
        header.update({str(n): f"{self.url}/lfs-storage/{repo_id}/{oid}/part/{n}{signed}"
                       for n in range(1, parts + 1)})
        return {"href": f"{self.url}/api/complete_multipart/{repo_id}/{oid}", "header": header}

    def _storage_put(self, h: _Handler, repo_id: str, oid: str, part: int | None) -> None:
        """A presigned PUT: a whole object (checked against its sha256 and size) or one part."""
        key = (repo_id, oid)
        data = self._receive(h, "part" if part else "lfs", f"{repo_id}/{oid}" + (f"/part/{part}" if part else ""))
        if data is None:
            return
        if key not in self._pending or repo_id not in self.repos:
            return h.reply(403, b"<Error><Code>AccessDenied</Code></Error>")
        if part is not None:
            self._parts.setdefault(key, {})[part] = data
            return h.reply(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        if hashlib.sha256(data).hexdigest() != oid or len(data) != self._pending[key]:
            return h.reply(400, b"<Error><Code>BadDigest</Code></Error>")
        self.repos[repo_id].lfs[oid] = data
        h.reply(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    def _complete_multipart(self, h: _Handler, rec: Recorded, repo_id: str, oid: str) -> None:
        """Assemble the parts in partNumber order; each etag must be that of the part received."""
        key, payload = (repo_id, oid), json.loads(rec.body)
        parts = self._parts.get(key, {})
        listed = [(p["partNumber"], p["etag"].strip('"')) for p in payload.get("parts", [])]
        size = self._pending.get(key)
        if (size is None or payload.get("oid") != oid or [n for n, _ in listed] != list(range(1, len(listed) + 1))
                or sorted(parts) != [n for n, _ in listed]
                or any(hashlib.md5(parts[n]).hexdigest() != etag for n, etag in listed)):
            return h.reply(400, {"error": "Invalid multipart completion"})
        data = b"".join(parts[n] for n, _ in listed)
        if hashlib.sha256(data).hexdigest() != oid or len(data) != size:
            return h.reply(400, {"error": "The assembled object does not match its sha256 and size"})
        self.repos[repo_id].lfs[oid] = data
        del self._parts[key]
        h.reply(200, {})

    def _lfs_verify(self, h: _Handler, rec: Recorded, repo_id: str) -> None:
        repo = self._access(h, repo_id, write=True)
        if repo is None:
            return
        payload = json.loads(rec.body)
        stored = repo.lfs.get(payload.get("oid"))
        if stored is None or len(stored) != payload.get("size"):
            return h.reply(404, {"error": "Object not found"}, {"X-Error-Message": "LFS object not found"})
        h.reply(200, {})

    def _receive(self, h: _Handler, kind: str, path: str) -> bytes | None:
        """Read an upload body, or apply ``fault`` (then None: the request was answered or dropped)."""
        record = {"kind": kind, "path": path, "received": 0, "outcome": "ok"}
        self.uploads.append(record)
        fault = self.fault
        if fault is not None and fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.fault = None
        data = bytearray()
        for piece in body_pieces(h):
            if fault is not None and fault.kind == "cut" and len(data) + len(piece) >= fault.after:
                break
            data += piece
        record["received"] = len(data)
        if fault is None:
            return bytes(data)
        record["outcome"] = fault.kind if fault.kind != "status" else f"status {fault.status}"
        if fault.kind == "status":
            h.reply(fault.status, b"<Error><Code>InternalError</Code></Error>", {"Connection": "close"})
            return None
        if fault.kind == "stall":
            record["abandoned"] = None
            record["abandoned"] = self._client_hangs_up(h)
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return None

    def _client_hangs_up(self, h: _Handler, limit: float = 120.0) -> bool:
        """Answer nothing; True once the client closes the connection (it timed out), False when
        ``limit`` seconds pass or the server stops first."""
        deadline = time.monotonic() + limit
        while not self.stopping.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([h.connection], [], [], 0.05)
            if ready:
                try:
                    if not h.connection.recv(1 << 16):
                        return True
                except OSError:
                    return True
        return False

    # -- Xet (hf_xet: write token, then the CAS: dedup query, xorbs, shard) -----------------

    def _xet_token(self, h: _Handler, repo_id: str, revision: str) -> None:
        repo = self._access(h, repo_id, write=True)
        if repo is None:
            return
        if not self.xet:
            return h.reply(501, {"error": "Xet storage is not enabled"}, {"X-Error-Message": "Xet is not enabled"})
        token = f"xet_{len(self._xet_tokens)}_{hashlib.sha1(repo_id.encode()).hexdigest()[:8]}"
        self._xet_tokens[token] = repo_id
        expiry = int(time.time()) + 3600
        info = {"accessToken": token, "exp": expiry, "casUrl": f"{self.url}/cas"}
        h.reply(200, info, {"X-Xet-Cas-Url": info["casUrl"], "X-Xet-Access-Token": token,
                            "X-Xet-Token-Expiration": str(expiry)})

    def _cas(self, h: _Handler, rec: Recorded, seg: list[str]) -> None:
        """``/cas/v1/xorbs/default/<hash>`` and ``/cas/v1/shards``; no global dedup, no upload
        grants and no v2 shards (hf_xet falls back to direct xorb and v1 shard uploads)."""
        repo_id = self._xet_tokens.get(self._token(h) or "")
        if repo_id is None:
            return h.reply(401, {"error": "Invalid CAS token"})
        if seg[:2] == ["v1", "xorbs"] and len(seg) == 4 and rec.method == "POST":
            data = self._receive(h, "xorb", "/".join(seg))
            if data is None:
                return
            chunks = _xorb_chunks(data)
            if chunks is None:
                return h.reply(400, {"error": "This test CAS reads uncompressed xorbs only "
                                              "(HF_XET_XORB_COMPRESSION_POLICY=none)"})
            self._xorbs[seg[3]] = chunks
            return h.reply(200, {"was_inserted": True})
        if seg == ["v1", "shards"] and rec.method == "POST":
            try:
                files = _shard_files(rec.body, self._xorbs)
            except (KeyError, IndexError, struct.error) as exc:
                return h.reply(400, {"error": f"Bad shard: {type(exc).__name__}"})
            repo = self.repos[repo_id]
            for sha256, data in files:
                if hashlib.sha256(data).hexdigest() != sha256:
                    return h.reply(400, {"error": "A file in the shard does not match its sha256"})
                repo.lfs[sha256] = data
            return h.reply(200, {"result": 0, "was_inserted": True})
        h.reply(404, {"error": "Not found"})


def _xorb_chunks(data: bytes) -> list[bytes] | None:
    """The chunks of a serialized xorb, or None when one is compressed.

    Each chunk is an 8-byte header (version, compressed size u24 LE, compression scheme,
    uncompressed size u24 LE) and its bytes; scheme 0 is "none".
    """
    chunks, i = [], 0
    while i < len(data) and data[i:i + 7] != b"XETBLOB":   # an optional footer follows the chunks
        stored = int.from_bytes(data[i + 1:i + 4], "little")
        scheme, size = data[i + 4], int.from_bytes(data[i + 5:i + 8], "little")
        if scheme != 0 or stored != size:
            return None
        chunks.append(data[i + 8:i + 8 + size])
        i += 8 + size
    return chunks


def _merkle_hex(raw: bytes) -> str:
    """xet-core stores a 32-byte hash as four little-endian u64 words."""
    return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8)).hex()


def _shard_files(shard: bytes, xorbs: dict) -> list[tuple[str, bytes]]:
    """(sha256, bytes) of each file a shard describes, rebuilt from the xorbs' chunks.

    File info section after the 48-byte header: per file a 48-byte header (hash, flags u32,
    entry count u32), that many 48-byte segments (xorb hash, flags, bytes, first chunk, end
    chunk), the verification entries (flag 1<<31) and the metadata extension holding the
    sha256 (flag 1<<30); a hash of all 0xFF ends the section.
    """
    files, off = [], 48
    while shard[off:off + 32] != b"\xff" * 32:
        flags, count = struct.unpack_from("<II", shard, off + 32)
        off += 48
        data = bytearray()
        for _ in range(count):
            xorb = _merkle_hex(shard[off:off + 32])
            _, size, first, end = struct.unpack_from("<IIII", shard, off + 32)
            part = b"".join(xorbs[xorb][first:end])
            if len(part) != size:
                raise IndexError("segment size")
            data += part
            off += 48
        if flags & (1 << 31):
            off += 48 * count
        if not flags & (1 << 30):
            raise KeyError("no sha256 in the shard")
        files.append((_merkle_hex(shard[off:off + 32]), bytes(data)))
        off += 48
    return files


class FileServer(_Server):
    """Plain static files under ``/files/<name>`` with ETag, Range and If-Range.

    Attributes:
        files: name -> bytes.
        drop_after: name -> n: the next GET of that file sends full headers, n body bytes, then
            closes the connection (consumed once).
        ranges: When False, Range headers are ignored (always 200 with the whole file).
    """

    def __init__(self, files: dict | None = None):
        super().__init__()
        self.files: dict[str, bytes] = dict(files or {})
        self.drop_after: dict[str, int] = {}
        self.ranges = True

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def handle(self, h: _Handler, rec: Recorded) -> None:
        name = unquote(rec.path).removeprefix("/files/")
        data = self.files.get(name)
        if data is None or not rec.path.startswith("/files/"):
            return h.reply(404, b"not found")
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        headers = {"ETag": etag, "Content-Type": "application/octet-stream"}
        if self.ranges:
            headers["Accept-Ranges"] = "bytes"
        if_range = h.headers.get("If-Range")
        use_range = self.ranges and (if_range is None or if_range == etag)
        if name in self.drop_after and rec.method == "GET":
            return self._drop(h, data, headers, self.drop_after.pop(name))
        if not use_range and "Range" in h.headers:
            del h.headers["Range"]
        _send_bytes(h, data, headers)

    @staticmethod
    def _drop(h: _Handler, data: bytes, headers: dict, n: int) -> None:
        """Promise the whole file, send ``n`` bytes, hang up: a connection lost mid-body."""
        h.send_response(200)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:n])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)
