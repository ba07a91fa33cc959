"""SEAL's negacyclic NTT, bit for bit, in numba kernels that run without the GIL.

SEAL holds the GIL in every call, so the two in-process parties' NTTs run one after
the other; these kernels let them overlap, and they skip the work that the coefficient
encoding makes useless (encoding.py: an A block has m_w k_w nonzero coefficients of N).

What SEAL computes (Evaluator.transform_to_ntt, SEAL 4.x), for each prime p of the
level: a(X) mod (X^N + 1) evaluated at the odd powers of a primitive 2N-th root psi,
in bit-reversed order,
    NTT(a)[i] = a(psi^(2 brv(i) + 1))  (mod p),  brv = the log2(N)-bit reversal,
with psi = NTT(X)[0]; context.py reads psi from SEAL's NTT of X and checks a random
polynomial and a sparse one against SEAL's transform when the context is made. The
algorithm is Harvey's Cooley-Tukey butterfly (values kept below 4p, Shoup's
precomputed quotients for the multiplications by root powers: p < 2^60, so 4p < 2^62).

Pruning (forward only): when every nonzero coefficient sits at a position whose bits in
zmask are 0, a butterfly whose offset within its block has a zmask bit set has two
zero inputs and is skipped, and a stage whose own bit is in zmask only copies
(x, 0) -> (x, x). For an A block of shape (8, 16, 64) at N = 8192 that is 16,576
butterflies and 8,064 copies instead of 53,248 butterflies.

inverse_ntt, for the responses: Gentleman-Sande with the inverse root powers, the
factor 1/N folded in at the end.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .slots import _mulhi


def _brv(i: int, bits: int) -> int:
    return int(format(i, f"0{bits}b")[::-1], 2)


class NttTables:
    """Root powers of one level: psi[l] (SEAL's), bit-reversed, with Shoup quotients."""

    def __init__(self, primes, psis, N: int):
        self.N, self.primes = N, np.asarray(primes, np.uint64)
        bits = N.bit_length() - 1
        L = len(primes)
        self.w = np.empty((L, N), np.uint64)
        self.ws = np.empty((L, N), np.uint64)
        self.iw = np.empty((L, N), np.uint64)
        self.iws = np.empty((L, N), np.uint64)
        self.ninv = np.empty((L, 2), np.uint64)
        for l, (p, psi) in enumerate(zip(map(int, primes), map(int, psis))):
            ipsi = pow(psi, -1, p)
            pw = [pow(psi, _brv(i, bits), p) for i in range(N)]
            ipw = [pow(ipsi, _brv(i, bits), p) for i in range(N)]
            self.w[l] = pw
            self.ws[l] = [(v << 64) // p for v in pw]
            self.iw[l] = ipw
            self.iws[l] = [(v << 64) // p for v in ipw]
            ninv = pow(N, -1, p)
            self.ninv[l] = (ninv, (ninv << 64) // p)

    def forward(self, x: np.ndarray, zmask: int = 0) -> np.ndarray:
        """In place: x (..., L, N) uint64 coefficients (each < its prime) -> NTT form."""
        flat = _flat(x, self.primes.size, self.N)
        low = zmask & -zmask if zmask else self.N      # valid offsets come in runs of low
        _forward(flat, self.w, self.ws, self.primes, np.uint64(zmask), low)
        return x

    def forward_plain(self, coeffs: np.ndarray, out: np.ndarray, t: int,
                      zmask: int = 0) -> np.ndarray:
        """Plaintexts to NTT form: coeffs (A, B, N) in [0, t), lifted to (-t/2, t/2] as
        SEAL lifts them for a plaintext product, into out (A, B, L, N) (a view will do)."""
        if coeffs.dtype != np.uint64 or out.dtype != np.uint64 or coeffs.ndim != 3 \
                or out.shape != coeffs.shape[:2] + (self.primes.size, self.N):
            raise ValueError("HE: forward_plain operands of unexpected shapes")
        low = zmask & -zmask if zmask else self.N
        _forward_plain(coeffs, out, self.w, self.ws, self.primes, np.uint64(t),
                       np.uint64(zmask), low)
        return out

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """In place: x (..., L, N) uint64 in NTT form (each < its prime) -> coefficients."""
        flat = _flat(x, self.primes.size, self.N)
        _inverse(flat, self.iw, self.iws, self.ninv, self.primes)
        return x


def _flat(x: np.ndarray, L: int, N: int) -> np.ndarray:
    if x.dtype != np.uint64 or not x.flags.c_contiguous or x.shape[-2:] != (L, N):
        raise ValueError("HE: NTT operands must be contiguous (..., L, N) uint64")
    return x.reshape(-1, L, N)


@njit(inline="always")
def _mulshoup(y, r, rs, p):
    """r y mod p, in [0, 2p), for y < 2^64 (Shoup: rs = floor(r 2^64 / p))."""
    return r * y - _mulhi(y, rs) * p


@njit(inline="always")
def _forward1(a, w, ws, l, p, zmask, low):
    """In place on one limb a (N,), entries < p (or < 0 nowhere: uint64)."""
    N = a.size
    two_p = p + p
    m = 1
    g = N >> 1
    while m < N:
        R = min(low, g)
        copy = (np.uint64(g) & zmask) != 0
        M = np.uint64(g - 1) & ~zmask & ~np.uint64(R - 1)       # run starts: submasks
        for i in range(m):
            off = 2 * i * g
            r = w[l, m + i]
            rs = ws[l, m + i]
            s = np.uint64(0)
            while True:
                base = off + int(s)
                if copy:
                    for jj in range(base, base + R):
                        X = a[jj]
                        if X >= two_p:
                            X -= two_p
                        a[jj] = X
                        a[jj + g] = X
                else:
                    for jj in range(base, base + R):
                        X = a[jj]
                        if X >= two_p:
                            X -= two_p
                        T = _mulshoup(a[jj + g], r, rs, p)
                        a[jj] = X + T
                        a[jj + g] = X - T + two_p
                s = (s - M) & M                          # the next submask; 0: done
                if s == 0:
                    break
        m <<= 1
        g >>= 1
    for jj in range(N):
        v = a[jj]
        if v >= two_p:
            v -= two_p
        if v >= p:
            v -= p
        a[jj] = v


@njit(nogil=True, cache=True)
def _forward(x, w, ws, primes, zmask, low):
    cnt, L, N = x.shape
    for c in range(cnt):
        for l in range(L):
            _forward1(x[c, l], w, ws, l, primes[l], zmask, low)


@njit(nogil=True, cache=True)
def _forward_plain(coeffs, out, w, ws, primes, t, zmask, low):
    A, B, N = coeffs.shape
    L = primes.size
    half = t >> np.uint64(1)
    buf = np.empty(N, np.uint64)              # contiguous: out may be any view
    for a in range(A):
        for b in range(B):
            for l in range(L):
                shift = primes[l] - t
                for j in range(N):
                    v = coeffs[a, b, j]
                    buf[j] = v + shift if v >= half else v
                _forward1(buf, w, ws, l, primes[l], zmask, low)
                out[a, b, l, :] = buf


@njit(nogil=True, cache=True)
def _inverse(x, iw, iws, ninv, primes):
    cnt, L, N = x.shape
    for c in range(cnt):
        for l in range(L):
            a = x[c, l]
            p = primes[l]
            two_p = p + p
            g = 1
            m = N >> 1
            while m >= 1:
                for i in range(m):
                    off = 2 * i * g
                    r = iw[l, m + i]
                    rs = iws[l, m + i]
                    for jj in range(off, off + g):
                        X = a[jj]
                        Y = a[jj + g]
                        u = X + Y
                        if u >= two_p:
                            u -= two_p
                        a[jj] = u
                        a[jj + g] = _mulshoup(X - Y + two_p, r, rs, p)
                m >>= 1
                g <<= 1
            n, ns = ninv[l, 0], ninv[l, 1]
            for jj in range(N):
                v = _mulshoup(a[jj], n, ns, p)
                if v >= p:
                    v -= p
                a[jj] = v
