"""Sources and destinations on the network: Hugging Face Hub repos and plain URLs.

This is the only module that imports huggingface_hub, and it does so inside functions, so
``import swin_convert.hub`` stays cheap (no torch, no huggingface_hub, no urllib).

* Hub reads go through ``hf_hub_download`` for only the files needed (weights, config.json,
  README.md) and use the shared HF cache, so ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_TOKEN`` and
  ``HF_HUB_OFFLINE`` behave as in ``hf download``.
* URL downloads stream into ``<HF_HOME>/swin-convert/downloads/<sha256(url)>/<name>`` through
  a ``.incomplete`` file that is renamed only once complete (and verified).
* Every huggingface_hub / network exception is mapped to one-sentence ``HubError`` with a
  next step. Tokens are passed through, never formatted into a message or a log line.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from ..errors import BadInputError, HubError, SwinConvertError, UsageError
from .progress import hub_bars as _hub_bars, progress_bar as _progress_bar, set_download_progress  # noqa: F401
from .shards import check_placement, is_index, read_index, shard_names

logger = logging.getLogger(__name__)

LIBRARY_NAME = "swin-convert"
DEFAULT_COMMIT_MESSAGE = "Upload converted Swin checkpoint with swin-convert"
# preferred order at a repo root (transformers'): one file before an index of shards
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
CHECKPOINT_SUFFIXES = (".pth", ".pt")
_LOCAL_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".tar")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
_CHUNK = 1 << 20
_LOGIN_HINT = "Run `hf auth login` once (or export HF_TOKEN), then retry."


@dataclass(frozen=True)
class ResolvedSource:
    """A source made local.

    Attributes:
        path: The weights file, or the directory holding it (hub: the snapshot directory, so
            model.safetensors / pytorch_model.bin / *.pth and config.json sit side by side).
        display: What the user typed.
        kind: "local", "hub" or "url".
        repo_id: Hub repo id (hub sources).
        revision: Requested revision, "main" by default (hub sources).
        commit: Resolved commit sha (hub sources).
        url: The URL (url sources).
        card: ``{"license": ..., "datasets": [...]}`` from the source card when known; never
            defaulted.
        filename: Name of the chosen weights file inside ``path`` when ``path`` is a directory.
    """

    path: Path
    display: str
    kind: str
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None
    url: str | None = None
    card: dict = field(default_factory=dict)
    filename: str | None = None


@dataclass(frozen=True)
class PushResult:
    """Outcome of :func:`push_folder`.

    Attributes:
        url: The repo (or branch / pull request) URL.
        commit: The new commit sha; None for a dry run.
        files: Paths uploaded (or that would be), relative to the folder.
        dry_run: True when nothing was sent.
        card_kept: True when the repo's existing README.md was kept instead of ours.
    """

    url: str
    commit: str | None
    files: tuple[str, ...]
    dry_run: bool
    card_kept: bool


# --- parsing ------------------------------------------------------------------------------


def parse_source(source: str) -> tuple[str, dict]:
    """Classify a source string.

    An existing local path always wins; then ``http(s)://`` URLs; then Hub ids written
    ``org/name``, ``org/name@rev``, ``org/name/path/file.pth``, ``hf-hub:org/name`` or
    ``hf://[models/]org/name@rev/path``.

    Args:
        source: What the user typed.

    Returns:
        ``("local", {"path": Path})``, ``("url", {"url": str})`` or
        ``("hub", {"repo_id": str, "revision": str | None, "filename": str | None})``.

    Raises:
        UsageError: The string is none of these.
    """
    text = source.strip()
    if not text:
        raise UsageError("The source is empty.", "Pass a local checkpoint, a URL or a Hub repo id (org/name).")
    local = Path(text).expanduser()
    if _exists(local):
        return "local", {"path": local}
    if text.lower().startswith(("http://", "https://")):
        return "url", {"url": text}
    explicit, body = _strip_hub_prefix(text)
    if not explicit and _looks_local(body):
        raise UsageError(f"'{text}' is not an existing file or directory.",
                         "Check the path; for a Hub repo write org/name or hf-hub:org/name.")
    return "hub", _split_hub_id(body, text)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # name too long, NUL byte: certainly not a local file
        return False


def _strip_hub_prefix(text: str) -> tuple[bool, str]:
    """Remove ``hf-hub:`` / ``hf://`` (timm and hf spellings); say whether one was there."""
    if text.startswith("hf-hub:"):
        return True, text[len("hf-hub:"):]
    if text.startswith("hf://"):
        body = text[len("hf://"):]
        if body.startswith(("datasets/", "spaces/", "buckets/", "kernels/")):
            raise UsageError(f"'{text}' is not a model repo.", "Pass a model repo, e.g. hf://org/name.")
        return True, body.removeprefix("models/")
    return False, text


