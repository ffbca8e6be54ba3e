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

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``GatedRepo``, ``RevisionNotFound``,
``EntryNotFound``): ``hf_raise_for_status`` picks the exception class from that header, not
from the status code (its 401 fallback only matches ``https://`` URLs).

Limitation: preupload answers ``uploadMode: "regular"`` for every file, so content travels
base64-inline in the commit. The LFS path is not served: with hf_xet installed
huggingface_hub 2.4 uploads LFS files through Xet storage, which a test server cannot fake
cheaply. Tests therefore keep uploads small.
"""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
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
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
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


class _Server:
    """A threaded HTTP server on 127.0.0.1:<free port> that records every request."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

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
    gated: bool = False
    private: bool = False
    prs: int = 0

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None

    def add_commit(self, files: dict, salt: str) -> str:
        digest = hashlib.sha1(salt.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha1(files[path]).digest())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        return sha


class FakeHub(_Server):
    """In-memory Hub. ``repos`` maps repo id -> {branch: {path: bytes}}.

    Attributes:
        requests: Every request received, in order.
        commits: Every commit made through the commit endpoint: dicts with ``repo_id``,
            ``revision``, ``summary``, ``description``, ``files`` ({path: bytes}),
            ``deleted``, ``create_pr`` and ``oid``.
        read_only_tokens: Tokens that may read but get 403 on writes.
    """

    WRITE_SUFFIXES = ("/commit/", "/branch/")

    def __init__(self, repos: dict | None = None, *, gated=(), private=()):
        super().__init__()
        self.repos: dict[str, _Repo] = {}
        self.commits: list[dict] = []
        self.read_only_tokens: set[str] = set()
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

    def mutating_requests(self) -> list[Recorded]:
        """Requests that change state: repo creation, branch creation, commits."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD") and (
            r.path == "/api/repos/create" or any(s in r.path for s in self.WRITE_SUFFIXES))]

    def file_requests(self, filename: str) -> list[Recorded]:
        return [r for r in self.requests if "/resolve/" in r.path and unquote(r.path).endswith("/" + filename)]

    # -- routing -----------------------------------------------------------------------

    def handle(self, h: _Handler, rec: Recorded) -> None:
        seg = [unquote(s) for s in rec.path.strip("/").split("/")]
        if seg[:1] == ["api"]:
            return self._api(h, rec, seg[1:])
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
        if len(seg) < 3 or seg[0] != "models":
            return h.reply(404, {"error": "Not found"})
        repo_id, rest = f"{seg[1]}/{seg[2]}", seg[3:]
        if not rest or rest[0] == "revision":
            return self._model_info(h, repo_id, rest[1] if len(rest) > 1 else "main")
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
        repo = self._access(h, repo_id, write=True)
        sha = repo and self._revision(h, repo, revision)
        if not sha:
            return
        current = repo.commits[sha]
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_blob_sha1(current[f["path"]]) if f["path"] in current else None}
                 for f in json.loads(rec.body)["files"]]
        h.reply(200, {"files": files, "commitOid": sha})

    def _commit(self, h: _Handler, rec: Recorded, repo_id: str, revision: str) -> None:
        repo = self._access(h, repo_id, write=True)
        parent = repo and self._revision(h, repo, revision)
        if not parent:
            return
        lines = [json.loads(line) for line in rec.body.splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        added = {x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in lines if x["key"] == "file"}
        deleted = [x["value"]["path"] for x in lines if x["key"] in ("deletedFile", "deletedFolder")]
        if any(x["key"] == "lfsFile" for x in lines):
            return h.reply(400, {"error": "This test server does not accept LFS files"})
        files = {k: v for k, v in repo.commits[parent].items() if k not in deleted}
        sha = repo.add_commit({**files, **added}, f"{parent}:{len(self.commits)}")
        create_pr = rec.query.get("create_pr") == ["1"]
        self.commits.append({"repo_id": repo_id, "revision": revision, "summary": header.get("summary"),
                             "description": header.get("description"), "files": added, "deleted": deleted,
                             "create_pr": create_pr, "oid": sha})
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
