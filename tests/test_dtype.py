"""``--dtype fp32|fp16|bf16`` on remap and upscale: casts while streaming (swin_convert.core.cast).

Casts are compared bit for bit with torch's ``Tensor.to`` (every 16-bit pattern, random 32-bit
patterns, and the edge values: ties, subnormals, fp16 overflow, inf, NaN), on both implementations
(the compiled kernels of core/_castc.c and numpy's), which must also agree with each other bit for
bit, NaN payloads included; outputs are loaded strictly by transformers / timm and compared with
the fp32 source's logits.
"""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import run_cli
from runtimes import fixed_input, logits, save_source, small_spec
from swin_convert import api
from swin_convert.check import engine as chk
from swin_convert.core import cast as C
from swin_convert.core import tensors as T
from swin_convert.core.checkpoint import CanonicalCheckpoint
from swin_convert.core.tensors import ArraySource, FileSlice, TorchSource, read_safetensors_header, write_safetensors
from swin_convert.core.torch_io import to_torch
from swin_convert.errors import UsageError
from swin_convert.families.swin.testing import random_reference
from test_errors import assert_clean_error

TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
UINT = {8: torch.int64, 4: torch.int32, 2: torch.int16}


# ----------------------------------------------------------------------------------------
# the casts, bit for bit against torch
# ----------------------------------------------------------------------------------------
def f32_bits(*words) -> np.ndarray:
    return np.array(words, dtype=np.uint32)


EDGE_F32 = f32_bits(
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000,          # +-0, +-inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF812345, 0x7FFFFFFF,  # NaNs: quiet, signalling, payloads
    0x00000001, 0x807FFFFF, 0x00800000,                      # fp32 subnormals, smallest normal
    0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,          # bf16 ties: to even (down, up), above, below
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000,                      # fp32 max (rounds to bf16 inf), a tie at the top
    0x477FE000, 0x477FF000, 0x477FEFFF, 0xC77FF000,          # 65504 (fp16 max), 65520 (ties to inf), just below
    0x47800000, 0x33800000, 0x33000000, 0x33000001,          # 65536 (fp16 inf); fp16 subnormal min, its half-tie
    0x387FC000, 0x38800000, 0x3A800000,                      # fp16 subnormal / normal boundary
)


def float32_samples(n: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32)   # every class, NaNs included
    spread = (rng.standard_normal(n) * 10.0 ** rng.uniform(-44, 38, n)).astype(np.float32).view(np.uint32)
    return np.concatenate([EDGE_F32, random_bits, spread])


def samples(dtype: str) -> np.ndarray:
    """Raw bits of ``dtype`` (unsigned): every pattern for 16-bit types."""
    if dtype in ("F16", "BF16"):
        return np.arange(2 ** 16, dtype=np.uint16)
    if dtype == "F64":
        rng = np.random.default_rng(1)
        x = rng.standard_normal(100_000) * 10.0 ** rng.uniform(-50, 45, 100_000)
        with np.errstate(invalid="ignore"):
            x = np.concatenate([x, EDGE_F32.view(np.float32).astype(np.float64), [np.nan, -np.inf, 1e-320]])
        return x.view(np.uint64)
    return float32_samples()


def torch_cast(bits: np.ndarray, src: str, dst: str) -> np.ndarray:
    width = bits.dtype.itemsize
    t = torch.from_numpy(bits.view(np.int64 if width == 8 else np.int32 if width == 4 else np.int16).copy())
    out = t.view(TORCH[src]).to(TORCH[dst])
    out_w = torch.empty((), dtype=TORCH[dst]).element_size()
    return out.view(UINT[out_w]).numpy().view({8: np.uint64, 4: np.uint32, 2: np.uint16}[out_w])


