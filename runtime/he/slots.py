"""Sums of plaintext-ciphertext products in the NTT domain as float64 BLAS matrix
products (numpy releases the GIL here; SEAL's multiply_plain holds it).

In NTT form a polynomial product is a product slot by slot (one slot per limb l and
evaluation point x), so for a fixed slot the sums over k blocks of a block matrix
product are an ordinary matrix product modulo p_l:
    C[m, n](x) = sum_k A[m, k](x) B[k, n](x)   (mod p_l).
modmatmul does it for a batch of slots. Exactness: residues below 2^60 are split into
three 20-bit digits, x = x0 + 2^20 x1 + 2^40 x2; the digit products summed over k are
below k 2^40, and the sums S_w = sum_{u+v=w} X_u Y_v below 3 k 2^40 <= 2^53 for
k <= 2048, so every float64 GEMM and sum is an exact integer. Then
    C = sum_w S_w 2^(20 w)   (mod p)
by Horner's rule, where x 2^20 (x < p) = x_hi 2^60 + x_lo 2^20 with x_hi = x >> 40,
and 2^60 = c (mod p), c = 2^60 - p (SEAL's 60-bit primes are just below 2^60: c < 2^20),
so x_hi c + x_lo 2^20 + S_w < 2^38 + 2^60 + 2^55 < 2p: one conditional subtraction
reduces it (no division).
The nine digit products are one GEMM per slot: the left digits stacked as rows
[X0; X1; X2] (3m x k), the right ones as columns [Y0 | Y1 | Y2] (k x 3n), product block
(u, v) = X_u Y_v. Cost: 9 m k n multiply-adds
per slot, ~20 GMAC/s on this machine (small GEMMs).
"""
from __future__ import annotations

import numpy as np

MAX_K = 2048
_M20 = np.uint64((1 << 20) - 1)
_M40 = np.uint64((1 << 40) - 1)


def slot_products(As, Bs, pk, primes, Kb, out=None, step=128):
    """Per (m, n) block, both polynomials, in the NTT domain: (2, Mb, Nb, 2, L, N),
        Y = sum_k (A mod t)_k Bh_k + Ah_k Bl_k + u_Y pk,    Z = sum_k Al_k Bl_k + u_Z pk.
    Slot-major inputs (built so that no transposition is needed here):
    As (L, N, Mb, 3 Kb + 2 Nb): columns A mod t | Ah | u_Y | Al | u_Z (a fresh u per
    output); Bs (L, N, 2 Kb, Nb, 2): rows Bh | Bl; pk (2, L, N): the peer's public key.
    The u pk terms (the re-randomisation) ride in the same GEMMs as Nb more columns of
    the left matrix against a block-diagonal of pk on the right. The right matrix of a
    slot batch, rows Bh | Bl | pk's block-diagonal, is split into digits once for Y and
    Z (Z's rows are a slice of it), in a small reused buffer (the digits of all
    of Bs would be 3x its size: fresh memory costs more than the split on this VM)."""
    L, NP, Mb, _ = As.shape
    Nb = Bs.shape[3]
    if out is None:
        out = np.empty((2, Mb, Nb, 2, L, NP), np.uint64)
    rows = 2 * Kb + Nb
    right = np.zeros((step, rows, 3, Nb, 2))
    tmp = np.empty((step, 2 * Kb, Nb, 2), np.uint64)
    pkd = _digits(pk)                                       # (2, L, N) each
    for l, p in enumerate(primes):
        for x0 in range(0, NP, step):
            xs = slice(x0, min(NP, x0 + step))
            s = xs.stop - xs.start
            R = right[:s]
            _split(Bs[l, xs], R[:, :2 * Kb], tmp[:s])
            for v in range(3):
                for j in range(Nb):
                    R[:, 2 * Kb + j, v, j] = pkd[v][:, l, xs].T
            R = R.reshape(s, rows, 6 * Nb)
            for z, (c0, c1), (r0, r1) in ((0, (0, 2 * Kb + Nb), (0, rows)),
                                          (1, (2 * Kb + Nb, 3 * Kb + 2 * Nb), (Kb, rows))):
                prod = _combine(np.matmul(_left(As[l, xs, :, c0:c1]), R[:, r0:r1]),
                                Mb, 2 * Nb, int(p))
                out[z, :, :, :, l, xs] = prod.reshape(s, Mb, Nb, 2).transpose(1, 2, 3, 0)
    return out


def check_primes(primes) -> None:
    for p in primes:
        if not (1 << 59) < int(p) < (1 << 60) or (1 << 60) - int(p) >= 1 << 20:
            raise ValueError("HE: slot products need primes in (2^60 - 2^20, 2^60)")


def _digits(x: np.ndarray):
    return [(x & _M20).astype(np.float64), ((x >> np.uint64(20)) & _M20).astype(np.float64),
            (x >> np.uint64(40)).astype(np.float64)]


def _split(x, dst, tmp) -> None:
    """dst[:, :, v] = digit v of x (x, tmp (s, k, ...) uint64; dst (s, k, 3, ...))."""
    np.bitwise_and(x, _M20, out=tmp)
    dst[:, :, 0] = tmp
    np.right_shift(x, np.uint64(20), out=tmp)
    dst[:, :, 1] = np.bitwise_and(tmp, _M20, out=tmp)
    dst[:, :, 2] = np.right_shift(x, np.uint64(40), out=tmp)


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
