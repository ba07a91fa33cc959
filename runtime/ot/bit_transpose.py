"""The bit-matrix transposition of IKNP (iknp.py), compiled with numba.

IKNP's kappa = 128 rows of m bits (row i: bit j in byte j // 8 at position j % 8, that is
bit j % 64 of the little-endian uint64 word j // 64) must become m rows of 128 bits, one
per OT, in 16 contiguous bytes (the AES block the hash eats). The transposition here is
exact: output row j is column j (OT j), its bit i (bit i % 64 of word i // 64) row i (the
layout of Delta). So the receiver's choice bits are packed in column order
(pack_choices: plain packbits) and nothing downstream depends on a block size.

Per tile of TILE words of every row (64 TILE OTs): each word column holds two 64 x 64
bit matrices (rows 0..63 and 64..127), transposed by Eklundh's recursion: six stages of
delta swaps between rows k and k + s (s = 32, 16, .., 1; k with bit s clear),
t = ((A >> s) ^ B) & mask_s, B ^= t, A ^= t << s (mask_s: the bit positions whose bit s
is clear; Hacker's Delight 7-3). The stages commute; they run three at a time on eight
rows: stages 32, 16, 8 on rows k + 8 i from the matrix into a flat 128 x TILE scratch T
(in L1), then stages 4, 2, 1 on rows k + i of T in place. Each of these loops does one
swap per word column over the TILE words of its rows, with constant offsets between the
rows of T, so LLVM vectorises it (SIMD across word columns). Then word w of rows j and
64 + j of T are output row 64 w + j (and, for the IKNP sender, that row ^ Delta next to
it). The rows of the matrix are m / 64 words apart, often 2^k (their lines collide in
the caches, and 128 streams are more than the hardware prefetcher follows), so each tile
prefetches the next tile's lines. One read of the matrix; the kernels run without the
GIL, so the two in-process parties transpose at once.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

KAPPA = 128
TILE = 32               # words of each row per tile: 32 KB, measured fastest of 8..128

# stage s: shift s and mask_s (numba freezes module-level scalars as constants)
_S1, _S2, _S4, _S8, _S16, _S32 = (np.uint64(1 << e) for e in range(6))
_M1, _M2, _M4, _M8, _M16, _M32 = (np.uint64(m) for m in (
    0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F,
    0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF))


@njit(nogil=True, cache=True, inline="always")
def _swap(a, b, s, m):
    """Delta swap of rows a (bit s of the row index clear) and b = the row s further."""
    t = ((a >> s) ^ b) & m
    return a ^ (t << s), b ^ t


@njit(nogil=True, cache=True, inline="always")
def _three(v0, v1, v2, v3, v4, v5, v6, v7, s1, m1, s2, m2, s3, m3):
    """Three stages on eight rows whose indices differ by s1 (v0 v4), s2 (v0 v2), s3."""
    v0, v4 = _swap(v0, v4, s1, m1)
    v1, v5 = _swap(v1, v5, s1, m1)
    v2, v6 = _swap(v2, v6, s1, m1)
    v3, v7 = _swap(v3, v7, s1, m1)
    v0, v2 = _swap(v0, v2, s2, m2)
    v1, v3 = _swap(v1, v3, s2, m2)
    v4, v6 = _swap(v4, v6, s2, m2)
    v5, v7 = _swap(v5, v7, s2, m2)
    v0, v1 = _swap(v0, v1, s3, m3)
    v2, v3 = _swap(v2, v3, s3, m3)
    v4, v5 = _swap(v4, v5, s3, m3)
    v6, v7 = _swap(v6, v7, s3, m3)
    return v0, v1, v2, v3, v4, v5, v6, v7


@intrinsic
def _prefetch(typingctx, X, r, c):
    """A read prefetch hint (llvm.prefetch, kept in all cache levels) for X[r, c]."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]],
                                       wraparound=False, boundscheck=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(X, r, c), codegen


@njit(nogil=True, cache=True, inline="always")
def _first(X, lo, T, k):
    """Stages 32, 16, 8 on rows k + 8 i of words lo .. lo + TILE of X, into T."""
    for w in range(TILE):
        x, a = lo + w, k * TILE + w
        v0, v1, v2, v3, v4, v5, v6, v7 = _three(
            X[k, x], X[k + 8, x], X[k + 16, x], X[k + 24, x], X[k + 32, x], X[k + 40, x],
            X[k + 48, x], X[k + 56, x], _S32, _M32, _S16, _M16, _S8, _M8)
        T[a], T[a + 8 * TILE], T[a + 16 * TILE], T[a + 24 * TILE] = v0, v1, v2, v3
        T[a + 32 * TILE], T[a + 40 * TILE], T[a + 48 * TILE], T[a + 56 * TILE] = v4, v5, v6, v7


@njit(nogil=True, cache=True, inline="always")
def _stages(T, k, d, s1, m1, s2, m2, s3, m3):
    """Three stages on rows k + d i (i < 8) of T, in place: a SIMD loop over the words."""
    for w in range(TILE):
        a = k * TILE + w
        v0, v1, v2, v3, v4, v5, v6, v7 = _three(
            T[a], T[a + d * TILE], T[a + 2 * d * TILE], T[a + 3 * d * TILE],
            T[a + 4 * d * TILE], T[a + 5 * d * TILE], T[a + 6 * d * TILE],
            T[a + 7 * d * TILE], s1, m1, s2, m2, s3, m3)
        T[a], T[a + d * TILE], T[a + 2 * d * TILE], T[a + 3 * d * TILE] = v0, v1, v2, v3
        T[a + 4 * d * TILE], T[a + 5 * d * TILE] = v4, v5
        T[a + 6 * d * TILE], T[a + 7 * d * TILE] = v6, v7


