"""IKNP OT extension (Ishai, Kilian, Nissim, Petrank, CRYPTO 2003), semi-honest, with
kappa = 128, vectorised with numpy; the hash is the tweakable correlation-robust hash
of fixed-key AES of Guo, Katz, Wang and Yu (S&P 2020).

Setup (once per direction): the extension *sender* S draws Delta in {0,1}^128 and is the
receiver of 128 base OTs with choice bits Delta_i; the extension *receiver* R is their
sender. R holds seed pairs (k0_i, k1_i), S holds k^{Delta_i}_i. Each seed keys an
AES-CTR stream G(k) that both ends read in step.

Extension of m OTs with R's choice bits x in {0,1}^m (one message R -> S):
    R:  t^i = G(k0_i),  u^i = t^i ^ G(k1_i) ^ x      (128 rows of m bits)   sends u
    S:  q^i = G(k^{Delta_i}_i) ^ Delta_i u^i = t^i ^ Delta_i x
Transposed into m rows of 128 bits:  q_j = t_j ^ x_j Delta.  So S holds, for OT j, the
two strings q_j and q_j ^ Delta, and R holds t_j = the one selected by x_j; R knows
nothing of Delta (each u^i is one-time-padded by G(k1_i), or G(k0_i)), and the u^i are
uniform to S (padded by the stream S does not hold).
Hashing breaks the correlation: the pads of OT j are H(q_j, j) and H(q_j ^ Delta, j),
with H(x, i) = pi(pi(x) ^ i) ^ pi(x), pi = AES-128 under a fixed public key (tweakable
circular correlation robust in the ideal-cipher model, GKWY20), and a distinct tweak i
per OT and output block (Hash.__call__). Longer pads (n ring elements) take one AES
block per 2 elements.

Cost per OT: R sends 128 bits = 16 bytes; R computes 256 bits of AES-CTR, S 128; one
128 x m bit transposition each; hashing 2 AES blocks per 128-bit pad (S hashes twice).
"""
from __future__ import annotations

from typing import List

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..link import PeerError
from ..prg import Prg
from ..protocols.semi2k_common import _fill

KAPPA = 128
_FIXED_KEY = bytes.fromhex("73 70 75 2d 6c 69 74 65 2f 69 6b 6e 70 2f 70 69".replace(" ", ""))
_SWAPS = [(np.uint64(7), np.uint64(0x00AA00AA00AA00AA)),
          (np.uint64(14), np.uint64(0x0000CCCC0000CCCC)),
          (np.uint64(28), np.uint64(0x00000000F0F0F0F0))]


_HASH_ROWS = 1 << 15    # 128-bit blocks hashed at a time
_CHUNK = 4096       # columns (bytes per row) transposed at a time: 512 KB of words, in cache


def transpose_bits(rows: np.ndarray) -> np.ndarray:
    """(128, M) uint8 -- bit j of row i is bit j%8 of byte j//8 -- to (8M, 2) uint64:
    row j holds bit i of every input row i (same LSB-first layout). The bytes of 8 rows
    are interleaved into uint64 words (8 strided copies with long inner loops), the
    8 x 8 bit block inside each word is transposed with three delta swaps (Hacker's
    Delight 7-3), and the words' bytes are spread to the output rows (16 copies).
    Column chunks of _CHUNK bytes keep the ~25 passes over the words in cache (2x
    faster than whole-matrix passes at M = 2^17)."""
    M = rows.shape[1]
    X = rows.reshape(16, 8, M)
    out = np.empty((8 * M, 16), np.uint8)
    c = min(_CHUNK, M)
    W8 = np.empty((16, c, 8), np.uint8)
    T = np.empty((16, c), np.uint64)
    for lo in range(0, M, c):
        n = min(M, lo + c) - lo
        w8 = W8[:, :n]
        for r in range(8):
            w8[:, :, r] = X[:, r, lo:lo + n]
        w = w8.view(np.uint64).reshape(16, n)
        t = T[:, :n]
        for sh, mask in _SWAPS:
            np.right_shift(w, sh, out=t)
            t ^= w
            t &= mask
            w ^= t
            t <<= sh
            w ^= t
        src = w.view(np.uint8).reshape(16, 8 * n)
        dst = out[8 * lo:8 * (lo + n)]
        for a in range(16):
            dst[:, a] = src[a]
    return out.view(np.uint64)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """0/1 array -> packed LSB-first bytes (the row layout of transpose_bits)."""
    return np.packbits(np.asarray(bits, np.uint8).reshape(-1), bitorder="little")


