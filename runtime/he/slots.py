"""Sums of plaintext-ciphertext products in the NTT domain, slot by slot, as exact
integer arithmetic in a numba kernel (no GIL: the two in-process parties overlap here,
while SEAL's own calls hold it).

In NTT form a polynomial product is a product slot by slot (one slot per limb l and
evaluation point x), so for a fixed slot the sums over k blocks of a block matrix
product are an ordinary matrix product modulo p_l:
    C[m, n](x) = sum_k A[m, k](x) B[k, n](x)   (mod p_l).
slot_products does it for all slots at once: each product of two residues (< 2^60) is
a 128-bit integer (x86's 64 x 64 -> 128-bit multiply through an LLVM intrinsic), sums
of up to 65 of them (a longer sum is reduced every _RUN terms) stay below 2^127, and
one reduction per output brings them back mod p (SEAL's 60-bit primes are p = 2^60 - c
with c < 2^20, so 2^64 = 16 c (mod p): two folds and a conditional subtraction, no
division). Slots are taken in tiles of TILE consecutive evaluation points: the tile's
residues are copied slot-major into small buffers, so that every sum reads contiguous
memory; each A row is read once for both polynomials (c0, c1) of a product.

modmatmul is the plain reference (float64 GEMMs over 20-bit digits, exact), used by the
tests and by context.py's check of SEAL's NTT layout.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

MAX_K = 2048
TILE = 64                    # evaluation points per tile (NTT sizes are multiples of it)
_RUN = 64                    # products summed before a reduction: < 65 x 2^120 + p < 2^127
_M20 = np.uint64((1 << 20) - 1)
_M40 = np.uint64((1 << 40) - 1)


def check_primes(primes) -> None:
    for p in primes:
        if not (1 << 59) < int(p) < (1 << 60) or (1 << 60) - int(p) >= 1 << 20:
            raise ValueError("HE: slot products need primes in (2^60 - 2^20, 2^60)")


def _digits(x: np.ndarray):
    return [(x & _M20).astype(np.float64), ((x >> np.uint64(20)) & _M20).astype(np.float64),
            (x >> np.uint64(40)).astype(np.float64)]


def _left(X: np.ndarray) -> np.ndarray:
    """(s, m, k) residues -> (s, 3 m, k) float64: digit u in rows u m .. (u + 1) m."""
    if X.shape[2] > MAX_K:
        raise ValueError("HE: slot product longer than MAX_K")
    s, m, k = X.shape
    out = np.empty((s, 3, m, k))
    tmp = np.empty((s, m, k), np.uint64)
    np.bitwise_and(X, _M20, out=tmp)
    out[:, 0] = tmp
    np.right_shift(X, np.uint64(20), out=tmp)
    out[:, 1] = np.bitwise_and(tmp, _M20, out=tmp)
    out[:, 2] = np.right_shift(X, np.uint64(40), out=tmp)
    return out.reshape(s, 3 * m, k)


def _right(Y: np.ndarray) -> np.ndarray:
    """(s, k, n) residues -> (s, k, 3 n) float64: digit v in columns v n .. (v + 1) n."""
    return np.concatenate(_digits(Y), axis=2)


def _combine(P: np.ndarray, m: int, n: int, p: int) -> np.ndarray:
    """(s, 3 m, 3 n) digit products -> (s, m, n) residues mod p (module docstring)."""
    P = P.reshape(P.shape[0], 3, m, 3, n)
    pu = np.uint64(p)
    c = np.uint64((1 << 60) - p)
    acc = P[:, 2, :, 2].astype(np.uint64)          # S_4 < 3 k 2^40 < p
    hi, s_w = np.empty_like(acc), np.empty(acc.shape)
    for w in (3, 2, 1, 0):
        us = range(max(0, w - 2), min(2, w) + 1)
        np.add(P[:, us[0], :, w - us[0]], P[:, us[1], :, w - us[1]], out=s_w) \
            if len(us) > 1 else np.copyto(s_w, P[:, w, :, 0])
        for u in us[2:]:
            s_w += P[:, u, :, w - u]
        np.right_shift(acc, np.uint64(40), out=hi)
        hi *= c
        acc &= _M40
        acc <<= np.uint64(20)
        acc += hi
        acc += s_w.astype(np.uint64)                # < 2^38 + 2^60 + 2^55 < 2p
        np.minimum(acc, acc - pu, out=acc)          # acc - p wraps when acc < p
    return acc


def modmatmul(X: np.ndarray, Y: np.ndarray, p: int) -> np.ndarray:
    """(s, m, k) @ (s, k, n) uint64 residues mod p (< p) -> (s, m, n) mod p."""
    if Y.shape[1] > MAX_K:
        raise ValueError("HE: slot product longer than MAX_K")
    return _combine(np.matmul(_left(X), _right(Y)), X.shape[1], Y.shape[2], p)


def slot_products(As, Bs, pk, primes, out):
    """Per (m, n) block, both polynomials, in the NTT domain: out (2, Mb, Nb, 2, L, N),
        Y = sum_k (A mod t)_k Bh_k + Ah_k Bl_k + u_Y pk,    Z = sum_k Al_k Bl_k + u_Z pk.
    As (Mb, 3 Kb + 2 Nb, L, N): per m block the columns A mod t | Ah | Al | u_Y | u_Z (a
    fresh u per output); Bs (2, Kb, Nb, 2, L, N): Enc(Bh), Enc(Bl) per (k, n) block;
    pk (2, L, N): the peer's public key. All residues reduced mod primes[l] (checked
    by check_primes to be 2^60 - c, c < 2^20). out may be a view (matmul.py passes a
    transposed one). Cost: Mb Nb 2 (3 Kb + 2) multiply-adds per slot, ~1.4 ns each on
    this machine (512^3: 2.5 G per party, ~3.4 s), without the GIL."""
    Mb, C, L, NP = As.shape
    Kb, Nb = Bs.shape[1], Bs.shape[2]
    if C != 3 * Kb + 2 * Nb or Bs.shape != (2, Kb, Nb, 2, L, NP) or pk.shape != (2, L, NP) \
            or out.shape != (2, Mb, Nb, 2, L, NP) or NP % TILE:
        raise ValueError("HE: slot product operands of unexpected shapes")
    check_primes(primes)
    _slot_products(As, Bs, pk, np.asarray(primes, np.uint64), out)
    return out


@intrinsic
def _mulhi(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one mul/mulx on x86)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(prod, ir.Constant(i128, 64)), ir.IntType(64))
    return sig, codegen


@njit(inline="always")
def _mac(hi, lo, x, y):
    """(hi, lo) + x y as a 128-bit sum."""
    pl = x * y
    s = lo + pl
    return hi + _mulhi(x, y) + np.uint64(s < pl), s


@njit(inline="always")
def _reduce(hi, lo, p, c16):
    """(hi 2^64 + lo) mod p for hi < 2^63, p = 2^60 - c: 2^64 = 16 c (mod p), so fold
    hi 16 c (< 2^87) into lo, then the carry word (< 2^24) again, then 2^60 = c."""
    fl = hi * c16
    fh = _mulhi(hi, c16)
    xl = fl + lo
    fh += np.uint64(xl < fl)                     # x = fh 2^64 + xl, fh < 2^24
    g = fh * c16                                 # < 2^48
    x = xl + g
    if x < g:                                    # wrapped: + 2^64 = + 16 c, no new wrap
        x += c16
    x = (x >> np.uint64(60)) * (c16 >> np.uint64(4)) + (x & np.uint64((1 << 60) - 1))
    if x >= p:                                   # x < 2^60 + 2^24 < 2p
        x -= p
    return x


@njit(nogil=True, cache=True)
def _slot_products(As, Bs, pk, primes, out):
    Mb, C, L, NP = As.shape
    Kb, Nb = Bs.shape[1], Bs.shape[2]
    Bt = np.empty((TILE, Nb, 2, 2 * Kb), np.uint64)      # [slot, n, c0 | c1, Bh | Bl]
    Pt = np.empty((TILE, 2), np.uint64)
    At = np.empty((Mb, TILE, C), np.uint64)
    for l in range(L):
        p = primes[l]
        c16 = ((np.uint64(1) << np.uint64(60)) - p) << np.uint64(4)
        for x0 in range(0, NP, TILE):
            for h in range(2):
                for kb in range(Kb):
                    for nb in range(Nb):
                        for ci in range(2):
                            for t in range(TILE):
                                Bt[t, nb, ci, h * Kb + kb] = Bs[h, kb, nb, ci, l, x0 + t]
            for ci in range(2):
                for t in range(TILE):
                    Pt[t, ci] = pk[ci, l, x0 + t]
            for m in range(Mb):
                for j in range(C):
                    for t in range(TILE):
                        At[m, t, j] = As[m, j, l, x0 + t]
            for t in range(TILE):
                for nb in range(Nb):
                    for z in range(2):                   # Y: (A mod t | Ah) . (Bh | Bl)
                        a0 = 0 if z == 0 else 2 * Kb                   # Z: Al . Bl
                        b0 = 0 if z == 0 else Kb
                        n = 2 * Kb if z == 0 else Kb
                        u = 3 * Kb + z * Nb + nb
                        y0 = Bt[t, nb, 0]
                        y1 = Bt[t, nb, 1]
                        for m in range(Mb):              # c0 and c1 share A's loads
                            a = At[m, t]
                            h0, l0 = _mac(np.uint64(0), np.uint64(0), a[u], Pt[t, 0])
                            h1, l1 = _mac(np.uint64(0), np.uint64(0), a[u], Pt[t, 1])
                            for j0 in range(0, n, _RUN):
                                for j in range(j0, min(n, j0 + _RUN)):
                                    x = a[a0 + j]
                                    h0, l0 = _mac(h0, l0, x, y0[b0 + j])
                                    h1, l1 = _mac(h1, l1, x, y1[b0 + j])
                                if j0 + _RUN < n:             # a long sum: fold
                                    l0 = _reduce(h0, l0, p, c16)
                                    h0 = np.uint64(0)
                                    l1 = _reduce(h1, l1, p, c16)
                                    h1 = np.uint64(0)
                            out[z, m, nb, 0, l, x0 + t] = _reduce(h0, l0, p, c16)
                            out[z, m, nb, 1, l, x0 + t] = _reduce(h1, l1, p, c16)
