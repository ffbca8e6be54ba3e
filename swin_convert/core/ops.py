"""Named, invertible tensor ops between canonical tensors and a layout's tensors.

Each op is an object with ``to_layout`` and ``to_canonical`` (its inverse), applied to lazy
sources (``core.tensors``): nothing is read until the writer asks for the bytes. A result that
is a contiguous byte range of its source (a row split, a rename) stays a file range and reaches
the output as a byte copy; the others materialise one tensor at a time.

Element-agnostic: data is handled as unsigned integers of the element's width, so every op
works on bf16 / fp8 too, without torch, and is bit-exact both ways.

    identity                      a -> a
    SplitRows(n)                  a -> a[0:r], a[r:2r], ...        (q/k/v)     <-> ConcatRows
    PermuteBlocks(order, dim)     a -> blocks of ``dim`` reordered  (Unfold)   <-> inverse order
    Flatten / Unflatten(kind)     (N, N) -> (N*N,)                             <-> back
    InsertZeroRows(at, parts)     q, v -> cat(q, 0, v)   (torchvision V2 qkv bias) <-> drop it,
                                  refusing a block that is not zero
    Transpose                     (a, b) -> (b, a)
    Interleave(n, dim)            blocks j of size C along ``dim``: index j*C+c -> c*n+j   <-> back
    Chain(op, op, ...)            one-tensor ops applied in order                          <-> reversed
    UNFOLD_ORDER                  Chain(PermuteBlocks((0, 2, 1, 3)), Interleave(4)) along the last dim:
                                  the official 2x2 concat order -> OpenMMLab's nn.Unfold channel order
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import LayoutError
from .tensors import DTYPES, concat_rows, row_slice

# numpy is imported where an op runs, not here: a remap made only of renames and row splits
# (file ranges) never needs it.


def _uint(width: int):
    import numpy as np
    return np.dtype(f"uint{8 * width}")


def raw_array(source) -> "np.ndarray":
    """The source's elements as unsigned integers of their width, in its shape (bit-exact)."""
    import numpy as np
    width = DTYPES[source.dtype][0]
    return np.frombuffer(source.tobytes(), dtype=_uint(width)).reshape(source.shape)


@dataclass(frozen=True)
class Computed:
    """A tensor computed from another on demand: ``fn`` maps the raw element array."""

    source: object
    fn: object          # np.ndarray -> np.ndarray (raw unsigned elements)
    shape: tuple
    label: str = ""

    @property
    def dtype(self) -> str:
        return self.source.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype][0]

    def tobytes(self) -> bytes:
        import numpy as np
        return np.ascontiguousarray(self.fn(raw_array(self.source))).tobytes()

    def write_to(self, out) -> None:
        out.write(self.tobytes())


@dataclass(frozen=True)
class Zeros:
    """``shape`` zeros of ``dtype`` (all-zero bits are 0.0 in every float format)."""

    dtype: str
    shape: tuple

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype][0]

    def tobytes(self) -> bytes:
        return bytes(self.nbytes)

    def write_to(self, out) -> None:
        out.write(self.tobytes())


class Op:
    """Base of the named ops: ``n_canonical`` tensors <-> ``n_layout`` tensors."""

    name = "op"
    n_canonical = 1
    n_layout = 1

    def to_layout(self, parts: list) -> list:
        raise NotImplementedError

    def to_canonical(self, parts: list, key: str = "") -> list:
        raise NotImplementedError

    def inverse(self) -> "Op":
        return _Inverse(self)

    def __repr__(self) -> str:
        return self.name


class _Inverse(Op):
    def __init__(self, op: Op):
        self.op, self.name = op, f"inverse({op.name})"
        self.n_canonical, self.n_layout = op.n_layout, op.n_canonical

    def to_layout(self, parts):
        return self.op.to_canonical(parts)

    def to_canonical(self, parts, key=""):
        return self.op.to_layout(parts)

    def inverse(self):
        return self.op


class _Identity(Op):
    name = "identity"

    def to_layout(self, parts):
        return list(parts)

    def to_canonical(self, parts, key=""):
        return list(parts)

    def inverse(self):
        return self


