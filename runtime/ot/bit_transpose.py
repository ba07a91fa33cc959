"""The bit-matrix transposition of IKNP (iknp.py), compiled with numba.

IKNP's kappa = 128 rows of m bits (row i: bit j in byte j // 8 at position j % 8, that is
bit j % 64 of the little-endian uint64 word j // 64) must become m rows of 128 bits, one
per OT, in 16 contiguous bytes (the AES block the hash eats). The transposition here is
exact: output row j is column j (OT j), its bit i (bit i % 64 of word i // 64) row i (the
layout of Delta). So the receiver's choice bits are packed in column order
(pack_choices: plain packbits) and nothing downstream depends on a block size.

Per tile of TILE words of every row (64 TILE OTs), on a 128 x TILE copy T (in L1): each
word column holds two 64 x 64 bit matrices (rows 0..63 and 64..127), transposed in place
by Eklundh's recursion: six delta swaps between rows k and k + s (s = 32, 16, .., 1; k
with bit s clear), t = ((T[k] >> s) ^ T[k + s]) & mask_s, T[k + s] ^= t, T[k] ^= t << s
(mask_s: the bit positions whose bit s is clear; Hacker's Delight 7-3), each on the TILE
words of a row at once (vector instructions). Then output row 64 w + j is (T[j, w],
T[64 + j, w]). One read and one write of the matrix; the kernels run without the GIL, so
the two in-process parties transpose at once.
"""
from __future__ import annotations

import numpy as np
from numba import njit

KAPPA = 128
TILE = 16               # words of each row per tile: 16 KB, measured fastest of 4..64

_MASKS = np.array([0x00000000FFFFFFFF, 0x0000FFFF0000FFFF, 0x00FF00FF00FF00FF,
                   0x0F0F0F0F0F0F0F0F, 0x3333333333333333, 0x5555555555555555], np.uint64)


@njit(nogil=True, cache=True)
def _transpose(X, w0, w1, out, T):
    """Words w0 .. w1 of every row of X (128, words) -> out (64 (w1 - w0), 2); T (128,
    TILE) scratch."""
    tile = T.shape[1]
    for lo in range(w0, w1, tile):
        c = min(tile, w1 - lo)
        for i in range(128):
            for w in range(c):
                T[i, w] = X[i, lo + w]
        s = 32
        for st in range(6):
            mask = _MASKS[st]
            sh = np.uint64(s)
            for k in range(128):
                if k & s == 0:
                    for w in range(c):
                        a = T[k, w]
                        b = T[k + s, w]
                        t = ((a >> sh) ^ b) & mask
                        T[k + s, w] = b ^ t
                        T[k, w] = a ^ (t << sh)
            s >>= 1
        base = 64 * (lo - w0)
        for w in range(c):
            for j in range(64):
                out[base + 64 * w + j, 0] = T[j, w]
                out[base + 64 * w + j, 1] = T[64 + j, w]


def _words(rows: np.ndarray) -> np.ndarray:
    if rows.shape[0] != KAPPA or rows.shape[1] % 8 or rows.dtype != np.uint8:
        raise ValueError("transpose_bits: 128 uint8 rows of whole words expected")
    return np.ascontiguousarray(rows).view(np.uint64)


def transpose_bits(rows: np.ndarray) -> np.ndarray:
    """(128, M) uint8, M a multiple of 8 -> (8 M, 2) uint64: row j is column j (OT j),
    bit i of it row i. rows is read, not changed."""
    X = _words(rows)
    out = np.empty((64 * X.shape[1], 2), np.uint64)
    _transpose(X, 0, X.shape[1], out, np.empty((KAPPA, TILE), np.uint64))
    return out


class TransposedRows:
    """transpose_bits(rows), made slice by slice as the consumer asks for it: a slice is
    a view of a kept buffer, valid until the next slice (so a consumer that hashes each
    slice at once never writes or reads the whole 16 MB of rows of a batch of 2^20 OTs:
    the slice is still in cache)."""

    def __init__(self, rows: np.ndarray):
        self._X = _words(rows)
        self.size = 64 * self._X.shape[1]
        self._T = np.empty((KAPPA, TILE), np.uint64)
        self._out = np.empty((0, 2), np.uint64)

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.size)
        if step != 1 or stop <= start:
            raise IndexError("TransposedRows: a nonempty contiguous slice expected")
        w0, w1 = start // 64, -(-stop // 64)
        if self._out.shape[0] < 64 * (w1 - w0):
            self._out = np.empty((64 * (w1 - w0), 2), np.uint64)
        _transpose(self._X, w0, w1, self._out, self._T)
        return self._out[start - 64 * w0:stop - 64 * w0]


def pack_choices(x: np.ndarray, pad: bool = False) -> np.ndarray:
    """m 0/1 choices (m a multiple of 64, or any m if pad: the last byte zero-padded),
    x[j] for OT j -> the packed row (m / 8 bytes, LSB first) whose column j holds x[j]."""
    x = np.asarray(x, np.uint8).reshape(-1)
    if x.size % 64 and not pad:
        raise ValueError("pack_choices: a multiple of 64 choices expected")
    return np.packbits(x, bitorder="little")