def file_source(bits: np.ndarray, dtype: str, folder: Path) -> FileSlice:
    """The raw bits as one tensor of a safetensors file (what remap reads)."""
    path = folder / f"{dtype}.safetensors"
    header = json.dumps({"t": {"dtype": dtype, "shape": [bits.size], "data_offsets": [0, bits.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + bits.tobytes())
    return read_safetensors_header(path)[1]["t"]


def ours(bits: np.ndarray, src: str, dst: str, folder: Path) -> np.ndarray:
    source = file_source(bits, src, folder)
    out = C.cast(source, dst)
    assert (out.dtype, out.shape, out.nbytes) == (dst, source.shape, source.shape[0] * np.dtype(
        {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[dst]).itemsize)
    return np.frombuffer(out.tobytes(), dtype={4: np.uint32, 2: np.uint16}[4 if dst == "F32" else 2])


def assert_same_bits(got: np.ndarray, want: np.ndarray, dst: str) -> None:
    as_float = lambda b: torch.from_numpy(b.view(np.int32 if b.dtype.itemsize == 4 else np.int16).copy()).view(TORCH[dst]).float()  # noqa: E731
    nan_want, nan_got = torch.isnan(as_float(want)).numpy(), torch.isnan(as_float(got)).numpy()
    assert np.array_equal(nan_got, nan_want), "NaN must stay NaN (and nothing else becomes NaN)"
    bad = np.flatnonzero((got != want) & ~nan_want)
    assert bad.size == 0, f"{bad.size} elements differ from torch, e.g. {[hex(int(got[i])) for i in bad[:4]]} " \
                          f"vs {[hex(int(want[i])) for i in bad[:4]]}"


PAIRS = [("F32", "BF16"), ("F32", "F16"), ("F16", "F32"), ("BF16", "F32"), ("F16", "BF16"), ("BF16", "F16"),
         ("F64", "F32"), ("F64", "F16"), ("F64", "BF16")]
BACKENDS = ["kernels", "numpy"]


def use_backend(monkeypatch, backend: str) -> None:
    """Cast file ranges with the compiled kernels (skipped where they are not built) or with numpy."""
    if backend == "numpy":
        monkeypatch.setattr(C, "_KERNELS", None)
    elif C.kernels() is None:
        pytest.skip("swin_convert.core._castc is not built here (no C compiler): numpy casts")


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    use_backend(monkeypatch, request.param)
    return request.param


@pytest.mark.parametrize("src,dst", PAIRS)
def test_cast_is_bit_exact_with_torch(src, dst, tmp_path, backend):
    bits = samples(src)
    assert_same_bits(ours(bits, src, dst, tmp_path), torch_cast(bits, src, dst), dst)


@pytest.mark.parametrize("src,dst", PAIRS)
def test_kernels_and_numpy_make_the_same_bits(src, dst, tmp_path, monkeypatch):
    """One checkpoint, one output, whichever implementation an install has: NaN payloads included."""
    use_backend(monkeypatch, "kernels")
    bits = samples(src)
    compiled = ours(bits, src, dst, tmp_path)
    monkeypatch.setattr(C, "_KERNELS", None)
    with_numpy = ours(bits, src, dst, tmp_path)
    differ = np.flatnonzero(compiled != with_numpy)
    assert differ.size == 0, [(hex(int(bits[i])), hex(int(compiled[i])), hex(int(with_numpy[i]))) for i in differ[:4]]


def test_kernels_are_built_where_there_is_a_compiler():
    """`pip install` builds core/_castc.c wherever it finds a C compiler (optional elsewhere): a
    broken build must not pass unnoticed as the slower numpy path."""
    import shutil
    import sysconfig
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not (shutil.which(cc) or shutil.which("cc")):
        pytest.skip("no C compiler on this machine: numpy casts")
    assert C.kernels() is not None, "swin_convert.core._castc was not built (see `make install`'s output)"


def test_kernels_refuse_what_they_cannot_do():
    k = C.kernels()
    if k is None:
        pytest.skip("swin_convert.core._castc is not built here")
    src, dst = bytes(8), bytearray(4)
    k.convert(src, "F32", dst, "BF16")
    for args, what in [((src, "F32", bytearray(2), "BF16"), "need 4 bytes"),      # too small
                       ((src, "F32", bytearray(6), "BF16"), "need 4 bytes"),      # too large
                       ((bytes(7), "F32", dst, "BF16"), "whole F32"),             # not whole elements
                       ((src, "F32", dst, "F32"), "no cast"), ((src, "I32", dst, "BF16"), "no cast"),
                       ((src, "F32", bytearray(16), "F64"), "no cast")]:
        with pytest.raises(ValueError, match=what):
            k.convert(*args)
    with pytest.raises(TypeError):
        k.convert(src, "F32", bytes(4), "BF16")                                  # read-only output


@pytest.mark.parametrize("src,dst", [("F32", "BF16"), ("BF16", "F16"), ("F16", "F32")])
def test_torch_and_file_sources_cast_alike(src, dst, tmp_path):
    """A .pth tensor is cast by torch in chunks, a file range by numpy: the same bits (NaN stays NaN)."""
    bits = samples(src)
    t = torch.from_numpy(bits.view(np.int32 if bits.dtype.itemsize == 4 else np.int16).copy()).view(TORCH[src])
    via_torch = np.frombuffer(C.cast(TorchSource(t), dst).tobytes(), np.uint32 if dst == "F32" else np.uint16)
    assert_same_bits(via_torch, ours(bits, src, dst, tmp_path), dst)


def test_edge_values_behave_as_torch_says():
    f = EDGE_F32.view(np.float32)
    bf = np.frombuffer(C.cast(ArraySource(f), "BF16").tobytes(), np.uint16)
    half = np.frombuffer(C.cast(ArraySource(f), "F16").tobytes(), np.float16)
    assert list(bf[12:16]) == [0x3F80, 0x3F82, 0x3F81, 0x3F80]     # ties to even, otherwise nearest
    assert bf[16] == 0x7F80                                        # fp32 max rounds to bf16 inf, as torch
    assert np.isinf(half[20]) and half[19] == 65504 and np.isinf(half[22]) and half[22] < 0   # fp16 overflow -> inf
    assert np.isnan(half[4:9]).all() and all((b & 0x7F80) == 0x7F80 and b & 0x7F for b in bf[4:9])   # NaN stays NaN
    assert half[21] == 65504 and np.isinf(half[23])                # just below the tie: 65504; 65536: inf
    assert half[24] == np.float16(2 ** -24) and half[25] == 0 and half[26] == np.float16(2 ** -24)   # subnormal tie


def test_chunked_file_cast_matches_whole(tmp_path, monkeypatch, backend):
    """A file range is read CAST_CHUNK elements at a time: chunk edges change nothing."""
    bits = float32_samples(10_007)
    path = tmp_path / "t.safetensors"
    write_safetensors(path, [("a", ArraySource(np.arange(3, dtype=np.int64))),
                             ("w", ArraySource(bits.view(np.float32).reshape(-1, 1)))], {})
    _, src = read_safetensors_header(path)
    monkeypatch.setattr(C, "CAST_CHUNK", 1000)
    for dst in ("BF16", "F16"):
        got = np.frombuffer(C.cast(src["w"], dst).tobytes(), np.uint16)
        assert_same_bits(got, torch_cast(bits, "F32", dst), dst)


@pytest.mark.parametrize("dst", ["BF16", "F16"])
def test_pieces_written_by_threads_are_the_sequential_bytes(tmp_path, monkeypatch, backend, dst):
    """A cast file range reaches a file as pieces (pread, convert, pwrite) made by two threads: the
    bytes are those of the cast made in order, at unaligned offsets and chunk edges too."""
    bits = float32_samples(10_007)
    path = tmp_path / "t.safetensors"
    write_safetensors(path, [("odd", ArraySource(np.arange(3, dtype=np.float16))),      # the rest: unaligned
                             ("w", ArraySource(bits.view(np.float32))),
                             ("i", ArraySource(np.arange(5, dtype=np.int64))),
                             ("v", ArraySource(bits[:999].view(np.float32)))], {})
    _, src = read_safetensors_header(path)
    assert src["w"].offset % 4, "the test wants a tensor at an unaligned offset"
    monkeypatch.setattr(C, "CAST_CHUNK", 1000)
    monkeypatch.setattr(T, "FILLERS", 2)
    items = [(k, C.cast(v, dst)) for k, v in src.items()]
    assert all(v.pieces() for _, v in items if isinstance(v, C.CastSource)) and len(items[1][1].pieces()) == -(-bits.size // 1000)
    out = tmp_path / "out.safetensors"
    write_safetensors(out, items, {})
    _, back = read_safetensors_header(out)
    for k, v in items:
        assert back[k].dtype == v.dtype and back[k].tobytes() == v.tobytes(), k
    assert_same_bits(np.frombuffer(back["w"].tobytes(), np.uint16), torch_cast(bits, "F32", dst), dst)


def test_fill_pieces_runs_two_threads_and_stops_on_the_first_error(tmp_path):
    """Two threads fill at once (a barrier only both can pass); an error stops the other after its
    piece and is raised in the caller's thread once both have stopped."""
    import threading
    barrier, seen = threading.Barrier(2, timeout=30), []

    def together(files, fd, pos):
        barrier.wait()
        seen.append(threading.get_ident())
    with open(tmp_path / "f", "wb") as f:
        T.fill_pieces(f.fileno(), [(0, together), (1, together)], workers=2)
    assert len(set(seen)) == 2

    done = []

    def fill(files, fd, pos):
        if pos == 3:
            raise OSError(28, "No space left on device")
        done.append(pos)
    with open(tmp_path / "g", "wb") as f, pytest.raises(OSError, match="No space"):
        T.fill_pieces(f.fileno(), [(p, fill) for p in range(1000)], workers=2)
    alive = [t for t in threading.enumerate() if t.name.startswith("swin-convert-fill")]
    assert len(done) < 999 and not alive, "pieces went on after the error"


def test_a_file_cut_short_while_pieces_are_read_is_one_bad_input_error(tmp_path):
    from swin_convert.errors import BadInputError
    path = tmp_path / "t.safetensors"
    write_safetensors(path, [("w", ArraySource(np.ones(300_000, dtype=np.float32)))], {})
    _, src = read_safetensors_header(path)
    with open(path, "r+b") as f:          # cut after the header was read (a download still being written)
        f.truncate(path.stat().st_size - 5000)
    with pytest.raises(BadInputError, match="ended early") as info:
        write_safetensors(tmp_path / "out.safetensors", [("w", C.cast(src["w"], "BF16"))], {})
    assert "\n" not in str(info.value)


def test_non_float_and_same_dtype_are_never_touched(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors(path, [("idx", ArraySource(np.arange(49, dtype=np.int64))),
                             ("mask", ArraySource(np.ones(4, dtype=np.bool_))),
                             ("w", ArraySource(np.ones(4, dtype=np.float32)))], {})
    _, src = read_safetensors_header(path)
    for dst in ("F32", "F16", "BF16"):
        assert C.cast(src["idx"], dst) is src["idx"] and C.cast(src["mask"], dst) is src["mask"]
    assert C.cast(src["w"], "F32") is src["w"]             # same dtype: the file range itself (a byte copy)
    assert isinstance(C.cast(src["w"], "BF16"), C.CastSource)
    back = C.cast(C.cast(src["w"], "BF16"), "F32")
    assert back.dtype == "F32" and np.array_equal(np.frombuffer(back.tobytes(), np.float32), np.ones(4))


@pytest.mark.parametrize("name", ["fp32", "fp16", "bf16", "BF16", "bfloat16", "float16"])
def test_dtype_names(name):
    assert C.parse_dtype(name) in ("F32", "F16", "BF16")


@pytest.mark.parametrize("name", ["int8", "fp8", "float64", "", "bf 16"])
def test_unknown_dtype_is_a_usage_error(name):
    with pytest.raises(UsageError) as info:
        C.parse_dtype(name)
    assert "\n" not in str(info.value) and "fp32, fp16 or bf16" in info.value.hint


def test_cast_memory_is_bounded(tmp_path):
    """A 64 MB fp32 tensor cast to bf16 while written: peak traced memory far below its size."""
    n = 16 * 2 ** 20
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as f:          # written without holding it: 16 chunks of 4 MB
        header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
        header += b" " * (-len(header) % 8)
        f.write(len(header).to_bytes(8, "little") + header)
        rng = np.random.default_rng(0)
        for _ in range(16):
            f.write(rng.standard_normal(n // 16, dtype=np.float32).tobytes())
    _, src = read_safetensors_header(path)
    out = tmp_path / "out.safetensors"
    tracemalloc.start()
    try:
        write_safetensors(out, [("w", C.cast(src["w"], "BF16"))], {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20, f"peak {peak / 2 ** 20:.1f} MB for a 64 MB tensor"
    with safe_open(str(out), "pt") as f:
        got = f.get_slice("w")[:2 ** 20]
    with safe_open(str(path), "pt") as f:
        want = f.get_slice("w")[:2 ** 20].to(torch.bfloat16)
    assert got.dtype == torch.bfloat16 and torch.equal(got.view(torch.int16), want.view(torch.int16))


# ----------------------------------------------------------------------------------------
# remap / upscale --dtype, end to end
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timm_v1(tmp_path_factory):
    spec = small_spec(1)
    path, model = save_source("timm", spec, tmp_path_factory.mktemp("dtype-src"))
    return spec, path, model


@pytest.fixture(scope="module")
def hf_bf16(timm_v1, tmp_path_factory):
    _, path, _ = timm_v1
    out = tmp_path_factory.mktemp("dtype-out") / "hf-bf16"
    r = run_cli("remap", "timm", "hf", path, "-o", out, "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    return out


def tensors(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_remap_bf16_loads_strictly_in_transformers_and_matches_fp32(timm_v1, hf_bf16):
    import transformers
    spec, _, model = timm_v1
    hf, info = transformers.AutoModelForImageClassification.from_pretrained(str(hf_bf16), output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    assert hf.dtype == torch.bfloat16              # the config's dtype is what transformers loads
    x = fixed_input(spec, 8)
    want, got = logits(model, x), logits(hf.float(), x)
    atol, rtol = chk.WEIGHT_TOLERANCES["BF16"]
    assert (got - want).abs().max() > 1e-4                          # the cast did something
    assert ((got - want).abs() <= atol + rtol * want.abs()).all()


def test_cast_is_recorded_in_metadata_config_and_card(hf_bf16):
    t, meta = tensors(hf_bf16 / "model.safetensors")
    assert {v.dtype for v in t.values()} == {torch.bfloat16}
    assert meta["swin_convert.dtype"] == "bf16" and meta["swin_convert.source_dtype"] == "fp32"
    cfg = json.loads((hf_bf16 / "config.json").read_text())
    assert cfg["dtype"] == cfg["torch_dtype"] == "bfloat16"
    card = (hf_bf16 / "README.md").read_text()
    assert "dtype: `BF16` (cast from fp32 to bf16 by swin-convert)" in card
    assert "--dtype bf16" in card                                   # the reproduce command


def test_timm_config_has_no_dtype_and_values_are_torchs(timm_v1, tmp_path):
    _, path, _ = timm_v1
    api.remap(path, "timm", tmp_path / "t", dtype="fp16")
    assert "dtype" not in json.loads((tmp_path / "t" / "config.json").read_text())
    got, meta = tensors(tmp_path / "t" / "model.safetensors")
    src, _ = tensors(path)
    assert meta["swin_convert.dtype"] == "fp16"
    for k, v in got.items():
        want = src[k].to(torch.float16) if src[k].is_floating_point() else src[k]
        assert v.dtype == want.dtype and torch.equal(v.view(torch.uint8), want.contiguous().view(torch.uint8)), k


def test_bf16_round_trip_is_bit_identical(hf_bf16, tmp_path):
    r = run_cli("remap", "hf", "timm", hf_bf16, "-o", tmp_path / "timm", "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    r = run_cli("remap", "timm", "hf", tmp_path / "timm", "-o", tmp_path / "hf", "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    first, _ = tensors(hf_bf16 / "model.safetensors")
    again, meta = tensors(tmp_path / "hf" / "model.safetensors")
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k].view(torch.int16), again[k].view(torch.int16)) for k in first)
    assert meta["swin_convert.source_dtype"] == "bf16"
    assert "cast from" not in (tmp_path / "hf" / "README.md").read_text()     # nothing was cast


def test_integer_buffers_are_never_cast(tmp_path):
    """Official layout with its buffers: index tensors stay int64; float masks are cast."""
    spec = small_spec(1)
    model = random_reference(spec, 3)
    src = tmp_path / "official.safetensors"
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}), "official", src)
    api.remap(src, "official", tmp_path / "out.safetensors", dtype="bf16")
    before, _ = tensors(src)
    after, _ = tensors(tmp_path / "out.safetensors")
    ints = [k for k, v in before.items() if not v.is_floating_point()]
    assert ints and all(k.endswith("relative_position_index") for k in ints)
    for k in ints:
        assert after[k].dtype == before[k].dtype and torch.equal(after[k], before[k])
    assert all(after[k].dtype == torch.bfloat16 for k in before if k not in ints)


def test_pth_output_is_cast(timm_v1, tmp_path):
    import timm
    from swin_convert.families.swin.layouts.timm import architecture, model_args
    spec, path, model = timm_v1
    api.remap(path, "timm", tmp_path / "out.pth", dtype="bf16")
    sd = torch.load(tmp_path / "out.pth", weights_only=True)
    sd = sd.get("state_dict", sd.get("model", sd))
    assert {v.dtype for v in sd.values() if v.is_floating_point()} == {torch.bfloat16}
    m = timm.create_model(architecture(spec), pretrained=False, **model_args(spec)).eval()
    m.load_state_dict(sd, strict=True)
    x = fixed_input(spec, 4)
    want, got = logits(model, x), logits(m, x)
    atol, rtol = chk.WEIGHT_TOLERANCES["BF16"]
    assert ((got - want).abs() <= atol + rtol * want.abs()).all()


def test_check_picks_the_bf16_weight_tolerance(timm_v1, hf_bf16):
    _, path, _ = timm_v1
    report = api.check(hf_bf16, path, runtimes=("reference", "transformers"), num_samples=8)
    assert (report.atol, report.rtol) == chk.WEIGHT_TOLERANCES["BF16"]
    assert "bf16 weights" in report.tolerance and any("bf16 weights" in n for n in report.notes)
    assert report.passed, report.summary()
    assert report.worst("max_abs_diff") > 1e-4                    # computed in fp32 from rounded weights
    strict = api.check(hf_bf16, path, runtimes=("reference",), num_samples=8, atol=1e-4, rtol=1e-3)
    assert not strict.passed and "--atol and --rtol as given" in strict.tolerance
    own = api.check(hf_bf16, runtimes=("transformers",), num_samples=4)   # against its own weights: exact
    assert (own.atol, own.rtol) == chk.DEFAULT_TOLERANCES["fp32"] and own.passed


def test_check_cli_says_which_tolerance(timm_v1, hf_bf16):
    _, path, _ = timm_v1
    r = run_cli("check", hf_bf16, "--against", path, "--num-samples", "4")
    assert r.returncode == 0, r.stderr
    assert "tolerance atol 0.15 + rtol 0.15*|ref|: the default for bf16 weights" in r.stdout


def test_a_corrupted_bf16_candidate_still_fails(timm_v1, hf_bf16, tmp_path):
    _, path, _ = timm_v1
    bad = tmp_path / "bad"
    bad.mkdir()
    t, meta = tensors(hf_bf16 / "model.safetensors")
    for k in [k for k in t if k.endswith("attention.self.query.weight")]:   # q and k swapped in every block
        kk = k.replace("query", "key")
        t[k], t[kk] = t[kk], t[k]
    from safetensors.torch import save_file
    save_file(t, str(bad / "model.safetensors"), metadata=meta)
    for name in ("config.json", "preprocessor_config.json"):
        (bad / name).write_text((hf_bf16 / name).read_text())
    report = api.check(bad, path, runtimes=("reference",), num_samples=8)
    assert (report.atol, report.rtol) == chk.WEIGHT_TOLERANCES["BF16"] and not report.passed


def test_fp16_weights_get_the_fp16_tolerance(timm_v1, tmp_path):
    _, path, _ = timm_v1
    api.remap(path, "timm", tmp_path / "t16", dtype="fp16")
    report = api.check(tmp_path / "t16", path, runtimes=("timm",), num_samples=8)
    assert (report.atol, report.rtol) == chk.WEIGHT_TOLERANCES["F16"] and report.passed


def test_upscale_computes_in_fp32_then_casts(tmp_path):
    spec = small_spec(1)
    model = random_reference(spec, 5)
    src = tmp_path / "src.safetensors"
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}), "timm", src)
    api.upscale(src, tmp_path / "fp32.safetensors", window=8, res=128)
    r = run_cli("upscale", src, "--window", "8", "--res", "128", "-o", tmp_path / "bf16.safetensors", "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    want, _ = tensors(tmp_path / "fp32.safetensors")
    got, meta = tensors(tmp_path / "bf16.safetensors")
    assert meta["swin_convert.dtype"] == "bf16" and meta["swin_convert.source_dtype"] == "fp32"
    assert meta["swin_convert.windows_after"] and meta["swin_convert.transfer_method"]   # the transfer's records kept
    for k, v in want.items():
        w = v.to(torch.bfloat16) if v.is_floating_point() else v
        assert got[k].dtype == w.dtype and torch.equal(got[k].view(torch.uint8), w.contiguous().view(torch.uint8)), k


def test_upscale_of_a_bf16_source_to_fp32_keeps_the_fp32_transfer(tmp_path):
    """Widening first is exact, so the resized tables are not rounded back to bf16."""
    spec = small_spec(1)
    model = random_reference(spec, 6)
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    src = tmp_path / "src.safetensors"
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in state.items()}), "timm", src)
    src32 = tmp_path / "src32.safetensors"
    api.remap(src, "timm", src32, dtype="fp32")
    api.upscale(src32, tmp_path / "want.safetensors", window=8, res=128)
    api.upscale(src, tmp_path / "got.safetensors", window=8, res=128, dtype="fp32")
    want, _ = tensors(tmp_path / "want.safetensors")
    got, meta = tensors(tmp_path / "got.safetensors")
    assert meta["swin_convert.source_dtype"] == "bf16"
    assert all(torch.equal(got[k], want[k]) for k in want)
    table = next(k for k in got if k.endswith("relative_position_bias_table"))
    assert got[table].dtype == torch.float32 and not torch.equal(got[table], got[table].bfloat16().float())


@pytest.mark.parametrize("command", ["remap", "upscale"])
def test_bad_dtype_is_one_line_exit_2(timm_v1, tmp_path, command):
    _, path, _ = timm_v1
    out = tmp_path / "out"
    args = ("remap", "timm", "hf", path) if command == "remap" else ("upscale", path, "--res", "128")
    assert_clean_error(run_cli(*args, "-o", out, "--dtype", "int8"), 2, "Unknown --dtype 'int8'", "bf16", out=out)


def test_to_torch_of_a_cast_source():
    src = ArraySource(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4))
    t = to_torch(C.cast(src, "BF16"))
    assert t.dtype == torch.bfloat16 and t.shape == (3, 4)
    assert torch.equal(t, torch.from_numpy(src.array).to(torch.bfloat16))


def test_remap_from_a_pth_source_casts_torch_tensors(tmp_path):
    spec = small_spec(1)
    model = random_reference(spec, 8)
    src = tmp_path / "official.pth"
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}), "official", src)
    api.remap(src, "timm", tmp_path / "t.safetensors", dtype="fp16")
    got, _ = tensors(tmp_path / "t.safetensors")
    w = next(k for k in got if k.endswith("attn.qkv.weight"))
    assert got[w].dtype == torch.float16
    want = model.state_dict()[w].to(torch.float16)
    assert torch.equal(got[w], want)