identity = _Identity()


class SplitRows(Op):
    """One tensor -> ``n`` equal row blocks (a byte range each); inverse: concatenate rows."""

    def __init__(self, n: int):
        self.n_layout, self.name = int(n), f"split_rows({n})"

    def to_layout(self, parts):
        (src,) = parts
        rows = src.shape[0] // self.n_layout
        return [row_slice(src, i * rows, (i + 1) * rows) for i in range(self.n_layout)]

    def to_canonical(self, parts, key=""):
        return [concat_rows(parts)]


def ConcatRows(n: int) -> Op:  # noqa: N802  (an op, named like one)
    """``n`` tensors -> their rows one after the other; inverse: SplitRows(n)."""
    return SplitRows(n).inverse()


class PermuteBlocks(Op):
    """Reorder equal blocks along ``dim``: block ``i`` of the result is block ``order[i]`` of the source.

    OpenMMLab's patch merging (``nn.Unfold``) orders the four 2x2 neighbours x0, x2, x1, x3
    where the official model concatenates x0, x1, x2, x3: ``PermuteBlocks((0, 2, 1, 3), dim=-1)``.
    """

    def __init__(self, order, dim: int = 0):
        self.order, self.dim = tuple(int(i) for i in order), int(dim)
        if sorted(self.order) != list(range(len(self.order))):
            raise ValueError(f"{self.order} is not a permutation")
        self.name = f"permute_blocks({list(self.order)}, dim={dim})"

    def _apply(self, src, order):
        dim = self.dim % len(src.shape)
        n = len(order)
        if src.shape[dim] % n:
            raise LayoutError(f"Cannot permute {n} blocks of a tensor of shape {tuple(src.shape)} along dim {dim}.")

        def fn(a):
            import numpy as np
            blocks = np.split(a, n, axis=dim)
            return np.concatenate([blocks[i] for i in order], axis=dim)
        return Computed(src, fn, tuple(src.shape), self.name)

    def to_layout(self, parts):
        return [self._apply(parts[0], self.order)]

    def to_canonical(self, parts, key=""):
        inverse = tuple(sorted(range(len(self.order)), key=self.order.__getitem__))
        return [self._apply(parts[0], inverse)]


@dataclass(frozen=True)
class _Reshaped:
    """The same bytes under another shape (flatten / unflatten is free)."""

    source: object
    shape: tuple

    @property
    def dtype(self) -> str:
        return self.source.dtype

    @property
    def nbytes(self) -> int:
        return self.source.nbytes

    def tobytes(self) -> bytes:
        return self.source.tobytes()

    def write_to(self, out) -> None:
        self.source.write_to(out)


def reshape(source, shape: tuple):
    from .tensors import FileSlice
    if math.prod(shape) != math.prod(source.shape):
        raise LayoutError(f"Cannot reshape a tensor of shape {tuple(source.shape)} to {tuple(shape)}.")
    if isinstance(source, FileSlice):
        return FileSlice(source.path, source.offset, source.dtype, tuple(shape))
    return _Reshaped(source, tuple(shape))


class Flatten(Op):
    """(N, M, ...) -> (N*M*...,); inverse: back to a square (N, N) (``Unflatten``)."""

    name = "flatten"

    def to_layout(self, parts):
        return [reshape(parts[0], (math.prod(parts[0].shape),))]

    def to_canonical(self, parts, key=""):
        n = math.isqrt(parts[0].shape[0])
        if n * n != parts[0].shape[0]:
            raise LayoutError(f"{key or 'A flattened tensor'} has {parts[0].shape[0]} elements, not a square N*N.")
        return [reshape(parts[0], (n, n))]


def Unflatten() -> Op:  # noqa: N802
    return Flatten().inverse()


