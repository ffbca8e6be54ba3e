"""Named invertible tensor ops (swin_convert.core.ops): each one there and back, bit-exact, lazily;
byte ranges stay byte ranges."""
from __future__ import annotations

import numpy as np
import pytest

from swin_convert.core.ops import (ConcatRows, Flatten, InsertZeroRows, PermuteBlocks, SplitRows, Transpose, Unflatten,
                                   identity, raw_array)
from swin_convert.core.tensors import ArraySource, FileSlice, read_safetensors_header, write_safetensors
from swin_convert.errors import LayoutError


def arr(*shape, seed=0, dtype=np.float32):
    return ArraySource(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def same(a, b) -> bool:
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("op, parts", [
    (identity, [arr(4, 3)]),
    (SplitRows(3), [arr(6, 5)]),
    (PermuteBlocks((0, 2, 1, 3), dim=-1), [arr(8, 16)]),
    (PermuteBlocks((0, 2, 1, 3), dim=0), [arr(16)]),
    (PermuteBlocks((2, 0, 1)), [arr(6, 2, dtype=np.float16)]),
    (Flatten(), [arr(9, 9)]),
    (InsertZeroRows(1, 3), [arr(5), arr(5, seed=1)]),
    (Transpose(), [arr(3, 7)]),
])
def test_round_trip_is_bit_exact(op, parts):
    there = op.to_layout(parts)
    assert len(there) == op.n_layout
    back = op.to_canonical(there)
    assert len(back) == op.n_canonical and all(same(a, b) for a, b in zip(parts, back))
    inv = op.inverse()   # the inverse op is the same pair read the other way
    assert all(same(a, b) for a, b in zip(inv.to_canonical(parts) if inv.n_layout == len(parts) else there,
                                          there if inv.n_layout == len(parts) else inv.to_layout(there)))


def test_ops_compute_what_they_say():
    a = arr(8, 4)
    q, k, v = SplitRows(3).to_layout([arr(6, 4)])
    assert q.shape == (2, 4)
    (p,) = PermuteBlocks((0, 2, 1, 3), dim=-1).to_layout([a])
    blocks = np.split(a.array, 4, axis=-1)
    assert np.array_equal(np.frombuffer(p.tobytes(), np.float32).reshape(8, 4),
                          np.concatenate([blocks[0], blocks[2], blocks[1], blocks[3]], -1))
    (z,) = InsertZeroRows(1, 3).to_layout([ArraySource(np.ones(2, np.float32)), ArraySource(np.full(2, 2, np.float32))])
    assert np.frombuffer(z.tobytes(), np.float32).tolist() == [1, 1, 0, 0, 2, 2]
    (f,) = Flatten().to_layout([arr(3, 3)])
    assert f.shape == (9,)
    (u,) = Unflatten().to_layout([arr(16)])
    assert u.shape == (4, 4)
    (c,) = ConcatRows(2).to_layout([arr(2, 3), arr(1, 3)])
    assert c.shape == (3, 3)
    (t,) = Transpose().to_layout([a])
    assert t.shape == (4, 8) and np.array_equal(np.frombuffer(t.tobytes(), np.float32).reshape(4, 8), a.array.T)


def test_dropping_a_non_zero_block_is_refused():
    (z,) = InsertZeroRows(1, 3).to_layout([arr(4), arr(4, seed=2)])
    bad = ArraySource(np.frombuffer(z.tobytes(), np.float32).copy())
    bad.array[5] = 1e-3
    with pytest.raises(LayoutError, match="block 2 of 3 is not zero"):
        InsertZeroRows(1, 3).to_canonical([bad], "layers.0.blocks.0.attn.qkv.bias")
    neg_zero = ArraySource(np.frombuffer(z.tobytes(), np.float32).copy())
    neg_zero.array[4:8] = -0.0       # a sign bit alone is still zero
    assert len(InsertZeroRows(1, 3).to_canonical([neg_zero])) == 2


def test_bf16_is_handled_as_raw_bits(tmp_path):
    path = tmp_path / "x.safetensors"
    bits = np.random.default_rng(0).integers(0, 2 ** 16, size=(8, 4), dtype=np.uint16)

    class BF16(ArraySource):
        @property
        def dtype(self):
            return "BF16"
    write_safetensors(path, [("w", BF16(bits))], {})
    _, src = read_safetensors_header(path)
    (p,) = PermuteBlocks((1, 0)).to_layout([src["w"]])
    assert p.dtype == "BF16" and np.array_equal(raw_array(p), np.concatenate([bits[4:], bits[:4]]))
    (back,) = PermuteBlocks((1, 0)).to_canonical([p])
    assert back.tobytes() == src["w"].tobytes()


def test_row_split_and_rename_of_a_file_stay_byte_ranges(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, [("qkv", arr(12, 4))], {})
    _, src = read_safetensors_header(path)
    parts = SplitRows(3).to_layout([src["qkv"]])
    assert all(isinstance(p, FileSlice) for p in parts)
    (joined,) = SplitRows(3).to_canonical(parts)
    assert isinstance(joined, FileSlice) and joined == src["qkv"]
    (flat,) = Flatten().to_layout([src["qkv"]])
    assert isinstance(flat, FileSlice) and flat.shape == (48,)
    assert identity.to_layout([src["qkv"]])[0] is src["qkv"]