def test_one_file_of_mixed_casts_and_a_cast_of_a_cast(tmp_path):
    """The scratch arrays are shared by the tensors of a write: every dtype pair in one file."""
    bits32, bits16 = float32_samples(5000), samples("F16")
    f32, f16, bf16 = (file_source(bits32, "F32", tmp_path), file_source(bits16, "F16", tmp_path),
                      file_source(bits16, "BF16", tmp_path))
    items = [("a", C.cast(f32, "BF16")), ("b", C.cast(f16, "F32")), ("c", C.cast(bf16, "F32")),
             ("d", C.cast(f32, "F16")), ("e", C.cast(bf16, "F16")), ("f", C.cast(C.cast(f32, "F16"), "BF16"))]
    write_safetensors(tmp_path / "mixed.safetensors", items, {})
    want = {"a": torch_cast(bits32, "F32", "BF16"), "b": torch_cast(bits16, "F16", "F32"),
            "c": torch_cast(bits16, "BF16", "F32"), "d": torch_cast(bits32, "F32", "F16"),
            "e": torch_cast(bits16, "BF16", "F16"),
            "f": torch_cast(torch_cast(bits32, "F32", "F16"), "F16", "BF16")}
    _, got = read_safetensors_header(tmp_path / "mixed.safetensors")
    for k, w in want.items():
        dst = got[k].dtype
        assert_same_bits(np.frombuffer(got[k].tobytes(), w.dtype), w, dst)