class InsertZeroRows(Op):
    """``parts - 1`` tensors -> one, with a zero block of the same rows inserted at ``at``.

    torchvision's Swin V2 keeps ``qkv.bias = cat(q_bias, zeros, v_bias)`` and zeroes the middle
    third at every forward; the inverse refuses a non-zero block (it would be lost silently).
    """

    def __init__(self, at: int = 1, parts: int = 3):
        self.at, self.parts = int(at), int(parts)
        self.n_canonical, self.n_layout = parts - 1, 1
        self.name = f"insert_zero_rows(at={at}, of={parts})"

    def to_layout(self, parts):
        parts = list(parts)
        zero = Zeros(parts[0].dtype, tuple(parts[0].shape))
        return [concat_rows(parts[:self.at] + [zero] + parts[self.at:])]

    def to_canonical(self, parts, key=""):
        (src,) = parts
        rows = src.shape[0] // self.parts
        blocks = [row_slice(src, i * rows, (i + 1) * rows) for i in range(self.parts)]
        zero = blocks.pop(self.at)
        if (raw_array(zero) & ~_sign_mask(zero.dtype)).any():
            raise LayoutError(f"{key or 'The tensor'}'s block {self.at + 1} of {self.parts} is not zero, and this layout "
                              "keeps it zero by construction (the runtime zeroes it at every forward).",
                              "The file was edited or is not in this layout; check FROM.")
        return blocks


def _sign_mask(dtype: str):
    width = DTYPES[dtype][0]
    return _uint(width).type(1 << (8 * width - 1) if dtype.startswith(("F", "BF")) else 0)


class Transpose(Op):
    """(a, b) -> (b, a); its own inverse."""

    name = "transpose"

    def _t(self, src):
        return Computed(src, lambda a: a.T, tuple(reversed(src.shape)), self.name)

    def to_layout(self, parts):
        return [self._t(parts[0])]

    def to_canonical(self, parts, key=""):
        return [self._t(parts[0])]

    def inverse(self):
        return self


class Interleave(Op):
    """``n`` equal blocks along ``dim`` interleaved: element c of block j moves to ``c*n + j``.

    The inverse gathers them back into blocks. A pure permutation, so bit-exact both ways.
    """

    def __init__(self, n: int, dim: int = -1):
        self.n, self.dim = int(n), int(dim)
        self.name = f"interleave({n}, dim={dim})"

    def _apply(self, src, forward: bool):
        dim = self.dim % len(src.shape)
        size = src.shape[dim]
        if size % self.n:
            raise LayoutError(f"Cannot interleave {self.n} blocks of a tensor of shape {tuple(src.shape)} "
                              f"along dim {dim}.")
        blocks, width = (self.n, size // self.n) if forward else (size // self.n, self.n)

        def fn(a):
            import numpy as np
            shape = a.shape[:dim] + (blocks, width) + a.shape[dim + 1:]
            return np.swapaxes(a.reshape(shape), dim, dim + 1).reshape(a.shape)
        return Computed(src, fn, tuple(src.shape), self.name if forward else f"inverse({self.name})")

    def to_layout(self, parts):
        return [self._apply(parts[0], True)]

    def to_canonical(self, parts, key=""):
        return [self._apply(parts[0], False)]


class Chain(Op):
    """One-tensor ops applied one after the other; the inverse undoes them in reverse order."""

    def __init__(self, *ops: Op):
        if any((op.n_canonical, op.n_layout) != (1, 1) for op in ops):
            raise ValueError("Chain takes one-tensor ops only")
        self.ops = tuple(ops)
        self.name = " then ".join(op.name for op in ops)

    def to_layout(self, parts):
        for op in self.ops:
            parts = op.to_layout(parts)
        return parts

    def to_canonical(self, parts, key=""):
        for op in reversed(self.ops):
            parts = op.to_canonical(parts, key)
        return parts


# The official patch merging concatenates the 2x2 neighbours x(0,0), x(1,0), x(0,1), x(1,1) (block
# j = kw*2+kh of C channels); OpenMMLab's nn.Unfold(2, stride=2) orders channels c*4 + (kh*2+kw).
UNFOLD_ORDER = Chain(PermuteBlocks((0, 2, 1, 3), dim=-1), Interleave(4, dim=-1))


__all__ = ["Op", "identity", "SplitRows", "ConcatRows", "PermuteBlocks", "Flatten", "Unflatten", "InsertZeroRows",
           "Transpose", "Interleave", "Chain", "UNFOLD_ORDER", "Computed", "Zeros", "raw_array", "reshape"]
