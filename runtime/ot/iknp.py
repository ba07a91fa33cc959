"""IKNP OT extension (Ishai, Kilian, Nissim, Petrank, CRYPTO 2003), semi-honest, with
kappa = 128, numba kernels around AES; the hash is the tweakable correlation-robust hash
of fixed-key AES of Guo, Katz, Wang and Yu (S&P 2020).

Setup (once per direction): the extension *sender* S draws Delta in {0,1}^128 and is the
receiver of 128 base OTs with choice bits Delta_i; the extension *receiver* R is their
sender. R holds seed pairs (k0_i, k1_i), S holds k^{Delta_i}_i. Each seed keys an
AES-CTR stream G(k) that both ends read in step.

Extension of m OTs with R's choice bits x in {0,1}^m (one message R -> S):
    R:  t^i = G(k0_i),  u^i = t^i ^ G(k1_i) ^ x      (128 rows of m bits)   sends u
    S:  q^i = G(k^{Delta_i}_i) ^ Delta_i u^i = t^i ^ Delta_i x
Transposed into m rows of 128 bits (bit_transpose.py: row j is column j, OT j):
q_j = t_j ^ x_j Delta.  So S holds, for OT j, the
two strings q_j and q_j ^ Delta, and R holds t_j = the one selected by x_j; R knows
nothing of Delta (each u^i is one-time-padded by G(k1_i), or G(k0_i)), and the u^i are
uniform to S (padded by the stream S does not hold).
Hashing breaks the correlation: the pads of OT j are H(q_j, j) and H(q_j ^ Delta, j),
with H(x, i) = pi(pi(x) ^ i) ^ pi(x), pi = AES-128 under a fixed public key (tweakable
circular correlation robust in the ideal-cipher model, GKWY20), and a distinct tweak i
per OT and output block: (g, g + l 2^40) for the OT of global index g, block l
(Hash.raw). Longer pads (n ring elements) take one AES block per 2 elements.

Cost per OT: R sends 128 bits = 16 bytes; R computes 256 bits of AES-CTR, S 128; one
128 x m bit transposition each; hashing 2 AES blocks per 128-bit pad (S hashes twice).
"""
from __future__ import annotations

import math
from typing import List

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numba import njit

from ..link import PeerError
from ..prg import Prg
from ..protocols.semi2k_common import _fill
from .bit_transpose import KAPPA, TransposedRows, pack_choices

_FIXED_KEY = bytes.fromhex("73 70 75 2d 6c 69 74 65 2f 69 6b 6e 70 2f 70 69".replace(" ", ""))
_HASH_ROWS = 1 << 14    # AES blocks per chunk of the hash, all buffers (256 KB: in cache)


