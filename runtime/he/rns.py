"""SEAL's BFV modulus switch and plaintext scaling, bit for bit, in numba (no GIL).

mod_switch (Evaluator.mod_switch_to_next of a BFV ciphertext, SEAL's
divide_and_round_q_last): residues (c_0, .., c_{L-1}) of c mod q = p_0 .. p_{L-1} ->
round(c / p_{L-1}) mod p_i for i < L - 1, computed per prime as
    (c_i - (((c_{L-1} + h) mod p_{L-1}) - h)) p_{L-1}^-1   (mod p_i),  h = floor(p_{L-1} / 2).
add_scaled (Evaluator.add_plain / sub_plain at a level of modulus q): c0 +- round(q m / t)
at chosen positions, as SEAL rounds it:
    floor(q / t) m + floor(((q mod t) m + floor((t + 1) / 2)) / t)   (mod p_i).
Both are checked against SEAL when the context is made (context.py) and in the tests.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .slots import _mulhi, _reduce


class RnsTools:
    """Constants for switching from primes (p_0 .. p_{L-1}) to the first L - 1 and for
    scaling plaintexts by q' / t at the lower level (q' = p_0 .. p_{L-2})."""

    def __init__(self, top_primes, t: int):
        ps = [int(p) for p in top_primes]
        last = ps[-1]
        half = last >> 1
        low = ps[:-1]
        self.low = np.array(low, np.uint64)
        self.last = np.uint64(last)
        self.half = np.uint64(half)
        self.consts = np.array([[half % p, pow(last, -1, p), (pow(last, -1, p) << 64) // p]
                                for p in low], np.uint64)
        q = 1
        for p in low:
            q *= p
        if t & (t - 1) or q % t == 0:
            raise ValueError("HE: plaintext scaling needs t a power of two and q odd")
        self.t_bits = t.bit_length() - 1
        self.q_mod_t = np.uint64(q % t)
        self.q_div_t = np.array([(q // t) % p for p in low], np.uint64)

    def mod_switch(self, x: np.ndarray) -> np.ndarray:
        """x (..., L, n) residues (n positions of a coefficient-form polynomial) ->
        (..., L - 1, n) at the next level."""
        L = self.low.size + 1
        flat = np.ascontiguousarray(x).reshape(-1, L, x.shape[-1])
        out = np.empty((flat.shape[0], L - 1, x.shape[-1]), np.uint64)
        _mod_switch(flat, out, self.low, self.last, self.half, self.consts)
        return out.reshape(x.shape[:-2] + (L - 1, x.shape[-1]))

    def mod_switch_e2(self, x: np.ndarray, words: np.ndarray, out: np.ndarray) -> np.ndarray:
        """mod_switch of x (A, B, C, L, n) plus, before it, a centred binomial error
        e2 = popcount(w & (2^21 - 1)) - popcount((w >> 21) & (2^21 - 1)) per position
        from the random words (A, B, C, n); into out (A, B, C, L - 1, n) (views will do)."""
        L = self.low.size + 1
        if x.ndim != 5 or x.shape[3] != L or words.shape != x.shape[:3] + x.shape[4:] \
                or out.shape != x.shape[:3] + (L - 1, x.shape[4]):
            raise ValueError("HE: mod_switch_e2 operands of unexpected shapes")
        primes = np.concatenate([self.low, [self.last]]).astype(np.uint64)
        _mod_switch_e2(x, words, out, primes, self.half, self.consts)
        return out

    def add_scaled(self, c0: np.ndarray, m: np.ndarray, negate: bool) -> np.ndarray:
        """c0 (..., L - 1, n) +- round(q' m / t) for plaintext values m (..., n) < t;
        in place, returned."""
        Lo, n = self.low.size, c0.shape[-1]
        if c0.dtype != np.uint64 or not c0.flags.c_contiguous:
            raise ValueError("HE: add_scaled needs a contiguous uint64 operand")
        _add_scaled(c0.reshape(-1, Lo, n), np.ascontiguousarray(m, np.uint64).reshape(-1, n),
                    self.low, self.q_div_t, self.q_mod_t, self.t_bits, negate)
        return c0


@njit(inline="always")
def _c16(p):
    return ((np.uint64(1) << np.uint64(60)) - p) << np.uint64(4)


@njit(inline="always")
def _switch1(d, v, p, consts, i):
    """One residue d mod p_i of the switched value, v = (c_last + h) mod p_last."""
    tmp = v - p if v >= p else v                 # (c_last + h) mod p_last mod p_i
    hm = consts[i, 0]
    tmp = tmp - hm if tmp >= hm else tmp + p - hm
    d = d - tmp if d >= tmp else d + p - tmp
    r = consts[i, 1] * d - _mulhi(d, consts[i, 2]) * p       # Shoup: [0, 2p)
    return r - p if r >= p else r


@njit(nogil=True, cache=True)
def _mod_switch(x, out, low, last, half, consts):
    cnt, L, n = x.shape
    for c in range(cnt):
        for j in range(n):
            v = x[c, L - 1, j] + half
            if v >= last:
                v -= last
            for i in range(L - 1):
                out[c, i, j] = _switch1(x[c, i, j], v, low[i], consts, i)


@njit(inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(inline="always")
def _plus_error(d, e, p):
    """d + e mod p for a residue d < p and a small signed e (|e| < p)."""
    if e >= 0:
        s = d + np.uint64(e)
        return s - p if s >= p else s
    m = np.uint64(-e)
    return d - m if d >= m else d + p - m


@njit(nogil=True, cache=True)
def _mod_switch_e2(x, words, out, primes, half, consts):
    A, B, C, L, n = x.shape
    m21 = np.uint64((1 << 21) - 1)
    last = primes[L - 1]
    for a in range(A):
        for b in range(B):
            for c in range(C):
                for j in range(n):
                    w = words[a, b, c, j]
                    e = np.int64(_popcount(w & m21)) \
                        - np.int64(_popcount((w >> np.uint64(21)) & m21))
                    v = _plus_error(x[a, b, c, L - 1, j], e, last) + half
                    if v >= last:
                        v -= last
                    for i in range(L - 1):
                        d = _plus_error(x[a, b, c, i, j], e, primes[i])
                        out[a, b, c, i, j] = _switch1(d, v, primes[i], consts, i)


@njit(nogil=True, cache=True)
def _add_scaled(c0, m, low, q_div_t, q_mod_t, t_bits, negate):
    cnt, Lo, n = c0.shape
    half_t = np.uint64(1) << np.uint64(t_bits - 1)            # floor((t + 1) / 2), t even
    for c in range(cnt):
        for j in range(n):
            x = m[c, j]
            lo = q_mod_t * x
            hi = _mulhi(q_mod_t, x)
            s = lo + half_t
            hi += np.uint64(s < lo)
            fix = (hi << np.uint64(64 - t_bits)) | (s >> np.uint64(t_bits))
            for i in range(Lo):
                p = low[i]
                h = _mulhi(q_div_t[i], x)
                l = q_div_t[i] * x
                l2 = l + fix
                h += np.uint64(l2 < l)
                v = _reduce(h, l2, p, _c16(p))
                d = c0[c, i, j]
                if negate:
                    c0[c, i, j] = d - v if d >= v else d + p - v
                else:
                    s2 = d + v
                    c0[c, i, j] = s2 - p if s2 >= p else s2
