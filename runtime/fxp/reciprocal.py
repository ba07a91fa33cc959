"""1/x on secret fixed-point values: normalise, then Goldschmidt on [0.5, 1].

Goldschmidt for 1/m, m in [0.5, 1]: y0 = 4(sqrt(3) - 1) - 2m (|1 - m y0| <= 0.072, the
best start of slope -2, which needs no truncation), e0 = 1 - m y0;
y_{i+1} = y_i (1 + e_i), e_{i+1} = e_i^2, so y3 = (1 - e0^8)/m (error < 1e-9). Both
products of a step are independent: one round each.
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from .exp_log import work_scale
from .normalize import normalize
from .poly import enc, mul_round, select_const, step

Y0 = 4 * (3 ** 0.5 - 1)    # y0 = Y0 - 2m: max |1 - m y0| at m = 1 and m = Y0/4 equal


def recip_unit(P: Protocol, m: Share, w: int, first=None, out_shift=None) -> Share:
    """~1/m for m in [0.5, 1] at scale w (result in [1, 2] at scale w).

    first: optional public or secret factor multiplied into y0 (e.g. a sign, in the
    round that computes m^2, so it costs no round); out_shift: extra right shift of the
    result, fused into the last truncation. 4 rounds of products + truncations,
    6 products (7 with `first`), 7 truncations."""
    dt = P.ring.dtype
    y0 = B.sub(P, enc(Y0, w, dt), B.add(P, m, m))
    extra = [(first, y0, None)] if first is not None else []
    res = mul_round(P, [(m, m, w), (m, enc(Y0, w, dt), w)] + extra)
    m2, c0m = res[:2]
    if first is not None:
        y0 = res[2]
    e = B.add(P, B.sub(P, enc(1, w, dt), c0m), B.add(P, m2, m2))     # 1 - m y0
    y = y0
    for i in range(3):
        last = i == 2
        items = [(y, B.add(P, e, enc(1, w, dt)), w + (out_shift or 0) if last else w)]
        if not last:
            items.append((e, e, w))
        res = mul_round(P, items)
        y = res[0]
        if not last:
            e = res[1]
    return y


def reciprocal(P: Protocol, x: Share, frac: int, options) -> Share:
    """1/x for either sign: |x| = m 2^(e+1-f) with m in (0.5, 1] (normalize on the ones'
    complement of negatives), 1/x = sign (1/m) 2^(f-e-1), 1/m by recip_unit; the sign,
    2^(K-e) and |x| 2^(K-e) come from one product tree of selected constants.

    Domain: every valid x != 0. |x| >= 2^(f+2) gives 0 (the true value is below 1/4
    ulp); x = 0 gives 2^f, like one ulp (1/x saturates). Working scale
    min(w, k - 4 - (2f+1)) = 23 at k = 64, f = 18: relative error 2e-7, plus 1 ulp.
    Measured on [0.1, 100]: max abs err 1.5e-4, all but 5e-6 of it the rounding of the
    input at x = 0.1 (2^-19 / 0.01); max rel err 3.7e-4 (one ulp at 1/100).
    Cost: normalize (a2b, 6-round OR, 9 bit conversions), 18 products, 9 truncations;
    aby3: 29 rounds, 748 bytes per element; semi2k: 28 rounds, 641 bytes."""
    m, fout, w, K = _normalized(P, x, frac)
    y = recip_unit(P, m, w)
    (out,) = mul_round(P, [(y, fout, K + 1 + w - 2 * frac)])
    return out


def reciprocal_parts(P: Protocol, x: Share, frac: int, options):
    """1/x as two factors (r, s): r ~ 1/m in [1, 2] at f bits and s = +-2^d read at
    f + 4 bits, so that a / x = trunc(trunc(a r, f) s, f + 4) for any a (the compiler
    writes those two products, compiler/lower/rules_math.py). 1/x at f bits is
    absolute: 1/2e4 is 13 ulps, 1/6e5 is 0, so a / x lost its relative precision
    exactly where x is large (3e5 / 6e5 gave 0); a r keeps a's bits and s only shifts
    them. Ranges (k = 64, f = 18): |x| < 2^(f+4) = 2^22 (larger x: s = 0), |a| < 2^25
    (a r at 2f bits, r <= 2), |a / x| < 2^22 (a r s before its truncation is
    a/x 2^(2f+4)). Cost: reciprocal's, its last product moved into the caller's (one
    more product of a's size, one more round)."""
    m, fout, w, _ = _normalized(P, x, frac, PARTS_EXTRA)
    return recip_unit(P, m, w, out_shift=w - frac), fout


def reciprocal_parts_public(ring, x, frac: int):
    """reciprocal_parts of a public ring array, in the clear: the same r (1/m at f bits)
    and s (+-2^d, 0 for |x| >= 2^(f+4) and for x = 0)."""
    K = 2 * frac + 1 + PARTS_EXTRA
    X = ring.signed(x).astype(np.int64)
    mag = np.abs(X).astype(np.float64)
    e = np.floor(np.log2(np.maximum(mag, 1.0))).astype(np.int64)
    e += (np.exp2(e + 1) <= mag).astype(np.int64) - (np.exp2(e) > mag).astype(np.int64)
    ok = (X != 0) & (e <= K)
    d = np.where(ok, K - e, 0)
    m = mag * np.exp2(d - K - 1)                                   # in [0.5, 1)
    r = np.where(ok, np.round(2.0 ** frac / np.where(ok, m, 1.0)), 0.0).astype(np.int64)
    s = np.where(ok, np.sign(X) * np.left_shift(np.int64(1), d), 0).astype(np.int64)
    return r.astype(ring.dtype), s.astype(ring.dtype)


#: reciprocal_parts normalises over 2 more bits than reciprocal: divisors up to 2^(f+4)
#: (2^22) at the price of quotients below 2^(k-4-2f-4+...) = 2^22 (s is read at f + 4)
PARTS_EXTRA = 2


def _normalized(P: Protocol, x: Share, frac: int, extra: int = 0):
    """(m, s, w, K): |x| 2^(d-K-1) = m in [0.5, 1) at scale w (0.5 for x = 0), and
    s = sign(x) 2^d (0 for |x| >= 2^(K+1-f)), K = 2f + 1 + extra."""
    k, dt, f = P.ring.bits, P.ring.dtype, frac
    K = 2 * f + 1 + extra                          # e > K: 1/x below 1/4 ulp (extra = 0)
    w = min(work_scale(P, f), k - 4 - K)           # y 2^K < 2^(k-2)
    nm = normalize(P, x, K, signed=True, zero=True, big=True)
    one = enc(1, 0, dt)
    fj = [select_const(P, dj, 1, 2.0 ** (2 ** j)) for j, dj in enumerate(nm.d)]
    while len(fj) < 6:
        fj.append(one)
    sg = B.sub(P, one, B.add(P, nm.sign, nm.sign))                 # 1 - 2s
    pos = B.sub(P, one, nm.sign)
    f01, f23, f45, xs, sb, zp = step(P, [], [
        (fj[0], fj[1], None), (fj[2], fj[3], None), (fj[4], fj[5], None),
        (x, sg, None), (sg, B.sub(P, one, nm.big), None), (nm.zero, pos, None)])
    f03, xa, fb = step(P, [], [(f01, f23, None), (f45, xs, None), (f45, sb, None)])
    xf, fout = step(P, [], [(f03, xa, None), (f03, fb, None)])       # |x| 2^d, +-2^d
    m = B.add(P, B.trunc(P, xf, K + 1 - w), B.mul(P, zp, enc(0.5, w, dt)))
    return m, fout, w, K