def _looks_local(body: str) -> bool:
    """A missing local path, not a repo: no org/name, path syntax, or org/name.pth shape."""
    if "/" not in body or body.startswith(("/", "./", "../", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", body):
        return True
    # "ckpt/swin.pth" is far more likely a mistyped local file than a repo named "swin.pth".
    return body.count("/") == 1 and "@" not in body and body.lower().endswith(_LOCAL_SUFFIXES)


def _split_hub_id(body: str, source: str) -> dict:
    """Split ``org/name[@rev][/path/in/repo]`` (the ``@`` sits on the name, as in timm/hf)."""
    bad = UsageError(f"'{source}' is not a valid Hub source.",
                     "Write org/name, org/name@revision or org/name/path/to/file.pth.")
    parts = body.split("/")
    if len(parts) < 2:
        raise bad
    name, at, revision = parts[1].partition("@")
    repo_id = f"{parts[0]}/{name}"
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise bad
    if at and (not revision or "@" in revision):
        raise bad  # "org/name@" or two '@': timm's hf_split refuses these too
    filename = "/".join(parts[2:]) or None
    if filename and any(p in ("", ".", "..") for p in parts[2:]):
        raise bad
    return {"repo_id": repo_id, "revision": unquote(revision) if revision else None, "filename": filename}


def _merge_revision(from_source: str | None, flag: str | None, source: str) -> str | None:
    if from_source and flag and from_source != flag:
        raise UsageError(f"'{source}' names revision '{from_source}' but --revision says '{flag}'.",
                         "Give the revision once, as org/name@rev or with --revision.", option="--revision")
    return from_source or flag


# --- resolving ----------------------------------------------------------------------------


def resolve_source(source: str, *, revision: str | None = None, token: str | None = None,
                   sha256: str | None = None, cache_dir: str | Path | None = None,
                   progress: bool = True) -> ResolvedSource:
    """Make a source local: a local path as is, a Hub repo or a URL downloaded into a cache.

    Args:
        source: Local path, URL or Hub id (see :func:`parse_source`).
        revision: Hub branch, tag or commit (also writable as ``org/name@rev``).
        token: Hub token; None lets huggingface_hub use HF_TOKEN or the stored login.
        sha256: Expected SHA-256 of the weights file (hex). A mismatching URL download is deleted.
        cache_dir: Hub cache directory (default ``HF_HUB_CACHE``); for URLs the root under
            which ``swin-convert/downloads`` is created (default ``HF_HOME``).
        progress: Draw download progress on stderr (only on a terminal).

    Returns:
        The resolved source.

    Raises:
        UsageError: Bad source string, conflicting revisions, or an ambiguous repo.
        HubError: Not found, gated, offline without cache, network failure.
        BadInputError: SHA-256 mismatch.
    """
    expected = _normalize_sha256(sha256)
    kind, parts = parse_source(source)
    if kind != "hub" and revision:
        shown = _safe_url(source) if kind == "url" else source
        raise UsageError(f"--revision only applies to Hub sources, and '{shown}' is a {kind} source.",
                         "Drop --revision, or pass a Hub repo id (org/name).", option="--revision")
    if kind == "url":
        return _resolve_url(source, parts["url"], sha256=expected, cache_dir=cache_dir, progress=progress)
    if kind == "local":
        resolved = ResolvedSource(path=parts["path"], display=source, kind="local")
    else:
        rev = _merge_revision(parts["revision"], revision, source)
        resolved = _resolve_hub(source, parts, rev, token=token, cache_dir=cache_dir, progress=progress)
    if expected:
        _verify_sha256(_weights_file(resolved), expected, delete=False)
    return resolved


def _weights_file(resolved: ResolvedSource) -> Path:
    if resolved.path.is_file():
        return resolved.path
    if resolved.filename and is_index(resolved.filename):
        raise UsageError(f"--sha256 needs a single weights file, and '{resolved.display}' is sharded.",
                         "Drop --sha256; each shard is checked against the Hub's own hashes as it downloads.")
    if resolved.filename:
        return resolved.path / resolved.filename
    raise UsageError(f"--sha256 needs a single weights file, and '{resolved.display}' is a directory.",
                     "Pass the weights file itself, or drop --sha256.", option="--sha256")


def _resolve_hub(source: str, parts: dict, revision: str | None, *, token, cache_dir, progress) -> ResolvedSource:
    """A repo revision from the Hub, else from the cache when offline or the Hub is unreachable."""
    repo_id, wanted = parts["repo_id"], parts["filename"]
    if _offline():
        return _resolve_hub_offline(source, repo_id, revision, wanted, cache_dir)
    try:
        return _resolve_hub_online(source, repo_id, revision, wanted, token=token, cache_dir=cache_dir,
                                   progress=progress)
    except HubError as exc:
        # Like hf_hub_download: a connection failure falls back to what the cache holds.
        if not _is_connection_failure(exc.__cause__):
            raise
        try:
            cached = _resolve_hub_offline(source, repo_id, revision, wanted, cache_dir)
        except HubError:
            raise exc from exc.__cause__
        logger.warning("The Hub is unreachable; using the cached copy of %s.", repo_id)
        return cached


def _resolve_hub_online(source: str, repo_id: str, revision: str | None, wanted: str | None, *, token,
                        cache_dir, progress) -> ResolvedSource:
    """Download the weights (+ config.json, README.md) of one repo revision into the HF cache."""
    with _hub_errors(repo_id, revision=revision, action="download"):
        info = _api(token).model_info(repo_id, revision=revision)
        files = [s.rfilename for s in info.siblings or []]
        weights = _require_weights(files, repo_id, wanted, revision)
        # The branch name goes to the first download so the cache records refs/<revision>
        # (needed for offline use later); the other files are pinned to the commit it resolved.
        local = Path(_download(repo_id, weights, revision, token=token, cache_dir=cache_dir, progress=progress))
        commit = _snapshot_root(local, weights).name
        if is_index(weights):   # then every shard it names, pinned to the same commit
            for shard in _index_shards(local, weights, repo_id, files):
                _download(repo_id, shard, commit, token=token, cache_dir=cache_dir, progress=progress)
        config = _sibling(weights, "config.json")
        if config in files:
            _download(repo_id, config, commit, token=token, cache_dir=cache_dir, progress=progress)
    card = _remote_card(repo_id, commit, files, token=token, cache_dir=cache_dir)
    return ResolvedSource(path=local.parent, display=source, kind="hub", repo_id=repo_id,
                          revision=revision or "main", commit=commit, card=card, filename=local.name)


def _resolve_hub_offline(source: str, repo_id: str, revision: str | None, wanted: str | None,
                         cache_dir) -> ResolvedSource:
    """Serve a repo from the HF cache layout (refs/<rev> -> snapshots/<commit>/...)."""
    snapshot = _cached_snapshot(repo_id, revision, cache_dir)
    files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()) \
        if snapshot else []
    weights = _pick_weights(files, repo_id, wanted)
    if snapshot is None or weights is None:
        where = f"'{repo_id}'" + (f" at revision '{revision}'" if revision else "")
        raise HubError(f"{where} is not in the local cache and HF_HUB_OFFLINE is set.",
                       "Unset HF_HUB_OFFLINE and run once online to fill the cache, "
                       "or point HF_HOME / HF_HUB_CACHE at a cache that holds it.", repo_id=repo_id, revision=revision)
    local = snapshot / weights
    if is_index(weights):
        missing = [s for s in _index_shards(local, weights, repo_id) if s not in files]
        if missing:
            raise HubError(f"'{repo_id}' is only partly in the local cache (shard '{missing[0]}' is missing) and "
                           "HF_HUB_OFFLINE is set.", "Unset HF_HUB_OFFLINE and run once online to fill the cache.")
    readme = snapshot / "README.md"
    card = _card_from_file(readme) if readme.is_file() else {}
    return ResolvedSource(path=local.parent, display=source, kind="hub", repo_id=repo_id,
                          revision=revision or "main", commit=snapshot.name, card=card, filename=local.name)


def _cached_snapshot(repo_id: str, revision: str | None, cache_dir) -> Path | None:
    from huggingface_hub import constants

    root = Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    revision = revision or "main"
    commit = revision if _COMMIT_SHA.fullmatch(revision) else None
    ref = root / "refs" / revision
    if commit is None and ref.is_file():
        commit = ref.read_text().strip()
    snapshot = root / "snapshots" / commit if commit else None
    return snapshot if snapshot is not None and snapshot.is_dir() else None


def _pick_weights(files: list[str], repo_id: str, wanted: str | None) -> str | None:
    """The file to convert: the one named, else model.safetensors, pytorch_model.bin, or a lone .pth."""
    if wanted:
        return wanted if wanted in files else None
    for name in WEIGHT_NAMES:
        if name in files:
            return name
    checkpoints = [f for f in files if f.lower().endswith(CHECKPOINT_SUFFIXES)]
    if len(checkpoints) > 1:
        shown = ", ".join(checkpoints[:5]) + (", ..." if len(checkpoints) > 5 else "")
        raise UsageError(f"'{repo_id}' holds {len(checkpoints)} checkpoints ({shown}), so it is unclear which to use.",
                         f"Name one, e.g. {repo_id}/{checkpoints[0]}.")
    return checkpoints[0] if checkpoints else None


def _require_weights(files: list[str], repo_id: str, wanted: str | None, revision: str | None) -> str:
    weights = _pick_weights(files, repo_id, wanted)
    if weights is not None:
        return weights
    at = f" at revision '{revision}'" if revision else ""
    if wanted:
        raise HubError(f"File '{wanted}' does not exist in '{repo_id}'{at}.",
                       f"List the repo's files with `hf download {repo_id} --dry-run` and name one that exists.",
                       repo_id=repo_id, revision=revision)
    raise HubError(f"'{repo_id}'{at} has no model.safetensors, pytorch_model.bin or .pth checkpoint.",
                   f"Check the repo id, or name the file as {repo_id}/path/to/weights.", repo_id=repo_id,
                   revision=revision)


def _index_shards(local: Path, index: str, repo_id: str, files: list[str] | None = None) -> list[str]:
    """The repo paths of the shards a downloaded index names (plain names only: no '..', no folders);
    with ``files`` (the repo's), each must be one of them."""
    shards = [_sibling(index, name) for name in shard_names(read_index(local))]
    absent = [s for s in shards if files is not None and s not in files]
    if absent:
        raise BadInputError(f"The shard index '{repo_id}/{index}' names '{absent[0]}', which the repo does not "
                            "hold.", "Report it to the repo owner; the index and its shards differ.")
    return shards


def _sibling(filename: str, name: str) -> str:
    """``name`` in the same repo folder as ``filename``."""
    parent = PurePosixPath(filename).parent
    return name if str(parent) == "." else f"{parent}/{name}"


def _snapshot_root(local: Path, filename: str) -> Path:
    """The ``snapshots/<commit>`` directory holding a downloaded ``filename``."""
    return local.parents[len(PurePosixPath(filename).parts) - 1]


def _download(repo_id: str, filename: str, revision: str | None, *, token, cache_dir, progress: bool) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import silent_tqdm

    from .._version import __version__

    return hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, token=token,
                           library_name=LIBRARY_NAME, library_version=__version__,
                           tqdm_class=None if progress and _hub_bars() else silent_tqdm)


