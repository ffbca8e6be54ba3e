"""Sharded checkpoints, as transformers and huggingface_hub write them.

A sharded folder holds ``model-00001-of-00003.safetensors`` ... and
``model.safetensors.index.json``: ``{"metadata": {"total_size": N}, "weight_map": {tensor: shard}}``
(``pytorch_model-0000k-of-0000n.bin`` + ``pytorch_model.bin.index.json`` for pickles).

Reading trusts nothing in the index: it must be a JSON object whose ``weight_map`` maps names
to plain file names inside the folder (no path, no ``..``, no symlink out of the folder or, in
the HF cache, out of the repo's blobs); every shard's header is validated as strictly as a
single file's, and each tensor must sit in exactly the shard the index names.

Writing splits as ``huggingface_hub.split_torch_state_dict_into_shards`` does: tensors in
order; a shard is closed when the next tensor would take it past the maximum; a tensor larger
than the maximum gets a shard of its own (placed where it occurs, before the shard still
filling); ``total_size`` is the sum of the tensors' bytes. One shard: a plain ``model.safetensors``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath

from ..core.tensors import MAX_HEADER, DuplicateKey, printable, unique_keys
from ..errors import BadInputError, UsageError

SAFE_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"
INDEX_NAMES = (SAFE_INDEX, BIN_INDEX)
MAX_SHARDS = 99999                      # the 5-digit names hold no more
_UNITS = {"": 1, "B": 1, "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12,
          "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


def is_index(path: str | Path) -> bool:
    """A shard index (``*.safetensors.index.json`` / ``*.bin.index.json``)?"""
    name = Path(path).name
    return name.endswith((".safetensors.index.json", ".bin.index.json"))


# ----------------------------------------------------------------------------------------
# sizes
# ----------------------------------------------------------------------------------------
def parse_size(size: int | str) -> int:
    """Bytes of ``5GB`` (10**9), ``10MiB`` (2**20), ``1.5GB`` or ``123456``.

    Units are bytes and case-insensitive, as huggingface_hub's ``parse_size_to_int`` (which
    transformers' ``save_pretrained`` uses) reads KB/MB/GB/TB; KiB/MiB/GiB/TiB are powers of
    two as in transformers' ``convert_file_size_to_int``.
    """
    if isinstance(size, bool):
        raise _bad_size(size)
    if isinstance(size, int):
        value = size
    else:
        m = _SIZE.fullmatch(str(size))
        if not m or m.group(2).upper() not in _UNITS:
            raise _bad_size(size)
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise _bad_size(size)
    return value


def _bad_size(size) -> UsageError:
    return UsageError(f"--max-shard-size '{size}' is not a size in bytes.",
                      "Write e.g. 5GB (10**9 bytes), 500MB, 10MiB (2**20 bytes) or a plain number of bytes.")


def human_size(n: int) -> str:
    for unit, mult in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if n >= mult:
            return f"{n / mult:.3g} {unit}"
    return f"{n} bytes"


# ----------------------------------------------------------------------------------------
# writing: the split
# ----------------------------------------------------------------------------------------
def split(tensors: dict, max_size: int) -> list[tuple[str, list[str]]]:
    """``[(file name, [tensor names])]`` exactly as huggingface_hub splits a state dict."""
    shards: list[list[str]] = []
    current: list[str] = []
    current_size = 0
    for name, src in tensors.items():
        size = src.nbytes
        if size > max_size:                 # its own shard, the filling one goes on
            shards.append([name])
            continue
        if current_size + size > max_size:
            shards.append(current)
            current, current_size = [], 0
        current.append(name)
        current_size += size
    if current:
        shards.append(current)
    if len(shards) <= 1:
        return [("model.safetensors", list(tensors))]
    n = len(shards)
    return [(f"model-{i + 1:05d}-of-{n:05d}.safetensors", names) for i, names in enumerate(shards)]


def index_json(plan: list[tuple[str, list[str]]], tensors: dict) -> str:
    """``model.safetensors.index.json`` as transformers' ``save_pretrained`` writes it."""
    weight_map = {name: fname for fname, names in plan for name in names}
    index = {"metadata": {"total_size": sum(src.nbytes for src in tensors.values())}, "weight_map": weight_map}
    return json.dumps(index, indent=2, sort_keys=True) + "\n"


