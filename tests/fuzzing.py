"""Mutation fuzzers for the two input formats (used by tests/test_fuzz.py and benchmarks/fuzz.py).

Each case is built from a tiny Swin checkpoint written in the test's own temp folder, mutated
with a seeded generator, then read (``api.inspect``) and, for a share of cases, converted
(``api.remap``). An outcome is ``ok`` (accepted), ``rejected`` (a swin_convert error) or a
crash: any other exception, a case over the time limit, or one whose traced memory passes
the bound. Nothing is shipped: every file is made here.
"""
from __future__ import annotations

import collections
import io
import json
import pickle
import random
import signal
import struct
import time
import tracemalloc
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from swin_convert.errors import SwinConvertError

MEMORY_LIMIT = 64 * 2 ** 20      # traced bytes one case may hold at its peak
TIME_LIMIT = 20                  # seconds one case may take


@dataclass
class FuzzReport:
    counts: collections.Counter = field(default_factory=collections.Counter)
    crashes: list = field(default_factory=list)        # (case, kind, detail)

    @property
    def crash_count(self) -> int:
        return len(self.crashes)

    def summary(self) -> str:
        kinds = collections.Counter(kind for _, kind, _ in self.crashes)
        return (f"{sum(self.counts.values())} cases: {self.counts['ok']} accepted, {self.counts['rejected']} "
                f"rejected, {self.crash_count} crashes" + (f" {dict(kinds)}" if kinds else ""))


def seed_checkpoints(folder: Path) -> tuple[Path, Path]:
    """A tiny official-layout Swin V1 as .safetensors and as .pth (torch.save)."""
    from swin_convert.api import save
    from swin_convert.core.checkpoint import CanonicalCheckpoint
    from swin_convert.core.tensors import TorchSource
    from swin_convert.families.swin.spec import SwinSpec
    from swin_convert.families.swin.testing import random_reference
    spec = SwinSpec(version=1, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=(2, 2), img_size=32,
                    num_classes=3).validate()
    model = random_reference(spec, 0)
    ckpt = CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()})
    folder.mkdir(parents=True, exist_ok=True)
    st, pth = folder / "seed.safetensors", folder / "seed.pth"
    save(ckpt, "official", st, overwrite=True)
    save(ckpt, "official", pth, overwrite=True)
    return st, pth


# ----------------------------------------------------------------------------------------
# safetensors header mutations
# ----------------------------------------------------------------------------------------
_RAW = "\x00raw:"     # a JSON value spliced in as text (huge numbers, deep nesting)


def _odd_value(rng: random.Random, like=None):
    choices = [True, False, None, 0.0, 1.5, -1, 0, 1, 2 ** 31, 2 ** 63, 2 ** 64 + 3, "abc", "", [], {}, [1, 2],
               {"a": 1}, "F32", "BF16", "X99", [True], [None], [-3], [1.0], [[4]],
               _RAW + "1" * rng.choice([25, 400, 5000]), _RAW + "[" * 20000 + "]" * 20000,
               _RAW + "1e400", _RAW + "NaN", _RAW + "-Infinity", _RAW + '{"a":' * 3000 + "1" + "}" * 3000]
    if isinstance(like, int) and not isinstance(like, bool):
        choices += [like + rng.choice([-9, -4, -1, 1, 4, 8, 1 << 20]), -like, like * 2]
    return rng.choice(choices)