def _remote_card(repo_id: str, commit: str, files: list[str], *, token, cache_dir) -> dict:
    """License/datasets from the repo's README.md; the card is optional, so failures are ignored."""
    if "README.md" not in files:
        return {}
    try:
        path = _download(repo_id, "README.md", commit, token=token, cache_dir=cache_dir, progress=False)
        return _card_from_file(Path(path))
    except Exception as exc:  # noqa: BLE001 - a missing licence must not stop a conversion
        logger.debug("Could not read the model card of %s: %s", repo_id, type(exc).__name__)
        return {}


def _card_from_file(path: Path) -> dict:
    from ..core.card import read_card_fields

    try:
        return read_card_fields(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def _api(token):
    from huggingface_hub import HfApi

    from .._version import __version__

    _install_request_timeout()
    _install_xet_timeout()
    return HfApi(token=token, library_name=LIBRARY_NAME, library_version=__version__)


def request_timeout() -> float:
    """Seconds a Hub request may wait for the server (SWIN_CONVERT_HUB_TIMEOUT, default 60)."""
    try:
        value = float(os.environ.get("SWIN_CONVERT_HUB_TIMEOUT", "") or 60)
    except ValueError:
        value = 60.0
    return value if value > 0 else 60.0


def _install_request_timeout() -> None:
    """huggingface_hub's shared client has no timeout (an endpoint that accepts and never answers
    hangs create_repo/create_commit for ever); give it one, unless the user set their own factory.
    Downloads keep their own HF_HUB_DOWNLOAD_TIMEOUT / HF_HUB_ETAG_TIMEOUT."""
    try:
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils import _http
    except ImportError:
        return
    current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    if current is None or getattr(current, "_swin_convert", False) or current is not _http.default_client_factory:
        return
    timeout = request_timeout()

    def factory():
        client = _http.default_client_factory()
        try:
            client.timeout = type(client.timeout)(timeout, connect=min(timeout, 20.0))
        except (AttributeError, TypeError):
            pass
        return client
    factory._swin_convert = True
    set_client_factory(factory)


def _install_xet_timeout() -> None:
    """Xet uploads run in hf_xet's own client (read timeout 300 s), configured from HF_XET_* when
    its session starts: an explicit SWIN_CONVERT_HUB_TIMEOUT reaches it too, unless those are set.
    (hf_xet sends the final shard without a read timeout; no setting reaches that request.)"""
    if not os.environ.get("SWIN_CONVERT_HUB_TIMEOUT"):
        return
    ms = int(request_timeout() * 1000)
    for name, value in (("HF_XET_CLIENT_READ_TIMEOUT", ms), ("HF_XET_CLIENT_CONNECT_TIMEOUT", min(ms, 20000))):
        if not os.environ.get(name):
            os.environ[name] = f"{value}ms"


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline() -> bool:
    """huggingface_hub's own reading of HF_HUB_OFFLINE, so both sides always agree."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


# --- remote header ------------------------------------------------------------------------


def remote_safetensors_header(source: str, *, revision: str | None = None, token: str | None = None) -> dict | None:
    """Read a Hub repo's safetensors header (shapes, dtypes) without downloading the weights.

    Uses ranged GETs (``HfApi.parse_safetensors_file_metadata``, the per-file half of
    ``get_safetensors_metadata``) plus the small config.json when present.

    Args:
        source: A Hub id; local paths and URLs return None (read them locally instead).
        revision: Branch, tag or commit.
        token: Hub token (None: HF_TOKEN / stored login).

    Returns:
        ``{"tensors": {key: {"dtype", "shape"}}, "metadata": {...}, "repo_id", "commit",
        "filename", "config": dict | None}``, or None when the source is not on the Hub, the
        repo has no single-file safetensors, or HF_HUB_OFFLINE is set.

    Raises:
        HubError: Not found, gated, network failure.
        BadInputError: The remote header is not valid safetensors.
    """
    kind, parts = parse_source(source)
    if kind != "hub" or _offline():
        return None
    repo_id, rev = parts["repo_id"], _merge_revision(parts["revision"], revision, source)
    api = _api(token)
    with _hub_errors(repo_id, revision=rev, action="read"):
        info = api.model_info(repo_id, revision=rev)
        files = [s.rfilename for s in info.siblings or []]
        name = _safetensors_name(files, parts["filename"], repo_id, rev)
        if name is None:
            return None
        if is_index(name):
            tensors, metadata, shards = _remote_shard_headers(api, repo_id, name, info.sha, files, token)
        else:
            meta = api.parse_safetensors_file_metadata(repo_id, name, revision=info.sha)
            tensors, metadata, shards = meta.tensors, dict(meta.metadata or {}), 1
        config = _remote_json(repo_id, _sibling(name, "config.json"), info.sha, files, token)
    tensors = {k: {"dtype": t.dtype, "shape": list(t.shape)} for k, t in tensors.items()}
    return {"tensors": tensors, "metadata": metadata, "repo_id": repo_id,
            "commit": info.sha, "filename": name, "config": config, "shards": shards}


def _remote_shard_headers(api, repo_id: str, index: str, commit: str, files: list[str], token):
    """({name: TensorInfo}, first shard's metadata, shard count) from the index and each shard's header."""
    local = Path(_download(repo_id, index, commit, token=token, cache_dir=None, progress=False))
    weight_map = read_index(local)
    names = shard_names(weight_map)
    paths = _index_shards(local, index, repo_id, files)
    tensors, metadata, held = {}, {}, {}
    for i, (shard, path) in enumerate(zip(names, paths)):
        meta = api.parse_safetensors_file_metadata(repo_id, path, revision=commit)
        if i == 0:
            metadata = dict(meta.metadata or {})
        held[shard] = list(meta.tensors)
        tensors.update(meta.tensors)
    check_placement(f"{repo_id}/{index}", weight_map, held)
    return tensors, metadata, len(names)


def _safetensors_name(files: list[str], wanted: str | None, repo_id: str, revision: str | None) -> str | None:
    if wanted:
        _require_weights(files, repo_id, wanted, revision)  # raises when the named file is absent
        return wanted if wanted.endswith((".safetensors", ".safetensors.index.json")) else None
    return next((n for n in ("model.safetensors", "model.safetensors.index.json") if n in files), None)


def _remote_json(repo_id: str, filename: str, commit: str, files: list[str], token) -> dict | None:
    import json

    if filename not in files:
        return None
    path = _download(repo_id, filename, commit, token=token, cache_dir=None, progress=False)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise BadInputError(f"'{filename}' in '{repo_id}' is not valid JSON.",
                            "Report it to the repo owner, or pass a local copy with a fixed config.json.") from exc


# --- error mapping ------------------------------------------------------------------------


@contextmanager
def _hub_errors(repo_id: str, *, revision: str | None = None, action: str = "download"):
    """Turn huggingface_hub / network exceptions into one-line HubError with a next step."""
    try:
        yield
    except SwinConvertError:
        raise
    except Exception as exc:
        mapped = _map_hub_exception(exc, repo_id, revision, action)
        if mapped is None:
            raise
        if isinstance(mapped, HubError):   # the data behind the sentence, for library users
            mapped.repo_id, mapped.revision = mapped.repo_id or repo_id, mapped.revision or revision
            mapped.status = mapped.status or getattr(getattr(exc, "response", None), "status_code", None)
        raise mapped from exc


def _map_hub_exception(exc: Exception, repo_id: str, revision: str | None, action: str) -> SwinConvertError | None:
    """The user-facing error for ``exc``; None for exceptions that are bugs, not conditions."""
    from huggingface_hub import errors as hf

    # Order matters: GatedRepoError is a RepositoryNotFoundError, OfflineModeIsEnabled a
    # ConnectionError, LocalEntryNotFoundError an EntryNotFoundError and an OSError.
    if isinstance(exc, hf.OfflineModeIsEnabled) or (isinstance(exc, hf.LocalEntryNotFoundError) and _offline()):
        return _offline_error(repo_id, action)
    if isinstance(exc, hf.GatedRepoError):
        return HubError(f"Repository '{repo_id}' is gated and this account has not been granted access.",
                        f"Request access at {_endpoint()}/{repo_id}, then log in with `hf auth login` "
                        "(or set HF_TOKEN) and retry.")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return HubError(f"Repository '{repo_id}' was not found on the Hub.",
                        "Check the repo id; if it is private, run `hf auth login` (or set HF_TOKEN) first.")
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubError(f"Revision '{revision or 'main'}' does not exist in '{repo_id}'.",
                        "Pass an existing branch, tag or commit sha (org/name@rev or --revision).")
    if isinstance(exc, hf.RemoteEntryNotFoundError):
        return HubError(f"File '{_entry_name(exc)}' does not exist in '{repo_id}' at revision '{revision or 'main'}'.",
                        f"List the repo's files with `hf download {repo_id} --dry-run`.")
    if isinstance(exc, hf.LocalTokenNotFoundError):
        return _login_error(repo_id)
    if isinstance(exc, hf.HfHubHTTPError):
        return _http_status_error(exc, repo_id, action)
    return _map_other_exception(exc, repo_id, action)


def _map_other_exception(exc: Exception, repo_id: str, action: str) -> SwinConvertError | None:
    from huggingface_hub import errors as hf

    if isinstance(exc, hf.SafetensorsParsingError):
        return BadInputError(f"The safetensors header of '{repo_id}' cannot be parsed.",
                             "The remote file may be corrupt; report it to the repo owner.")
    if isinstance(exc, hf.HFValidationError):
        return UsageError(f"'{repo_id}' is not a valid Hub repo id.", "Write it as org/name.")
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid metadata in README.md"):
        return BadInputError("The Hub rejected the YAML front matter of README.md.",
                             "Fix the card's metadata, or push with --overwrite-card to use the generated one.")
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return HubError(f"Could not write '{exc.filename}' ({exc.strerror or type(exc).__name__}).",
                        "Free some disk space or point HF_HOME at a writable directory.")
    if _is_network_error(exc):
        return HubError(f"Could not reach the Hub to {action} '{repo_id}' ({type(exc).__name__}).",
                        "Check your network connection or proxy, or set HF_HUB_OFFLINE=1 to use the local cache.")
    return None


def _is_network_error(exc: Exception) -> bool:
    """OSError (sockets, LocalEntryNotFoundError while online) or an httpx/httpx2/requests error."""
    module = type(exc).__module__.split(".")[0]
    return isinstance(exc, OSError) or module in ("httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3")


def _entry_name(exc) -> str:
    """The path in the repo from a ``.../resolve/<rev>/<path>`` request URL."""
    url = str(getattr(getattr(exc, "response", None), "url", "") or "")
    _, _, tail = urlsplit(url).path.partition("/resolve/")
    return unquote(tail.partition("/")[2]) or "?"


def _is_connection_failure(exc: BaseException | None) -> bool:
    """A failure to reach the Hub at all (not an HTTP answer, not a local disk error)."""
    from huggingface_hub import errors as hf

    return (isinstance(exc, Exception) and _is_network_error(exc) and not isinstance(exc, hf.HfHubHTTPError)
            and not getattr(exc, "filename", None))


def _http_status_error(exc, repo_id: str, action: str) -> HubError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return HubError(f"The Hub refused to let this session {action} '{repo_id}' (HTTP 401).", _LOGIN_HINT,
                        repo_id=repo_id, status=status)
    if status == 403:
        return HubError(f"This token has no permission to {action} '{repo_id}' (HTTP 403).",
                        "Use a token with write access to that namespace (hf auth login), or pick a namespace you own.",
                        repo_id=repo_id, status=status)
    return HubError(f"The Hub answered HTTP {status} while trying to {action} '{repo_id}'.",
                    "Retry in a moment; set SWIN_CONVERT_DEBUG=1 to see the full response.", repo_id=repo_id,
                    status=status)


def _offline_error(repo_id: str, action: str) -> HubError:
    if action == "push to":
        return HubError(f"Cannot push to '{repo_id}' because HF_HUB_OFFLINE is set.", "Unset HF_HUB_OFFLINE to push.",
                        repo_id=repo_id)
    return HubError(f"'{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set.",
                    "Unset HF_HUB_OFFLINE and run once online to fill the cache.", repo_id=repo_id)


def _login_error(repo_id: str) -> HubError:
    return HubError(f"Not logged in to the Hugging Face Hub, so '{repo_id}' cannot be pushed.", _LOGIN_HINT,
                    repo_id=repo_id)


# --- URLs ---------------------------------------------------------------------------------


def _resolve_url(source: str, url: str, *, sha256: str | None, cache_dir, progress: bool) -> ResolvedSource:
    """Download ``url`` once into the swin-convert download cache; reuse a completed file."""
    from huggingface_hub.utils import WeakFileLock

    target = _url_cache_path(url, cache_dir)
    resolved = ResolvedSource(path=target, display=source, kind="url", url=url)
    lock = target.parents[1] / ".locks" / f"{target.parent.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):  # two processes must not append to the same .incomplete
        if _reuse_cached(target, sha256, url):
            return resolved
        if _offline():
            raise HubError(f"'{_safe_url(url)}' is not in the local cache and HF_HUB_OFFLINE is set.",
                           "Unset HF_HUB_OFFLINE and run once online to fill the cache.", url=_safe_url(url))
        partial = target.with_name(target.name + ".incomplete")
        _download_url(url, partial, progress=progress)
        if sha256:
            _verify_sha256(partial, sha256, delete=True, shown=target)
        os.replace(partial, target)  # atomic: a half file never sits under the final name
        _validator_path(partial).unlink(missing_ok=True)
    return resolved


def _reuse_cached(target: Path, sha256: str | None, url: str) -> bool:
    """A completed earlier download is reused, unless it does not match --sha256."""
    if not target.is_file():
        return False
    if sha256 is None or _file_sha256(target) == sha256:
        return True
    logger.info("The cached download of %s does not match --sha256; downloading it again.", _safe_url(url))
    target.unlink()
    return False


def _url_cache_path(url: str, cache_dir) -> Path:
    base = Path(cache_dir).expanduser() if cache_dir else _hf_home()
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "download"
    return base / "swin-convert" / "downloads" / hashlib.sha256(url.encode()).hexdigest() / name


def _hf_home() -> Path:
    """``HF_HOME`` as huggingface_hub computes it, without importing huggingface_hub."""
    default = os.path.join(os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(os.getenv("HF_HOME", default))))


def _safe_url(url: str) -> str:
    """The URL without credentials or query string (signed URLs carry tokens there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{netloc}{parts.path}"


def _validator_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".etag")


def _download_url(url: str, partial: Path, *, progress: bool) -> None:
    """Stream ``url`` into ``partial``, resuming what an earlier attempt left there."""
    import http.client

    partial.parent.mkdir(parents=True, exist_ok=True)
    offset = partial.stat().st_size if partial.exists() else 0
    response, offset = _open_resumable(url, partial, offset)
    written, total = 0, _expected_total(response, offset)
    try:
        with response, open(partial, "ab" if offset else "wb") as fh, \
                _progress_bar(PurePosixPath(urlsplit(url).path).name, total, offset, progress) as advance:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                fh.write(chunk)
                written += len(chunk)
                advance(len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        raise _interrupted(url, offset + written, total) from exc
    if total is not None and offset + written != total:
        raise _interrupted(url, offset + written, total)


def _open_resumable(url: str, partial: Path, offset: int):
    """Open ``url``: with a Range + If-Range request when a partial file can be resumed.

    Returns the response and the offset to write at (0 when the server sent the whole file).
    """
    validator_file = _validator_path(partial)
    validator = validator_file.read_text().strip() if offset and validator_file.is_file() else ""
    # Without a validator we cannot tell whether the remote file changed since: restart.
    response = _urlopen(url, {"Range": f"bytes={offset}-", "If-Range": validator}) if validator else None
    if response is not None and response.status == 206 and _range_start(response) == offset:
        return response, offset
    if response is None or response.status != 200:  # no resume, 416, or a range we did not ask for
        if response is not None:
            response.close()
        response = _urlopen(url, {})
    _save_validator(validator_file, response)
    return response, 0


def _urlopen(url: str, headers: dict):
    import urllib.request
    from urllib.error import HTTPError, URLError

    from .._version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"swin-convert/{__version__}", **headers})
    try:
        return urllib.request.urlopen(request, timeout=60)
    except HTTPError as exc:
        if headers.get("Range") and exc.code == 416:
            exc.close()
            return None  # the partial file is not a prefix we can extend: the caller restarts
        raise _url_http_error(url, exc) from exc
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise HubError(f"Could not connect to {urlsplit(url).hostname} to download '{_safe_url(url)}' ({reason}).",
                       "Check your network connection and the URL.", url=_safe_url(url)) from exc


def _url_http_error(url: str, exc) -> HubError:
    hint = ("The server refused access; download the file yourself and pass the local path."
            if exc.code in (401, 403) else "Check the URL; for a Hub file pass org/name/path instead of a URL.")
    return HubError(f"Downloading '{_safe_url(url)}' failed with HTTP {exc.code}.", hint, url=_safe_url(url),
                    status=exc.code)


def _save_validator(path: Path, response) -> None:
    """Remember the ETag / Last-Modified so a resumed download can ask If-Range."""
    validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
    if validator and not validator.startswith("W/"):  # weak ETags are not allowed in If-Range
        path.write_text(validator)
    else:
        path.unlink(missing_ok=True)


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range") or "")
    return int(match.group(1)) if match else None


def _expected_total(response, offset: int) -> int | None:
    """Full file size: from Content-Range on 206, else Content-Length (+ offset)."""
    match = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range") or "")
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _interrupted(url: str, size: int, total: int | None) -> HubError:
    of = f" of {total}" if total is not None else ""
    return HubError(f"The download of '{_safe_url(url)}' stopped after {size}{of} bytes.",
                    "Run the same command again; the download resumes where it stopped.", url=_safe_url(url))


# --- checksums ----------------------------------------------------------------------------


def _normalize_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise UsageError("--sha256 must be 64 hexadecimal characters.", "Copy the full SHA-256 of the file.",
                         option="--sha256")
    return value


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_sha256(path: Path, expected: str, *, delete: bool, shown: Path | None = None) -> None:
    actual = _file_sha256(path)
    if actual == expected:
        return
    if delete:  # a download we made: never leave bytes that failed verification behind
        path.unlink(missing_ok=True)
        _validator_path(path).unlink(missing_ok=True)
    raise BadInputError(f"SHA-256 of '{(shown or path).name}' is {actual[:16]}..., not the expected "
                        f"{expected[:16]}....", "Check --sha256 against the publisher's checksum, "
                        "or drop it to accept the file as is.", path=shown or path)


# --- push ---------------------------------------------------------------------------------


def push_folder(folder: Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                create_pr: bool = False, commit_message: str | None = None,
                commit_description: str | None = None, dry_run: bool = False,
                overwrite_card: bool = False, token: str | None = None) -> PushResult:
    """Upload a converted folder to a Hub repo in one commit (like ``hf upload``).

    The repo is created if needed (``private`` applies only then); ``revision`` is created as
    a branch unless ``create_pr``. An existing README.md on the Hub is kept unless
    ``overwrite_card``.

    Args:
        folder: The output directory to upload.
        repo_id: Target ``org/name``.
        private: Create the repo private (ignored when it exists).
        revision: Target branch (created when missing).
        create_pr: Open a pull request instead of committing to the branch.
        commit_message: Defaults to "Upload converted Swin checkpoint with swin-convert".
        commit_description: Optional longer description.
        dry_run: Only list what would be uploaded; sends nothing that changes the Hub.
        overwrite_card: Replace an existing README.md.
        token: Hub token (None: HF_TOKEN / stored login).

    Returns:
        What was (or would be) pushed.

    Raises:
        UsageError: Bad folder or repo id.
        HubError: Not logged in, forbidden, offline, network failure.
    """
    folder = Path(folder)
    files = _folder_files(folder)
    if not _REPO_ID.fullmatch(repo_id or ""):
        raise UsageError(f"'{repo_id}' is not a valid Hub repo id.", "Write it as org/name.")
    if _offline():
        raise _offline_error(repo_id, "push to")
    if not dry_run:
        _require_login(token, repo_id)
    api = _api(token)
    with _hub_errors(repo_id, revision=revision, action="push to"):
        if not dry_run:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision and not create_pr:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
        card_kept = "README.md" in files and not overwrite_card and _remote_has_card(api, repo_id, revision)
        upload = tuple(f for f in files if not (card_kept and f == "README.md"))
        if dry_run:
            return PushResult(_repo_url(api, repo_id, revision), None, upload, True, card_kept)
        info = _commit(api, folder, repo_id, upload, revision=revision, create_pr=create_pr,
                       message=commit_message, description=commit_description)
    url = info.pr_url or _repo_url(api, repo_id, revision)
    return PushResult(url, info.oid, upload, False, card_kept)


def _commit(api, folder: Path, repo_id: str, files: tuple[str, ...], *, revision, create_pr, message, description):
    """All files in one commit, so a reader never sees half a checkpoint.

    create_commit validates the card, uploads the large files (LFS, or Xet where hf_xet is
    installed), then sends one commit pointing at them: a failed upload commits nothing.
    """
    from huggingface_hub import CommitOperationAdd

    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=_upload_body(folder, f, repo_id)) for f in files]
    with _upload_errors(repo_id):
        return api.create_commit(repo_id, operations, commit_message=message or DEFAULT_COMMIT_MESSAGE,
                                 commit_description=description, revision=revision, create_pr=create_pr)


