"""The bit-matrix transposition of IKNP (iknp.py), with numpy word operations only.

IKNP's kappa = 128 rows of m bits (row i: bit j of byte j // 8 at position j % 8) must
become m rows of 128 bits, one per OT, in 16 contiguous bytes (the AES block the hash
eats). Which OT lands in which output row is free, as long as both ends of the link
agree and the receiver's choice bits follow the same order (pack_choices): so the
transposition here is exact up to a fixed permutation of the OTs, chosen to make every
step a pass over contiguous words.

Per block of C words of every row (64 C OTs; rows 8g + r, g < 16, r < 8), in place on
a cache-sized copy W[g, r, w] (uint64; byte e of word w = column 8w + e):
  1. 8 x 8 bit transposes across the 8 rows of a group: three delta swaps between rows
     r and r + s (s = 4, 2, 1; masks 0x0F.., 0x33.., 0x55.. replicated per byte), each
     t = ((A >> s) ^ B) & mask, B ^= t, A ^= t << s on half the block (Hacker's Delight
     7-3, Eklundh's recursion). Then byte e of W[g, r, w] holds rows 8g .. 8g + 7 of OT
     8 (8w + e) + r.
  2. 8 x 8 byte transposes across the groups g = 8h + a, a < 8: the same three swaps with
     byte shifts (32, 16, 8 bits). Then byte e of W[8h + a, r, w] holds rows
     8 (8h + e) .. + 7 of OT 64 w + 8 a + r.
  3. Output row (a, r, w) of the block (row-major), its two words W[a, r, w] (h = 0)
     and W[8 + a, r, w] (h = 1): two strided copies of whole rows.
So output row p = (a, r, w) of a block is OT o = 64 w + 8 a + r of its columns, bit i of
the 128 the input row i (the order of Delta, unchanged). 19 passes over the block's
words, against 18 passes and 24 strided byte copies of a straight 8 x 8 transposition
(1.3-1.6x faster at 2^20 OTs on this machine).
"""
from __future__ import annotations

import numpy as np

KAPPA = 128
BLOCK_WORDS = 2048      # words of each row per block: 2 MB, measured fastest of 2^8..2^12


def _rep(byte: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([byte]) * 8, "little"))


_BIT_SWAPS = ((4, np.uint64(4), _rep(0x0F)), (2, np.uint64(2), _rep(0x33)),
              (1, np.uint64(1), _rep(0x55)))
_BYTE_SWAPS = ((4, np.uint64(32), np.uint64(0x00000000FFFFFFFF)),
               (2, np.uint64(16), np.uint64(0x0000FFFF0000FFFF)),
               (1, np.uint64(8), np.uint64(0x00FF00FF00FF00FF)))


def _blocks(words: int):
    for lo in range(0, words, BLOCK_WORDS):
        yield lo, min(words, lo + BLOCK_WORDS) - lo


def _swap(W: np.ndarray, groups: int, stages, inner: int, tmp: np.ndarray) -> None:
    """Delta swaps between the halves (A, B) of every pair of sub-blocks at distance s."""
    for s, sh, mask in stages:
        V = W.reshape(groups, 8 // (2 * s), 2, s * inner)
        A, B = V[:, :, 0], V[:, :, 1]
        t = tmp[:A.size].reshape(A.shape)
        np.right_shift(A, sh, out=t)
        t ^= B
        t &= mask
        B ^= t
        t <<= sh
        A ^= t


def _transpose_block(X: np.ndarray, lo: int, c: int, dst: np.ndarray, buf, tmp) -> None:
    """Words lo .. lo + c of every row of X (16, 8, words) -> dst (64 c, 2)."""
    W = buf[:128 * c].reshape(16, 8, c)
    np.copyto(W, X[:, :, lo:lo + c])
    _swap(W, 16, _BIT_SWAPS, c, tmp)
    _swap(W, 2, _BYTE_SWAPS, 8 * c, tmp)
    Z = W.reshape(2, 64 * c)
    dst[:, 0] = Z[0]
    dst[:, 1] = Z[1]


def _words(rows: np.ndarray) -> np.ndarray:
    if rows.shape[0] != KAPPA or rows.shape[1] % 8:
        raise ValueError("transpose_bits: 128 rows of whole words expected")
    return rows.view(np.uint64).reshape(16, 8, rows.shape[1] // 8)


def transpose_bits(rows: np.ndarray) -> np.ndarray:
    """(128, M) uint8, M a multiple of 8 -> (8 M, 2) uint64: one row of 128 bits per OT,
    in the OT order of the module docstring. rows is read, not changed."""
    X = _words(rows)
    words = X.shape[2]
    out = np.empty((64 * words, 2), np.uint64)
    c0 = min(BLOCK_WORDS, words)
    buf, tmp = np.empty(128 * c0, np.uint64), np.empty(64 * c0, np.uint64)
    for lo, c in _blocks(words):
        _transpose_block(X, lo, c, out[64 * lo:64 * (lo + c)], buf, tmp)
    return out


class TransposedRows:
    """transpose_bits(rows), made block by block as slices ask for it: a slice inside one
    block is a view of a kept buffer, valid until a slice of another block (so a
    consumer that hashes each slice at once never writes or reads the whole 16 MB of
    rows of a batch of 2^20 OTs: the block is still in cache)."""

    def __init__(self, rows: np.ndarray):
        self._X = _words(rows)
        self.size = 64 * self._X.shape[2]
        c0 = min(BLOCK_WORDS, self._X.shape[2])
        self._buf, self._tmp = np.empty(128 * c0, np.uint64), np.empty(64 * c0, np.uint64)
        self._out = np.empty((64 * c0, 2), np.uint64)
        self._block = None

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.size)
        span = 64 * BLOCK_WORDS
        if step != 1 or stop <= start:
            raise IndexError("TransposedRows: a nonempty contiguous slice expected")
        b = start // span
        if (stop - 1) // span != b:                     # across blocks: assemble a copy
            parts, lo = [], start
            while lo < stop:
                hi = min(stop, (lo // span + 1) * span)
                parts.append(self[lo:hi].copy())         # each a view of the one buffer
                lo = hi
            return np.concatenate(parts)
        if self._block != b:
            lo = b * BLOCK_WORDS
            c = min(BLOCK_WORDS, self._X.shape[2] - lo)
            _transpose_block(self._X, lo, c, self._out[:64 * c], self._buf, self._tmp)
            self._block = b
        return self._out[start - b * span:stop - b * span]


def ot_index(m: int) -> np.ndarray:
    """Output row p of transpose_bits (m columns) -> the column (OT) it comes from."""
    parts = []
    for lo, c in _blocks(m // 64):
        a, r, w = np.meshgrid(np.arange(8), np.arange(8), np.arange(c), indexing="ij")
        parts.append(64 * lo + (64 * w + 8 * a + r).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def pack_choices(x: np.ndarray) -> np.ndarray:
    """m 0/1 choices (m a multiple of 64), x[p] for output row p, -> the packed row
    (m / 8 bytes, LSB first) whose column ot_index(m)[p] holds x[p]."""
    x = np.asarray(x, np.uint8).reshape(-1)
    if x.size % 64:
        raise ValueError("pack_choices: a multiple of 64 choices expected")
    out = np.empty(x.size // 8, np.uint8)
    for lo, c in _blocks(x.size // 64):
        blk = x[64 * lo:64 * (lo + c)].reshape(8, 8, c).transpose(2, 0, 1)   # (w, a, r)
        out[8 * lo:8 * (lo + c)] = np.packbits(blk.reshape(-1), bitorder="little")
    return out