def _dump(value) -> str:
    """JSON text of ``value`` with the _RAW strings spliced in as raw JSON."""
    splices = []

    def walk(v):
        if isinstance(v, str) and v.startswith(_RAW):
            splices.append(v[len(_RAW):])
            return f"\x01SPLICE{len(splices) - 1}\x01"
        if isinstance(v, dict):
            return {walk_key(k): walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    def walk_key(k):
        return k
    text = json.dumps(walk(value), separators=(",", ":"))
    for i, raw in enumerate(splices):
        text = text.replace(json.dumps(f"\x01SPLICE{i}\x01"), raw, 1)
    return text


def mutate_header(header: dict, rng: random.Random) -> dict:
    header = json.loads(json.dumps(header))
    names = [k for k in header if k != "__metadata__"]
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        name = rng.choice(names)
        entry = header.get(name)
        if not isinstance(entry, dict):
            header[name] = _odd_value(rng)
            continue
        if op < 0.35:      # one shape dimension or offset
            key = rng.choice(["shape", "data_offsets"])
            seq = entry.get(key)
            if isinstance(seq, list) and seq:
                i = rng.randrange(len(seq))
                seq[i] = _odd_value(rng, seq[i])
            else:
                entry[key] = _odd_value(rng)
        elif op < 0.55:    # a whole field
            entry[rng.choice(["shape", "data_offsets", "dtype"])] = _odd_value(rng)
        elif op < 0.65:    # a field dropped, or one added
            if rng.random() < 0.5:
                entry.pop(rng.choice(["shape", "data_offsets", "dtype"]), None)
            else:
                entry[rng.choice(["extra", "shape2"])] = _odd_value(rng)
        elif op < 0.75:    # the metadata
            meta = header.get("__metadata__")
            if isinstance(meta, dict) and meta and rng.random() < 0.6:
                key = rng.choice(sorted(meta))
                meta[key] = _odd_value(rng) if rng.random() < 0.4 else _mutate_text(meta[key], rng)
            else:
                header["__metadata__"] = _odd_value(rng)
        elif op < 0.85:    # a tensor renamed, removed, or its shape changed consistently
            r = rng.random()
            if r < 0.3:
                header[name + rng.choice([".x", "", "_"])] = header.pop(name)
            elif r < 0.5:
                header.pop(name)
                names.remove(name)
                if not names:
                    break
            else:
                shape = entry.get("shape")
                if isinstance(shape, list):
                    entry["shape"] = list(reversed(shape)) if rng.random() < 0.5 else shape + [1]
        else:              # the dtype
            entry["dtype"] = rng.choice(["F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "F64", "f32", "Q4"])
    return header


def _mutate_text(text, rng: random.Random) -> str:
    if not isinstance(text, str) or not text:
        return "x"
    i = rng.randrange(len(text))
    return text[:i] + rng.choice(['"', "{", "]", "1", "-", "null", "true", "0.5", ""]) + text[i + 1:]


def safetensors_case(seed_file: Path, rng: random.Random) -> bytes:
    blob = seed_file.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
    r = rng.random()
    if r < 0.8:
        text = _dump(mutate_header(header, rng)).encode()
    else:              # bytes of the header text itself
        text = bytearray(blob[8:8 + n])
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(text))
            text[i] = rng.choice(b'{}[]",:0123456789-etrnul \x00\xff')
        text = bytes(text)
    length = len(text)
    if rng.random() < 0.05:
        length = rng.choice([0, 1, len(text) - 1, len(text) + 8, 2 ** 32, 2 ** 63])
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)]
    return struct.pack("<Q", length) + text + data