_LFS_UPLOAD_FAILED = re.compile(r"Error while uploading '(.+)' to the Hub\.")
_XET_STATUS = re.compile(r"HTTP status [a-z ]*error \((\d{3})\b")


@contextmanager
def _upload_errors(repo_id: str):
    """A large-file upload that failed (cut off, timed out, refused by the storage): one line."""
    try:
        yield
    except SwinConvertError:
        raise
    except Exception as exc:
        mapped = _map_upload_exception(exc, repo_id)
        if mapped is None:
            raise
        raise mapped from exc


def _map_upload_exception(exc: Exception, repo_id: str) -> HubError | None:
    from huggingface_hub import errors as hf

    # huggingface_hub wraps an LFS transfer failure as RuntimeError("Error while uploading 'x' ...")
    # from the real cause; hf_xet raises builtin ConnectionError (also for HTTP errors and
    # timeouts). Neither happens after the uploads, so "nothing was committed" holds for both;
    # errors of the commit request itself (httpx, HfHubHTTPError) keep the general mapping.
    match = _LFS_UPLOAD_FAILED.fullmatch(str(exc)) if isinstance(exc, RuntimeError) else None
    cause = exc.__cause__ if match and exc.__cause__ is not None else exc
    from_xet = type(exc).__module__ == "hf_xet" or (
        type(exc).__module__ == "builtins" and isinstance(exc, (ConnectionError, TimeoutError))
        and not getattr(exc, "filename", None))
    if isinstance(exc, ValueError) and str(exc).startswith("LFS batch API returned errors"):
        return HubError(f"The Hub's large-file storage refused a file for '{repo_id}', so nothing was committed.",
                        "Set SWIN_CONVERT_DEBUG=1 to see the Hub's answer; retry in a moment.")
    if not (match or from_xet):
        return None
    what = f"Uploading '{match.group(1)}' to '{repo_id}'" if match else f"The upload to '{repo_id}'"
    status = getattr(getattr(cause, "response", None), "status_code", None)
    if status is None and not isinstance(cause, hf.HfHubHTTPError):   # hf_xet: "HTTP status server error (500 ..."
        found = _XET_STATUS.search(str(cause))
        status = int(found.group(1)) if found else None
    name = type(cause).__name__
    if status is not None:
        how = f"failed with HTTP {status} from the storage"
    elif isinstance(cause, TimeoutError) or "timeout" in name.lower():
        how = f"timed out ({name})"
    elif _is_network_error(cause):
        how = f"was cut off ({name})"   # hf_xet says the same ConnectionError for a timeout
    else:
        how = f"failed ({name})"
    return HubError(f"{what} {how}, so nothing was committed.",
                    "Check your network connection (on a slow link raise SWIN_CONVERT_HUB_TIMEOUT), then run "
                    "the same push again; SWIN_CONVERT_DEBUG=1 shows the full error.")