@njit(nogil=True, cache=True)
def _transpose(X, w0, w1, out, T, delta):
    """Words w0 .. w1 of every row of X (128, words) -> out (64 (w1 - w0), k, 2): row j,
    and row j ^ delta if k = 2; T (128 TILE,) scratch, row r at T[r TILE:]. Stages 32,
    16, 8 from X into T (a part tile: copied and zero-padded first), stages 4, 2, 1 in T,
    then the words of T to the output rows."""
    two = out.shape[1] == 2
    d0, d1 = delta[0], delta[1]
    for lo in range(w0, w1, TILE):
        c = min(TILE, w1 - lo)
        nx = lo + TILE
        if nx + TILE <= X.shape[1]:
            for r in range(KAPPA):
                for q in range(0, TILE, 8):             # 8 words: a 64-byte line
                    _prefetch(X, r, nx + q)
        if c == TILE:
            for k in range(8):
                _first(X, lo, T, k)
                _first(X, lo, T, 64 + k)
        else:
            for r in range(KAPPA):
                for w in range(c):
                    T[r * TILE + w] = X[r, lo + w]
                for w in range(c, TILE):
                    T[r * TILE + w] = 0
            for k in range(8):
                _stages(T, k, 8, _S32, _M32, _S16, _M16, _S8, _M8)
                _stages(T, 64 + k, 8, _S32, _M32, _S16, _M16, _S8, _M8)
        for k in range(0, KAPPA, 8):
            _stages(T, k, 1, _S4, _M4, _S2, _M2, _S1, _M1)
        base = 64 * (lo - w0)
        for w in range(c):
            for j in range(64):
                o = base + 64 * w + j
                a, b = T[j * TILE + w], T[(64 + j) * TILE + w]
                out[o, 0, 0], out[o, 0, 1] = a, b
                if two:
                    out[o, 1, 0], out[o, 1, 1] = a ^ d0, b ^ d1


_NO_DELTA = np.zeros(2, np.uint64)


def _words(rows: np.ndarray) -> np.ndarray:
    if rows.shape[0] != KAPPA or rows.shape[1] % 8 or rows.dtype != np.uint8:
        raise ValueError("transpose_bits: 128 uint8 rows of whole words expected")
    return np.ascontiguousarray(rows).view(np.uint64)


def transpose_bits(rows: np.ndarray) -> np.ndarray:
    """(128, M) uint8, M a multiple of 8 -> (8 M, 2) uint64: row j is column j (OT j),
    bit i of it row i. rows is read, not changed."""
    X = _words(rows)
    out = np.empty((64 * X.shape[1], 1, 2), np.uint64)
    _transpose(X, 0, X.shape[1], out, np.empty(KAPPA * TILE, np.uint64), _NO_DELTA)
    return out.reshape(-1, 2)


class TransposedRows:
    """transpose_bits(rows), made slice by slice as the consumer asks for it: a slice is
    a view of a kept buffer, valid until the next slice (so a consumer that hashes each
    slice at once never writes or reads the whole 16 MB of rows of a batch of 2^20 OTs:
    the slice is still in cache)."""

    def __init__(self, rows: np.ndarray):
        self._X = _words(rows)
        self.size = 64 * self._X.shape[1]
        self._T = np.empty(KAPPA * TILE, np.uint64)
        self._out = np.empty(0, np.uint64)

    def strings(self, start: int, stop: int, delta=None) -> np.ndarray:
        """Rows start .. stop as (stop - start, k, 2): each row, and with delta (a (2,)
        row) each row ^ delta too (the IKNP sender's two strings; k = 2)."""
        if not 0 <= start < stop <= self.size:
            raise IndexError("TransposedRows: a nonempty slice of the rows expected")
        w0, w1 = start // 64, -(-stop // 64)
        k = 1 if delta is None else 2
        words = 64 * (w1 - w0) * k * 2
        if self._out.size < words:
            self._out = np.empty(words, np.uint64)
        out = self._out[:words].reshape(64 * (w1 - w0), k, 2)
        _transpose(self._X, w0, w1, out, self._T, _NO_DELTA if delta is None else delta)
        return out[start - 64 * w0:stop - 64 * w0]

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.size)
        if step != 1 or stop <= start:
            raise IndexError("TransposedRows: a nonempty contiguous slice expected")
        return self.strings(start, stop)[:, 0]


def pack_choices(x: np.ndarray, pad: bool = False) -> np.ndarray:
    """m 0/1 choices (m a multiple of 64, or any m if pad: the last byte zero-padded),
    x[j] for OT j -> the packed row (m / 8 bytes, LSB first) whose column j holds x[j]."""
    x = np.asarray(x, np.uint8).reshape(-1)
    if x.size % 64 and not pad:
        raise ValueError("pack_choices: a multiple of 64 choices expected")
    return np.packbits(x, bitorder="little")