# ----------------------------------------------------------------------------------------
# .pth mutations
# ----------------------------------------------------------------------------------------
def rezip(src: bytes, replace: dict | None = None, drop: tuple = ()) -> bytes:
    """The zip ``src`` written again (stored members, correct CRCs), members replaced or dropped."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = (replace or {}).get(info.filename)
            zout.writestr(info.filename, zin.read(info.filename) if data is None else data)
    return out.getvalue()


def pickle_name(blob: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return next(n for n in z.namelist() if n.endswith("data.pkl"))


_OPCODES = [b"r\x00\x00\x00\x04", b"r\xff\xff\xff\x7f", b"q\xff", b"h\x07", b"j\x00\x00\x00\x10", b"(", b"t",
            b"0", b"2", b"s", b"u", b"e", b"a", b"}", b"]", b")", b"N", b"\x88", b"J\xff\xff\xff\xff",
            b"K\x00", b"M\xff\xff", b"\x8a\x09" + b"\xff" * 9, b"X\xff\xff\xff\x0f", b"B\x00\x00\x00\x10",
            b"\x95\xff\xff\xff\xff\x00\x00\x00\x00", b"c__builtin__\neval\n", b"ctorch\nFloatStorage\n",
            b"ctorch._utils\n_rebuild_tensor_v2\n", b"Q", b"R", b"b", b"\x94", b"."]


def _mutate_pickle(pkl: bytes, rng: random.Random) -> bytes:
    data = bytearray(pkl)
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        i = rng.randrange(2, len(data))
        if r < 0.45:
            data[i] = rng.randrange(256)
        elif r < 0.75:
            data[i:i] = rng.choice(_OPCODES)
        elif r < 0.9:
            del data[i:i + rng.randint(1, 8)]
        else:   # a small integer argument turned into a large or negative one
            j = data.find(b"K", i)
            if j > 0:
                data[j:j + 2] = rng.choice([b"J\xfc\xff\xff\xff", b"J\x00\x00\x00\x40", b"M\xff\xff"])
    return bytes(data)


def pth_case(seed_file: Path, rng: random.Random) -> bytes:
    blob = seed_file.read_bytes()
    r = rng.random()
    if r < 0.6:        # the pickle, with correct CRCs (reaches the unpickler)
        name = pickle_name(blob)
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            pkl = z.read(name)
        return rezip(blob, {name: _mutate_pickle(pkl, rng)})
    if r < 0.7:        # a member dropped
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            names = z.namelist()
        return rezip(blob, drop=(rng.choice(names),))
    data = bytearray(blob)   # raw bytes: headers, central directory, CRCs, data
    if r < 0.8:
        return bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randint(1, 6)):
        region = rng.random()
        i = rng.randrange(len(data)) if region < 0.5 else rng.randrange(max(0, len(data) - 400), len(data))
        data[i] = rng.randrange(256)
    return bytes(data)


# ----------------------------------------------------------------------------------------
# running cases
# ----------------------------------------------------------------------------------------
class _Timeout(BaseException):
    pass


class _BadOutput(Exception):
    pass


def _check_output(out: Path) -> None:
    """An accepted conversion must give a file the safetensors library itself opens."""
    from safetensors import safe_open
    try:
        with safe_open(str(out), "np") as f:
            for key in f.keys():
                f.get_slice(key).get_shape()
    except Exception as e:  # noqa: BLE001
        raise _BadOutput(f"{type(e).__name__}: {e}") from None


def _alarm(*_):
    raise _Timeout()


def run_case(path: Path, out_dir: Path, convert: bool, report: FuzzReport, case: str,
             trace_memory: bool = True) -> None:
    from swin_convert import api
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    if trace_memory:
        tracemalloc.start()
    start = time.monotonic()
    try:
        api.inspect(path)
        if convert:
            out = out_dir / "out.safetensors"
            api.remap(path, "timm", out, overwrite=True)
            _check_output(out)
        outcome = "ok"
    except SwinConvertError as e:
        outcome = "rejected"
        if "\n" in e.message or "\n" in (e.hint or ""):
            report.crashes.append((case, "multi-line error", e.message[:200]))
    except _BadOutput as e:
        outcome = "crash"
        report.crashes.append((case, "unreadable output", str(e)[:200]))
    except _Timeout:
        outcome = "crash"
        report.crashes.append((case, "hang", f"over {TIME_LIMIT} s"))
    except Exception as e:  # noqa: BLE001 - that is what is being counted
        outcome = "crash"
        report.crashes.append((case, type(e).__name__, str(e)[:200]))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if peak > MEMORY_LIMIT:
                report.crashes.append((case, "memory", f"peak {peak / 2 ** 20:.0f} MB"))
    report.counts[outcome] += 1
    _ = time.monotonic() - start


def fuzz(kind: str, count: int, workdir: Path, seed: int = 0, convert_every: int = 5,
         trace_memory: bool = True, progress=None, save_crashes: Path | None = None) -> FuzzReport:
    """Run ``count`` mutated ``kind`` ("safetensors" or "pth") cases; returns the report."""
    st, pth = seed_checkpoints(workdir / "seed")
    rng = random.Random(seed)
    report = FuzzReport()
    target = workdir / ("case.safetensors" if kind == "safetensors" else "case.pth")
    for i in range(count):
        blob = safetensors_case(st, rng) if kind == "safetensors" else pth_case(pth, rng)
        target.write_bytes(blob)
        before = report.crash_count
        run_case(target, workdir, convert=i % convert_every == 0, report=report, case=f"{kind}#{i}",
                 trace_memory=trace_memory)
        if save_crashes is not None and report.crash_count > before:
            save_crashes.mkdir(parents=True, exist_ok=True)
            (save_crashes / f"{kind}-{i}{target.suffix}").write_bytes(blob)
        if progress and (i + 1) % progress == 0:
            print(f"  {kind}: {i + 1}/{count}  {report.summary()}", flush=True)
    return report


__all__ = ["fuzz", "FuzzReport", "seed_checkpoints", "rezip", "pickle_name", "pickle", "MEMORY_LIMIT"]