def _upload_body(folder: Path, name: str, repo_id: str):
    """The file's path; the card as bytes with the repo id filled in (the folder is never edited)."""
    if name != "README.md":
        return str(folder / name)
    from ..core.card import fill_card_repo_id
    text = (folder / name).read_text(encoding="utf-8")
    return fill_card_repo_id(text, repo_id).encode("utf-8")


def _folder_files(folder: Path) -> list[str]:
    """Files to upload, relative and sorted; skips .git, hf's .cache/huggingface and partial files."""
    if not folder.is_dir():
        raise UsageError(f"'{folder}' is not a directory.", "Pass the output directory written by swin-convert.")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and not _ignored(p.relative_to(folder)))
    if not files:
        raise UsageError(f"'{folder}' has no files to push.", "Convert into it first, then push.")
    return files


def _ignored(rel: Path) -> bool:
    parts = rel.parts
    return (parts[0] == ".git" or parts[:2] == (".cache", "huggingface")
            or rel.name.endswith(".incomplete"))


def _require_login(token: str | None, repo_id: str) -> None:
    from huggingface_hub import get_token

    if token is None and get_token() is None:
        raise _login_error(repo_id)


def _remote_has_card(api, repo_id: str, revision: str | None) -> bool:
    """Whether the target already has a README.md; a branch not yet created starts from main."""
    from huggingface_hub import errors as hf

    try:
        info = api.model_info(repo_id, revision=revision)
    except hf.GatedRepoError:
        raise
    except hf.RevisionNotFoundError:
        info = api.model_info(repo_id)
    except hf.RepositoryNotFoundError:
        return False  # a repo we are about to create
    return "README.md" in {s.rfilename for s in info.siblings or []}


def _repo_url(api, repo_id: str, revision: str | None) -> str:
    from urllib.parse import quote

    url = f"{api.endpoint}/{repo_id}"
    return f"{url}/tree/{quote(revision, safe='')}" if revision else url
