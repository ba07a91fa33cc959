"""Correlations for two-party semi2k without a dealer: the two computing parties make
every correlation the dealer would deal (semi2k_dealer.py) from oblivious transfer
alone (runtime/ot: Chou-Orlandi base OTs, IKNP extension, Gilboa products).

Each party draws its own random pieces from its private PRG (os.urandom-keyed AES-CTR)
and the two compute shares of the cross terms with OtLink.cross. k = ring bits; costs
are per element, per party, at k = 64 (IKNP: 16 bytes per OT from the OT receiver;
Gilboa corrections: 344 bytes per 64-bit product from the OT sender, see cot_mul.py);
every batch takes 2 messages each way, batches of up to 2^20 OTs.

mul      a = a0 + a1, b = b0 + b1 uniform; c = ab = a0 b0 + a1 b1 + a0 b1 + a1 b0.
         a0 b1 (P0's bits of a0 choose, P1 corrects with b1) and a1 b0 (the mirror)
         run in the same batch. 64 OTs each way: 1368 bytes sent per party.
square   a^2 = a0^2 + a1^2 + 2 a0 a1: one cross term. 64 OTs.
         (One-way products -- square, b2a, trunc -- are split: P0 receives for half of
         the elements, P1 for the other half, so both parties send about as much.)
and      (a0 ^ a1) & (b0 ^ b1) = a0 b0 ^ a1 b1 ^ a0 b1 ^ a1 b0 bitwise: one 1-bit product
         per bit of a_i, shares mod 2 are XOR shares. 64 OTs each way per word.
b2a      a random bit r = r0 ^ r1 = r0 + r1 - 2 r0 r1 (P_i's bit from its PRG, sent
         packed in the online phase): one OT (width k) per bit. Also the random bit
         product that semi2k_ot's truncation uses (semi2k_ot_trunc.py).
trunc    (made only with Semi2kOT.trunc_by_pair, for measurements) r from k random
         shared bits rho_j = beta0_j ^ beta1_j (arithmetic shares as in b2a):
         r = sum_j 2^j rho_j, r >> m = sum_{j>=m} 2^{j-m} rho_j, msb(r) = rho_{k-1},
         all exact (no wrap to estimate, so truncation stays exact to 1 ulp). A share of
         beta0_j beta1_j is only needed mod 2^{w_j}, w_j = k - j (+ m for j >= m).
         k OTs per element: ~720 bytes per party (1024 + ~400, split).
and2     (a, b, b', c = a & b, c' = a & b'): as and, one OT per bit of a carrying both
         bits: 64 OTs each way per word, 1024 + 128 bytes.
mux      (b_i bit, v_i, u_i) with u = (b_0 ^ b_1) v, for select (semi2k_ot_mux.py):
         the cross terms b_j (1 - 2 b_i) v_i, one OT with a 64-bit correction each
         way: 16 + 8 = 24 bytes.
rot      random 1-out-of-16 OTs for comparisons (semi2k_ot_compare.py): 4 random IKNP
         OTs each, no corrections: 64 bytes from the receiver.
dot      C = A.B = A0.B0 + A1.B1 + A0.B1 + A1.B0 over the dot_general dims. A0.B1:
         each entry A0[b, i, l] is one Gilboa product with the row vector B1[b, l, :]:
         64 OTs carrying |row| elements each. So a (M x K) . (K x N) triple costs
         64 M K OTs each way and ~5.4 M K N bytes of corrections: OT is the right tool
         for thin products; big square matmuls want lattice HE (Cheetah), not done yet.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ..he.encoding import use_he
from ..he.matmul import HeMatmul
from ..ot.cot_mul import OtLink
from ..ring_linalg import ring_dot_general
from .semi2k_common import _fill
from .semi2k_ot_compare import rot_choice_bits, rot_receiver_entry, rot_sender_table
from .semi2k_ot_mux import cross_operand, mux_pieces

OT_BATCH = 1 << 20          # OTs per batch
WORDS_BATCH = 1 << 21       # uint64 words of pads per batch (16 MB)


def _bits(a: np.ndarray, k: int) -> np.ndarray:
    """(N,) ring array -> (N, k) 0/1 uint8, bit j of element e at [e, j]."""
    a = np.ascontiguousarray(a.reshape(-1))
    return np.unpackbits(a.view(np.uint8).reshape(a.size, -1), axis=1, bitorder="little")[:, :k]


def _weighted(s: np.ndarray, k: int, shift: int = 0, lo: int = 0) -> np.ndarray:
    """sum_{j >= lo} s[:, j, ...] << (j - shift)   (mod 2^64)."""
    sh = np.arange(lo, k, dtype=np.uint64) - np.uint64(shift)
    w = np.left_shift(np.uint64(1), sh).reshape((1, -1) + (1,) * (s.ndim - 2))
    return (s[:, lo:] * w).sum(axis=1, dtype=np.uint64)


def _canonical(xs, ys, dims):
    """Axis orders and sizes that bring A to (Bt, M, K) and B to (Bt, K, N)."""
    lc, rc, lb, rb = [list(d) for d in dims]
    lf = [i for i in range(len(xs)) if i not in lc and i not in lb]
    rf = [i for i in range(len(ys)) if i not in rc and i not in rb]
    size = lambda s, ax: int(np.prod([s[i] for i in ax], dtype=np.int64))
    return (lb + lf + lc, rb + rc + rf,
            (size(xs, lb), size(xs, lf), size(xs, lc), size(ys, rf)))


class OtCorrelations:
    """One party's end of the two-party correlation generator."""

    def __init__(self, link: OtLink, rank: int, ring, prg):
        self.link, self.rank, self.ring, self.prg = link, rank, ring, prg
        self.k, self.dt = ring.bits, ring.dtype
        self.first = rank == 0
        self.seconds = 0.0
        self.he = HeMatmul(link, self._rand)     # keys made on the first HE triple

    def _rand(self, shape, dtype=None) -> np.ndarray:
        return _fill(self.prg, np.empty(tuple(int(s) for s in shape), dtype or self.dt))

    def _timed(fn):
        def wrapped(self, *a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(self, *a, **kw)
            finally:
                self.seconds += time.perf_counter() - t0
        wrapped.__doc__ = fn.__doc__
        return wrapped

    # ---- elementwise -------------------------------------------------------------------
    def _both_ways(self, x, y, n, widths, fold=False):
        """Both cross products of a symmetric batch: my x with the peer's y, and back."""
        return self.link.cross(x, y, n, widths, peer_shape=x.shape, fold=fold)

    def _split(self, x, y, n, widths, fold=False):
        """Shares of the products of the two parties' private values, element by element:
        x (N, L) this party's bits, y (N, L', n) its values (the same products either way
        round). Party 0 receives for the first half of the elements, party 1 for the
        second, so both send about the same bytes."""
        N = x.shape[0]
        h = N // 2
        if h == 0:                      # one element: party 0 receives
            if self.first:
                return self.link.cross(x, None, n, widths, fold=fold)[0]
            return self.link.cross(None, y, n, widths, peer_shape=x.shape, fold=fold)[1]
        L = x.shape[1]
        if self.first:
            mine, theirs = self.link.cross(x[:h], y[h:], n, widths, peer_shape=(N - h, L),
                                           fold=fold)
            return np.concatenate([mine, theirs])
        mine, theirs = self.link.cross(x[h:], y[:h], n, widths, peer_shape=(h, L), fold=fold)
        return np.concatenate([theirs, mine])

    def _rows(self, L, n=1):
        return max(1, min(OT_BATCH // L, WORDS_BATCH // (L * n)))

    @_timed
    def mul(self, n: int):
        """(a_i, b_i, c_i) with c = ab: Gilboa both ways (see the module docstring)."""
        k = self.k
        a, b = self._rand((n,)), self._rand((n,))
        c = a * b
        widths = k - np.arange(k)
        step = self._rows(k)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            y = b[s].astype(np.uint64)[:, None, None]
            mine, theirs = self._both_ways(_bits(a[s], k), y, 1, widths, fold=True)
            mine += theirs
            c[s] += mine[:, 0].astype(self.dt)
        return a, b, c

    @_timed
    def square(self, n: int):
        """(a_i, c_i) with c = a^2: one cross term a0 a1, doubled."""
        k = self.k
        a = self._rand((n,))
        c = a * a
        widths = k - np.arange(k)
        step = self._rows(k)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            x = _bits(a[s], k)
            p = self._split(x, a[s].astype(np.uint64)[:, None, None], 1, widths, fold=True)
            c[s] += (p[:, 0] << np.uint64(1)).astype(self.dt)
        return a, c

    @_timed
    def and_(self, n: int):
        """(a_i, b_i, c_i) over k-bit words with c = a & b: 1-bit products both ways."""
        k = self.k
        a, b = self._rand((n,)), self._rand((n,))
        c = a & b
        widths = np.ones(k, np.int64)
        step = self._rows(k)
        one = np.uint64(1)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            y = _bits(b[s], k).astype(np.uint64)[:, :, None]
            mine, theirs = self._both_ways(_bits(a[s], k), y, 1, widths)
            x = (mine[:, :, 0] ^ theirs[:, :, 0]) & one
            c[s] ^= _weighted(x, k).astype(self.dt)
        return a, b, c

    @_timed
    def and2(self, n: int):
        """(a_i, b_i, b'_i, c_i, c'_i) over k-bit words with c = a & b, c' = a & b': as
        and_, each bit of a choosing one OT that carries the bits of both b and b'."""
        k = self.k
        a, b, b2 = (self._rand((n,)) for _ in range(3))
        c, c2 = a & b, a & b2
        widths = np.ones(k, np.int64)
        step = self._rows(k, 2)
        one = np.uint64(1)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            y = np.stack([_bits(b[s], k), _bits(b2[s], k)], axis=2).astype(np.uint64)
            mine, theirs = self._both_ways(_bits(a[s], k), y, 2, widths)
            x = (mine ^ theirs) & one
            c[s] ^= _weighted(x[:, :, 0], k).astype(self.dt)
            c2[s] ^= _weighted(x[:, :, 1], k).astype(self.dt)
        return a, b, b2, c, c2

    @_timed
    def b2a(self, n: int):
        """(rb_i packed as np.packbits, ra_i): r = XOR of the parties' bits, [r] arithmetic."""
        rb = self._rand(((n + 7) // 8,), np.uint8)
        beta = np.unpackbits(rb, count=n).astype(np.uint64)
        ra = beta.copy()
        step = self._rows(1)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            p = self._split(beta[s, None].astype(np.uint8), beta[s, None, None], 1, [self.k])
            ra[s] -= p[:, 0, 0] << np.uint64(1)
        return rb, ra.astype(self.dt)

    @_timed
    def trunc(self, n: int, m: int):
        """(r_i, s_i, w_i) as the dealer deals them: R = r + 2^(k-2) uniform,
        s = (r >> m) + 2^(k-2-m), w = msb(r) 2^(k-m); r made of k random shared bits."""
        k = self.k
        j = np.arange(k)
        widths = np.minimum(k, np.where(j >= m, k - j + m, k - j))
        r, s_, w = (np.empty(n, self.dt) for _ in range(3))
        step = self._rows(k)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            beta = self._rand((s.stop - s.start, k), np.uint8) & np.uint8(1)
            p = self._split(beta, beta.astype(np.uint64)[:, :, None], 1, widths)
            rho = beta.astype(np.uint64) - (p[:, :, 0] << np.uint64(1))
            r[s] = _weighted(rho, k).astype(self.dt)
            s_[s] = _weighted(rho, k, shift=m, lo=m).astype(self.dt)
            w[s] = (rho[:, k - 1] << np.uint64(k - m)).astype(self.dt)
        if self.first:
            r += self.dt(1 << (k - 2))
            s_ += self.dt(1 << (k - 2 - m))
        return r, s_, w

    @_timed
    def mux(self, n: int):
        """(b_i 0/1 uint8, v_i, u_i) with u = (b_0 ^ b_1)(v_0 + v_1): the bits b_i choose,
        the peer corrects with w_j = (1 - 2 b_j) v_j, both ways in one batch."""
        b = np.unpackbits(self._rand(((n + 7) // 8,), np.uint8), count=n)
        v = self._rand((n,))
        w = cross_operand(b, v).astype(np.uint64)
        cross = np.zeros(n, np.uint64)
        step = self._rows(1)
        for lo in range(0, n, step):
            s = slice(lo, min(n, lo + step))
            mine, theirs = self._both_ways(b[s, None], w[s, None, None], 1, [self.k])
            cross[s] = mine[:, 0, 0] + theirs[:, 0, 0]
        return b, v, mux_pieces(b, v, cross)

    @_timed
    def rot(self, n0: int, n1: int):
        """Random 1-out-of-16 OTs with 2-bit entries, n0 with party 0 sending and n1 with
        party 1 sending, both directions in the same batches, from 4 random IKNP OTs
        each (semi2k_ot_compare.py). Returns this party's pieces of either direction:
        the sender's (R words uint32, field v = R[v]; its output shares s, 2 bits,
        uint8), the receiver's (c, R[c]), uint8."""
        ns, nr = (n0, n1) if self.first else (n1, n0)
        R, s = np.empty(ns, np.uint32), self._rand((ns,), np.uint8) & np.uint8(3)
        c, rc = self._rand((nr,), np.uint8) & np.uint8(15), np.empty(nr, np.uint8)
        step = OT_BATCH // 4
        for lo in range(0, max(ns, nr), step):
            hs, hr = min(ns, lo + step), min(nr, lo + step)
            x = rot_choice_bits(c[lo:hr]) if hr > lo else None
            pads, theirs = self.link.random(x, 4 * max(0, hs - lo))
            if x is not None:
                rc[lo:hr] = rot_receiver_entry(pads[:, 0].reshape(-1, 4), c[lo:hr])
            if theirs is not None:
                p0, p1 = theirs
                R[lo:hs] = rot_sender_table(p0[:, 0].reshape(-1, 4), p1[:, 0].reshape(-1, 4))
        mine = (R, s), (c, rc)
        return mine if self.first else mine[::-1]

    # ---- dot ---------------------------------------------------------------------------
    @_timed
    def dot(self, xs, ys, dims, b: Optional[np.ndarray] = None):
        """(A_i, B_i, C_i) with C = dot_general(A, B, dims); b: a kept B_i to reuse."""
        k = self.k
        a = self._rand(xs)
        b = self._rand(ys) if b is None else b
        c = ring_dot_general(a, b, dims, k)
        pa, pb, (Bt, M, K, N) = _canonical(xs, ys, dims)
        A = np.transpose(a, pa).reshape(Bt, M, K).astype(np.uint64)
        B = np.transpose(b, pb).reshape(Bt, K, N).astype(np.uint64)
        cross = np.zeros((Bt, M, N), np.uint64)
        if use_he(M, K, N, k):
            for bt in range(Bt):
                cross[bt] = self.he.cross(A[bt], B[bt])
            c += cross.reshape(c.shape).astype(self.dt)
            return a, b, c
        widths = k - np.arange(k)
        rows = max(1, WORDS_BATCH // (k * K * max(N, 1)))
        for bt in range(Bt):
            for lo in range(0, M, rows):
                hi = min(M, lo + rows)
                x = _bits(A[bt, lo:hi], k)                               # (rows K, k)
                y = np.broadcast_to(B[bt][None], (hi - lo, K, N)).reshape(-1, 1, N)
                mine, theirs = self._both_ways(x, y, N, widths, fold=True)
                mine += theirs
                cross[bt, lo:hi] += mine.reshape(hi - lo, K, N).sum(axis=1, dtype=np.uint64)
        c += cross.reshape(c.shape).astype(self.dt)
        return a, b, c