def padded(m: int) -> int:
    """OTs actually extended for m: whole words of every row (transpose_bits)."""
    return -(-m // 64) * 64


@njit(nogil=True, cache=True)
def _inputs(rows, delta, k, out):
    """out (r, k, 2): row j, and row j ^ delta when k = 2 (the sender's two strings)."""
    for j in range(rows.shape[0]):
        a, b = rows[j, 0], rows[j, 1]
        out[j, 0, 0], out[j, 0, 1] = a, b
        if k == 2:
            out[j, 1, 0], out[j, 1, 1] = a ^ delta[0], b ^ delta[1]


@njit(nogil=True, cache=True)
def _tweaked(px, first, k, nb, out):
    """out (r k nb, 2) = pi(x) ^ (g, g + l 2^40), g = first + j: row j, string b < k,
    block l; px (r k, 2)."""
    hi = np.uint64(40)
    g0 = np.uint64(first)
    ks = np.uint64(k - 1)                   # k is 1 or 2: p // k = p >> (k - 1)
    if nb == 1:
        for p in range(px.shape[0]):
            g = g0 + (np.uint64(p) >> ks)
            out[p, 0] = px[p, 0] ^ g
            out[p, 1] = px[p, 1] ^ g
        return
    o = 0
    for p in range(px.shape[0]):
        g = g0 + (np.uint64(p) >> ks)
        p0, p1 = px[p, 0], px[p, 1]
        for l in range(nb):
            out[o, 0] = p0 ^ g
            out[o, 1] = p1 ^ (g + (np.uint64(l) << hi))
            o += 1


@njit(nogil=True, cache=True)
def _pads(h, px, b, out, base):
    """out (r, n) = H of string b: word i = h[j, b, i // 2, i % 2] ^ pi(x)[j, b, i % 2],
    minus base (r, n) when base has rows (the sender's m1 - m0)."""
    sub = base.shape[0] > 0
    for j in range(out.shape[0]):
        for i in range(out.shape[1]):
            v = h[j, b, i >> 1, i & 1] ^ px[j, b, i & 1]
            out[j, i] = v - base[j, i] if sub else v


_NONE = np.zeros((0, 2), np.uint64)
_NO_DELTA = np.zeros(2, np.uint64)


class Hash:
    """H(x, i) = pi(pi(x) ^ i) ^ pi(x) on 128-bit rows, n uint64 words per row. One ECB
    encryptor and the chunk buffers are kept (no allocation per chunk); the passes
    around AES are numba kernels (no GIL: the other party runs meanwhile). AES itself
    (OpenSSL through `cryptography`) holds the GIL: two calls per chunk, whatever the
    number of strings (the sender's two are hashed in the same calls)."""

    def __init__(self):
        self._enc = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB()).encryptor()
        self._bufs = {}

    def _buf(self, name, shape):
        words = math.prod(shape)
        b = self._bufs.get(name)
        if b is None or b.size < words + 2:            # older `cryptography` wants spare room
            b = self._bufs[name] = np.empty(words + 2, np.uint64)
        return b[:words].reshape(shape)

    def _pi(self, src: np.ndarray, name: str) -> np.ndarray:
        """pi of every 16-byte block of the contiguous src, into a kept buffer."""
        out = self._buf(name, src.shape)
        n = self._enc.update_into(src.reshape(-1).view(np.uint8),
                                  self._bufs[name].view(np.uint8))
        assert n == src.nbytes
        return out

    def raw(self, rows: np.ndarray, first: int, nb: int, delta=None):
        """The AES part of H for one chunk: rows (r, 2) -> (pi(x) (r, k, 2), h = pi(pi(x) ^
        tweak) (r, k, nb, 2)), k = 1 string per row, or 2 (x, x ^ delta) if delta is
        given; or rows (r, k, 2), the strings already (TransposedRows.strings, contiguous).
        Views of kept buffers, valid until the next call. Tweak of row j, block
        l: (g, g + l 2^40), g = first + j: the first word names the OT, the second the
        block (unique while g < 2^40 and l < 2^24)."""
        r = rows.shape[0]
        if first + r >= 1 << 40 or nb >= 1 << 24:
            raise ValueError("IKNP: tweak space exhausted (set up a fresh link)")
        if rows.ndim == 3:
            k, x = rows.shape[1], rows
        else:
            k = 1 if delta is None else 2
            x = self._buf("x", (r, k, 2))
            _inputs(rows, _NO_DELTA if delta is None else delta, k, x)
        px = self._pi(x, "px")
        tw = self._buf("tw", (r, k, nb, 2))
        _tweaked(px.reshape(r * k, 2), first, k, nb, tw.reshape(r * k * nb, 2))
        return px, self._pi(tw, "h")

    @staticmethod
    def _chunks(m: int, k: int, n: int):
        """Row ranges of about _HASH_ROWS AES blocks (k strings of 1 + (n + 1) // 2)."""
        step = max(1, _HASH_ROWS // (k * (1 + (n + 1) // 2)))
        for lo in range(0, m, step):
            yield lo, min(m, lo + step)

    def __call__(self, rows: np.ndarray, first_index: int, n: int, xor=None,
                 out: np.ndarray = None) -> np.ndarray:
        """rows (m, 2) uint64 -> (m, n) uint64 pads H(rows ^ xor) (xor: None or a (2,)
        row, Delta for the sender's second pads), into out if given. Row j is the OT
        of global index g = first_index + j (its tweaks: raw), so a batch may be hashed
        in any slices. Chunks of _HASH_ROWS blocks stay in cache."""
        m = rows.shape[0]
        out = np.empty((m, n), np.uint64) if out is None else out
        for lo, hi in self._chunks(m, 1, n):
            px, h = self.raw(rows[lo:hi], first_index + lo, (n + 1) // 2, xor)
            _pads(h, px, 1 if xor is not None else 0, out[lo:hi], _NONE)
        return out

    def pair(self, rows: np.ndarray, first_index: int, n: int, delta: np.ndarray,
             out0: np.ndarray, out1: np.ndarray, diff: bool = True):
        """The sender's pads of a batch: out0 = H(q), out1 = H(q ^ Delta) - H(q) (or
        H(q ^ Delta) if not diff), the two hashes of a chunk sharing its tweaks and its
        AES calls."""
        for lo, hi in self._chunks(rows.shape[0], 2, n):
            px, h = self.raw(rows[lo:hi], first_index + lo, (n + 1) // 2, delta)
            _pads(h, px, 0, out0[lo:hi], _NONE)
            _pads(h, px, 1, out1[lo:hi], out0[lo:hi] if diff else _NONE)
        return out0, out1


def _streams(seeds: List[bytes], nbytes: int) -> np.ndarray:
    """(128, nbytes) uint8: the next nbytes of every seed's stream."""
    out = np.empty((len(seeds), nbytes), np.uint8)
    for i, g in enumerate(seeds):
        _fill(g, out[i])
    return out


def _xor_stream(g: Prg, data: np.ndarray, out: np.ndarray) -> None:
    """out = data ^ the next data.size bytes of g's stream: AES-CTR encrypting data
    costs what encrypting zeros does, so the XOR takes no pass of its own."""
    try:
        g._enc.update_into(data, out)
    except ValueError:                                    # pragma: no cover - old library
        out[:] = np.frombuffer(g._enc.update(data.tobytes()), np.uint8)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """0/1 array -> packed LSB-first bytes (Delta in the row layout of transpose_bits)."""
    return np.packbits(np.asarray(bits, np.uint8).reshape(-1), bitorder="little")


class IknpReceiver:
    """Extension receiver: holds the 128 seed pairs (the base-OT sender's keys)."""

    def __init__(self, key_pairs):
        self.g0 = [Prg(k0) for k0, _ in key_pairs]
        self.g1 = [Prg(k1) for _, k1 in key_pairs]
        self.count = 0                  # OTs extended so far (the hash tweak)

    def extend(self, choices: np.ndarray):
        """choices: m 0/1 values, OT j chooses choices[j]. Extends padded(m) OTs (zero
        choices past m). Returns (u to send, t rows (padded(m), 2) as TransposedRows
        (made slice by slice), first index)."""
        m = padded(choices.size)
        xb = np.zeros(m // 8, np.uint8)
        packed = pack_choices(choices, pad=True)
        xb[:packed.size] = packed
        t = _streams(self.g0, m // 8)
        u = np.empty_like(t)
        tx = np.empty_like(xb)
        for i, g in enumerate(self.g1):            # u^i = G(k1_i) ^ t^i ^ x
            _xor_stream(g, np.bitwise_xor(t[i], xb, out=tx), u[i])
        first, self.count = self.count, self.count + m
        return u, TransposedRows(t), first


class IknpSender:
    """Extension sender: holds Delta and the seeds k^{Delta_i}_i."""

    def __init__(self, delta_bits: np.ndarray, keys):
        self.delta_bits = np.asarray(delta_bits, np.uint8)
        self.g = [Prg(k) for k in keys]
        self.delta = _pack_bits(self.delta_bits).view(np.uint64)       # row layout
        self.count = 0

    def extend(self, u: np.ndarray, count: int):
        """The receiver's u for count OTs (128, padded(count) / 8) -> (q rows as
        TransposedRows, first)."""
        m = padded(count)
        if not isinstance(u, np.ndarray) or u.shape != (KAPPA, m // 8) or u.dtype != np.uint8:
            raise PeerError("IKNP: the peer's extension matrix has the wrong shape")
        q = np.empty_like(u)
        for i, g in enumerate(self.g):             # G(k_i) ^ Delta_i u^i
            if self.delta_bits[i]:
                _xor_stream(g, u[i], q[i])
            else:
                _fill(g, q[i])
        first, self.count = self.count, self.count + m
        return TransposedRows(q), first
