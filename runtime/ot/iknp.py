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
Transposed into m rows of 128 bits (bit_transpose.py: the OTs come out in a fixed
order other than the columns', which R's choice bits follow, pack_choices):
q_j = t_j ^ x_j Delta.  So S holds, for OT j, the
two strings q_j and q_j ^ Delta, and R holds t_j = the one selected by x_j; R knows
nothing of Delta (each u^i is one-time-padded by G(k1_i), or G(k0_i)), and the u^i are
uniform to S (padded by the stream S does not hold).
Hashing breaks the correlation: the pads of OT j are H(q_j, j) and H(q_j ^ Delta, j),
with H(x, i) = pi(pi(x) ^ i) ^ pi(x), pi = AES-128 under a fixed public key (tweakable
circular correlation robust in the ideal-cipher model, GKWY20), and a distinct tweak i
per OT and output block: (g, g + l 2^40) for the OT of global index g, block l
(Hash.__call__). Longer pads (n ring elements) take one AES block per 2 elements.

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
from .bit_transpose import KAPPA, TransposedRows, pack_choices

_FIXED_KEY = bytes.fromhex("73 70 75 2d 6c 69 74 65 2f 69 6b 6e 70 2f 70 69".replace(" ", ""))
_HASH_ROWS = 1 << 15    # 128-bit blocks hashed at a time (512 KB: in cache)


def padded(m: int) -> int:
    """OTs actually extended for m: whole words of every row (transpose_bits)."""
    return -(-m // 64) * 64


class Hash:
    """H(x, i) = pi(pi(x) ^ i) ^ pi(x) on 128-bit rows, n uint64 words per row. One ECB
    encryptor and the chunk buffers are kept (no allocation per chunk), and every numpy
    step is one contiguous pass: a (2,) row broadcast over (m, 2) or a strided column
    costs 10x a contiguous pass in numpy."""

    def __init__(self):
        self._enc = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB()).encryptor()
        self._bufs = {}
        self._tweaks = {}
        self._dx = None

    def _buf(self, name, words):
        b = self._bufs.get(name)
        if b is None or b.size < words + 2:            # older `cryptography` wants spare room
            b = self._bufs[name] = np.empty(words + 2, np.uint64)
        return b[:words]

    def _base(self, step: int, nb: int) -> np.ndarray:
        """(step, nb, 2) tweak offsets [j, j + l 2^40] of OT j of a chunk, block l."""
        key = (step, nb)
        if key not in self._tweaks:
            t = np.empty((step, nb, 2), np.uint64)
            t[:, :, 0] = np.arange(step, dtype=np.uint64)[:, None]
            t[:, :, 1] = t[:, :, 0] + (np.arange(nb, dtype=np.uint64)[None, :] << np.uint64(40))
            self._tweaks = {key: t}
        return self._tweaks[key]

    def _pi(self, src: np.ndarray, name: str) -> np.ndarray:
        """pi of every 16-byte block of the contiguous src, into a kept buffer."""
        out = self._buf(name, src.size)
        n = self._enc.update_into(src.reshape(-1).view(np.uint8),
                                  self._bufs[name].view(np.uint8))
        assert n == src.nbytes
        return out.reshape(src.shape)

    def _tiled(self, xor: np.ndarray, r: int) -> np.ndarray:
        """(r, 2) rows of xor (Delta), kept: a (2,) row broadcast costs 10x a pass."""
        if self._dx is None or self._dx.shape[0] < r or not np.array_equal(self._dx[0], xor):
            self._dx = np.empty((max(r, _HASH_ROWS), 2), np.uint64)
            self._dx[:] = xor
        return self._dx[:r]

    def _chunks(self, m: int, first_index: int, n: int):
        """(lo, r, tweaks (r, nb, 2)) for the chunks of a batch of m rows."""
        nb = (n + 1) // 2
        if first_index + m >= 1 << 40 or nb >= 1 << 24:
            raise ValueError("IKNP: tweak space exhausted (set up a fresh link)")
        step = max(1, _HASH_ROWS // nb)
        base = self._base(step, nb)
        for lo in range(0, m, step):
            r = min(m, lo + step) - lo
            tw = self._buf("tb", 2 * nb * r).reshape(r, nb, 2)
            np.add(base[:r], np.uint64(first_index + lo), out=tw)
            yield lo, r, tw

    def _hash(self, src: np.ndarray, tweaks: np.ndarray, dst: np.ndarray) -> None:
        """dst (r, n) = H(src, tweaks) for one chunk."""
        r, nb, n = src.shape[0], tweaks.shape[1], dst.shape[1]
        px = self._pi(src, "px")
        tw = self._buf("tw", tweaks.size).reshape(tweaks.shape)
        np.bitwise_xor(tweaks, px[:, None, :], out=tw)
        h = self._pi(tw, "h").reshape(r, nb, 2)
        if n == 1:                                      # the low words only
            np.bitwise_xor(h[:, 0, 0], px[:, 0], out=dst[:, 0])
        else:
            h ^= px[:, None, :]
            np.copyto(dst, h.reshape(r, 2 * nb)[:, :n])

    def __call__(self, rows: np.ndarray, first_index: int, n: int, xor=None,
                 out: np.ndarray = None) -> np.ndarray:
        """rows (m, 2) uint64 -> (m, n) uint64 pads H(rows ^ xor) (xor: None or a (2,)
        row, Delta for the sender's second pads), into out if given. Row j is the OT
        of global index g = first_index + j, and its tweak for block l is
        (g, g + l 2^40): the first word names the OT, the second the block (unique
        while g < 2^40 and l < 2^24), one scalar add per chunk makes them, and a batch
        may be hashed in any slices. The sender's two pads of one OT share the tweak.
        Chunks of _HASH_ROWS blocks stay in cache."""
        m = rows.shape[0]
        out = np.empty((m, n), np.uint64) if out is None else out
        for lo, r, tw in self._chunks(m, first_index, n):
            src = rows[lo:lo + r]
            if xor is not None:
                src = np.bitwise_xor(src, self._tiled(xor, r),
                                     out=self._buf("x", 2 * r).reshape(r, 2))
            self._hash(src, tw, out[lo:lo + r])
        return out

    def pair(self, rows: np.ndarray, first_index: int, n: int, delta: np.ndarray,
             out0: np.ndarray, out1: np.ndarray):
        """The sender's pads of a batch: out0 = H(q), out1 = H(q ^ Delta) - H(q), the two
        hashes of a chunk sharing its tweaks (as __call__ twice, one pass fewer)."""
        for lo, r, tw in self._chunks(rows.shape[0], first_index, n):
            src = rows[lo:lo + r]
            m0, m1 = out0[lo:lo + r], out1[lo:lo + r]
            self._hash(src, tw, m0)
            qd = np.bitwise_xor(src, self._tiled(delta, r), out=self._buf("x", 2 * r).reshape(r, 2))
            self._hash(qd, tw, m1)
            m1 -= m0
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
        (sliced, made block by block), first index)."""
        m = padded(choices.size)
        x = np.zeros(m, np.uint8)
        x[:choices.size] = choices.reshape(-1)
        xb = pack_choices(x)
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