def plan_shards(layout, tensors: dict, max_shard_size) -> tuple[list | None, list[str]]:
    """(the shards to write, or None for one ``model.safetensors``; output notes).

    timm's ``local-dir:`` / ``hf-hub:`` loaders read one weights file (a sharded folder would
    load its first shard and miss the rest), so a timm folder that would need shards is refused.
    """
    max_size = parse_size(max_shard_size)
    plan = split(tensors, max_size)
    if len(plan) == 1:
        return None, []
    total = sum(src.nbytes for src in tensors.values())
    if len(plan) > MAX_SHARDS:
        raise UsageError(f"--max-shard-size {max_shard_size} would split the model into {len(plan)} files, "
                         f"more than the {MAX_SHARDS} shard names can number.", "Give a larger --max-shard-size.")
    if getattr(layout, "library_name", "") == "timm":
        raise UsageError(f"--max-shard-size {max_shard_size} would split this {human_size(total)} model into "
                         f"{len(plan)} shards, and timm cannot load a sharded folder (its local-dir: and hf-hub: "
                         "loaders read a single weights file).",
                         f"Drop --max-shard-size or give at least {total} bytes, or write the hf layout "
                         "(transformers loads shards).")
    reader = ("transformers' from_pretrained reads it" if getattr(layout, "library_name", "") == "transformers"
              else "load it with huggingface_hub.load_torch_model(model, OUT); "
                   "safetensors' load_file reads one shard only")
    notes = [f"sharded into {len(plan)} files of at most {human_size(max_size)} ({plan[0][0]} ... + "
             f"{SAFE_INDEX}); {reader}"]
    big = [names[0] for _, names in plan if len(names) == 1 and tensors[names[0]].nbytes > max_size]
    if big:
        notes.append(f"{len(big)} tensor(s) larger than --max-shard-size have a shard of their own "
                     f"({big[0]}{', ...' if len(big) > 1 else ''})")
    return plan, notes


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------
def read_index(path: Path) -> dict[str, str]:
    """The validated ``weight_map`` of an index file: ``{tensor name: shard file name}``."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise BadInputError(f"'{path}' cannot be read ({e.strerror or e}).", "Check the path.") from None
    if size > MAX_HEADER:
        raise _bad(path, f"is {size} bytes, too large for a shard index")
    with open(path, "rb") as f:
        blob = f.read(size + 1)
    try:
        index = json.loads(blob, object_pairs_hook=unique_keys)
    except DuplicateKey as e:
        raise _bad(path, f"lists '{_shown(e.key)}' twice") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise _bad(path, "is not valid JSON") from None
    if not isinstance(index, dict):
        raise _bad(path, "is not a JSON object")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise _bad(path, "has no 'weight_map' object of tensor names to shard files")
    if not isinstance(index.get("metadata", {}), (dict, type(None))):
        raise _bad(path, "has a 'metadata' entry that is not an object")
    for name, shard in weight_map.items():
        if not isinstance(shard, str):
            raise _bad(path, f"maps '{_shown(name)}' to a {type(shard).__name__}, not a shard file name")
        if not plain_file_name(shard):
            raise _bad(path, f"names shard '{_shown(shard)}', which is not a plain file name inside its folder")
    return weight_map


def plain_file_name(name: str) -> bool:
    """A file name with no folder part: no '/', '\\', '..', drive, NUL or leading '~'."""
    return (bool(name) and name.isprintable() and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
            and ":" not in name and not name.startswith("~") and PurePosixPath(name).name == name
            and not os.path.isabs(name) and len(name) <= 255)


def shard_names(weight_map: dict[str, str]) -> list[str]:
    """The shards an index names, in name order (``-00001-of-`` first)."""
    return sorted(set(weight_map.values()))


def shard_path(index_path: Path, shard: str) -> Path:
    """``shard`` beside the index; a symlink may point inside the folder or, in the HF cache,
    into the repo's ``blobs/`` (a snapshot's files are links there), nowhere else."""
    folder = index_path.parent
    path = folder / shard
    if not path.is_file():
        raise _bad(index_path, f"names shard '{_shown(shard)}', which is not in its folder")
    real = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(folder))]
    if folder.parent.name == "snapshots":
        roots.append(Path(os.path.realpath(folder.parent.parent / "blobs")))
    if not any(real.is_relative_to(root) for root in roots):
        raise _bad(index_path, f"names shard '{_shown(shard)}', a link that leads out of its folder")
    return path


def read_sharded(index_path: Path, read_shard) -> tuple[dict, dict, list[Path]]:
    """(metadata of the first shard, {name: source} in shard and file order, shard paths).

    ``read_shard(path) -> (metadata, {name: source})`` reads one shard (strictly).
    """
    weight_map = read_index(index_path)
    names = shard_names(weight_map)
    paths = [shard_path(index_path, shard) for shard in names]
    metadata, tensors, held = {}, {}, {}
    for i, (shard, path) in enumerate(zip(names, paths)):
        meta, found = read_shard(path)
        if i == 0:
            metadata = dict(meta or {})
        held[shard] = list(found)
        tensors.update(sorted(found.items(), key=lambda kv: getattr(kv[1], "offset", 0)))
    check_placement(index_path, weight_map, held)
    return metadata, tensors, paths


def check_placement(label: str, weight_map: dict[str, str], held: dict[str, list[str]]) -> None:
    """Every tensor where the index says and nowhere else (``held``: shard -> tensor names)."""
    seen = set()
    for shard, names in held.items():
        for name in names:
            if weight_map.get(name) is None:
                raise _bad(label, f"does not list '{_shown(name)}', which shard '{_shown(shard)}' holds")
            if weight_map[name] != shard:
                raise _bad(label, f"places '{_shown(name)}' in '{weight_map[name]}', but shard '{shard}' holds it")
            seen.add(name)
    for name, shard in weight_map.items():
        if name not in seen:
            raise _bad(label, f"places '{_shown(name)}' in shard '{shard}', which does not hold it")


def _shown(name: str) -> str:
    """A name for a one-line message: at most 100 characters, control characters escaped."""
    return printable(str(name)[:100])


def _bad(path, what: str) -> BadInputError:
    return BadInputError(f"The shard index '{path}' {what}.",
                         "Download the sharded checkpoint again, or fix its index file.")