def test_a_safetensors_remap_with_dtype_imports_no_torch(timm_v1, tmp_path):
    """Nor numpy, where the compiled kernels are built (its import is ~0.13 s of a Swin-L remap's 0.5)."""
    import subprocess
    import sys
    _, path, _ = timm_v1
    code = ("import sys; from swin_convert import api; "
            f"api.remap({str(path)!r}, 'hf', {str(tmp_path / 'o')!r}, dtype='bf16'); "
            "print([m for m in ('torch', 'timm', 'transformers', 'numpy') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("[]" if C.kernels() is not None else "['numpy']")
    with safe_open(str(tmp_path / "o" / "model.safetensors"), "np") as f:
        assert f.metadata()["swin_convert.dtype"] == "bf16"


def test_check_matches_head_rows_of_a_cast_candidate(tmp_path):
    """upscale --head-map --dtype bf16: the kept rows are found in the source (rounded alike)."""
    spec = small_spec(1)
    model = random_reference(spec, 9)
    src = tmp_path / "src.safetensors"
    api.save(CanonicalCheckpoint(spec, {k: TorchSource(v) for k, v in model.state_dict().items()}), "timm", src)
    rows = tmp_path / "rows.txt"
    rows.write_text("3\n1\n7\n")
    api.upscale(src, tmp_path / "out", head_map=rows, dtype="bf16")
    report = api.check(tmp_path / "out", src, runtimes=("reference",), num_samples=8)
    assert report.output == "logits" and "keeps 3 of the source's 10 classes" in report.comparison
    assert (report.atol, report.rtol) == chk.WEIGHT_TOLERANCES["BF16"] and report.passed, report.summary()