class Hash:
    """H(x, (j, l)) = pi(pi(x) ^ tweak) ^ pi(x) on 128-bit rows, n uint64 words per row."""

    def __init__(self):
        self._cipher = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB())
        self._idx = np.arange(0, dtype=np.uint64)

    def _pi(self, blocks: np.ndarray) -> np.ndarray:
        src = np.ascontiguousarray(blocks).view(np.uint8).reshape(-1)
        out = np.empty(src.size + 16, np.uint8)        # older `cryptography` wants spare room
        n = self._cipher.encryptor().update_into(src, out)
        assert n == src.size
        return out[:n].view(np.uint64).reshape(blocks.shape)

    def __call__(self, rows: np.ndarray, first_index: int, n: int) -> np.ndarray:
        """rows (m, 2) uint64 -> (m, n) uint64 pads. OT j of a batch whose first OT has
        the global index f gets the tweaks (j, f + l 2^40), l = 0 .. ceil(n/2) - 1:
        distinct for every OT and block while f < 2^40 and l < 2^24. Rows go through
        in chunks of _HASH_ROWS (2x faster than whole-batch passes: in cache)."""
        m, nb = rows.shape[0], (n + 1) // 2
        if first_index >= 1 << 40 or nb >= 1 << 24:
            raise ValueError("IKNP: tweak space exhausted (set up a fresh link)")
        if self._idx.size < m:
            self._idx = np.arange(max(m, 2 * self._idx.size), dtype=np.uint64)
        hi = np.uint64(first_index) + (np.arange(nb, dtype=np.uint64) << np.uint64(40))
        out = np.empty((m, n), np.uint64)              # contiguous: no copies downstream
        step = max(1, _HASH_ROWS // nb)
        for lo in range(0, m, step):
            top = min(m, lo + step)
            px = self._pi(rows[lo:top])
            tw = np.empty((top - lo, nb, 2), np.uint64)
            np.bitwise_xor(px[:, None, 0], self._idx[lo:top, None], out=tw[:, :, 0])
            np.bitwise_xor(px[:, None, 1], hi[None, :], out=tw[:, :, 1])
            h = self._pi(tw)
            h ^= px[:, None, :]
            out[lo:top] = h.reshape(top - lo, 2 * nb)[:, :n]
        return out


def _streams(seeds: List[bytes], nbytes: int) -> np.ndarray:
    """(128, nbytes) uint8: the next nbytes of every seed's stream."""
    out = np.empty((len(seeds), nbytes), np.uint8)
    for i, g in enumerate(seeds):
        _fill(g, out[i])
    return out


class IknpReceiver:
    """Extension receiver: holds the 128 seed pairs (the base-OT sender's keys)."""

    def __init__(self, key_pairs):
        self.g0 = [Prg(k0) for k0, _ in key_pairs]
        self.g1 = [Prg(k1) for _, k1 in key_pairs]
        self.count = 0                  # OTs extended so far (the hash tweak)

    def extend(self, choices: np.ndarray):
        """choices: m bits (m a multiple of 8). Returns (u to send, t rows, first index)."""
        m = choices.size
        xb = pack_bits(choices)
        t = _streams(self.g0, m // 8)
        u = _streams(self.g1, m // 8)
        u ^= t
        u ^= xb[None, :]
        first, self.count = self.count, self.count + m
        return u, transpose_bits(t), first


class IknpSender:
    """Extension sender: holds Delta and the seeds k^{Delta_i}_i."""

    def __init__(self, delta_bits: np.ndarray, keys):
        self.delta_bits = np.asarray(delta_bits, np.uint8)
        self.g = [Prg(k) for k in keys]
        self.delta = pack_bits(self.delta_bits).view(np.uint64)        # row layout
        self._delta_rows = [int(i) for i in np.nonzero(self.delta_bits)[0]]
        self.count = 0

    def extend(self, u: np.ndarray, m: int):
        """The receiver's u (128, m/8) -> (q rows, first index)."""
        if not isinstance(u, np.ndarray) or u.shape != (KAPPA, m // 8) or u.dtype != np.uint8:
            raise PeerError("IKNP: the peer's extension matrix has the wrong shape")
        q = _streams(self.g, m // 8)
        for i in self._delta_rows:                 # Delta_i u^i: u^i where Delta_i = 1
            q[i] ^= u[i]
        first, self.count = self.count, self.count + m
        return transpose_bits(q), first
