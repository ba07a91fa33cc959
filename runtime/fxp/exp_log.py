"""exp, log and log1p on secret fixed-point values (k-bit ring, f fractional bits).

Input and output scales may differ (out_frac): the compiler gives exp's result 26
fractional bits, and log's input 26 when the input is read by nothing else
(compiler/lower/input_formats.py). Working scale w = min(f + 10, (k - 8) / 2) (28 at
k = 64): internal values carry more bits than the output, so the output is right to
about one unit in its last place.
"""
from __future__ import annotations

import math

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from . import bits as T
from .batch import b2a_many, trunc_many
from .narrow import floor_slack, msb_narrow
from .normalize import normalize
from .poly import Poly, Powers, Tree, enc, fit, mul_round, run, select_const

LOG2E = 1.0 / math.log(2.0)


def work_scale(P: Protocol, frac: int) -> int:
    return max(frac, min(frac + 10, (P.ring.bits - 8) // 2))


def sum_bits(P: Protocol, bits) -> Share:
    """sum_j 2^j b_j (local)."""
    acc = bits[0]
    for j, b in enumerate(bits[1:], start=1):
        acc = B.add(P, acc, B.mul(P, b, enc(2 ** j, 0, P.ring.dtype)))
    return acc


# ---- exp -------------------------------------------------------------------------------

def _coarse(P: Protocol, f: int, tmax: int):
    """(b, eps, xmax): t_c = x round(log2(e) 2^b) at scale f + b, exact (no truncation),
    off from t = x log2(e) by at most eps for |t| <= tmax, free of wrap-around for
    |x| < xmax. The largest xmax with eps <= 0.05."""
    k = P.ring.bits
    for b in range(1, 24):
        c = round(LOG2E * 2 ** b)
        eps = (tmax + 1) * abs(c / 2 ** b - LOG2E)
        if eps <= 0.05:
            return b, eps, 2.0 ** (k - 2 - f) / c
    raise AssertionError("unreachable")


def exp(P: Protocol, x: Share, frac: int, options, out_frac: int = None) -> Share:
    """e^x, x at scale `frac`, result at scale `out_frac` (default: frac). Modes (option
    exp_mode): "squaring" (default in a 64-bit ring), "accurate" (default in a 32-bit
    ring) and "taylor"; see _exp_squaring, _exp_accurate and _exp_taylor."""
    # A 32-bit ring leaves the squarings too few working bits: "accurate" there.
    mode = options.get("exp_mode", "squaring" if P.ring.bits == 64 else "accurate")
    fo = frac if out_frac is None else out_frac
    if mode == "squaring":
        return _exp_squaring(P, x, frac, fo)
    if mode == "accurate":
        return _exp_accurate(P, x, frac, fo)
    if mode == "taylor":
        return _exp_taylor(P, x, frac, fo)
    raise ValueError(f"exp_mode must be 'squaring', 'accurate' or 'taylor', not {mode!r}")


def _squaring_scales(k: int, w: int, m: int, top: float, fo: int):
    """Scale of the input of squaring i (i < m) and of the result (index m): the largest
    <= w at which (e^(top / 2^(m-i)))^2 still fits below 2^(k-2) before its truncation."""
    return [min(w, int((k - 2 - 2 * top / 2 ** (m - i) * LOG2E) // 2)) for i in range(m)] + [fo]


def _exp_squaring(P: Protocol, x: Share, f: int, fo: int) -> Share:
    """e^x = p(x / 32)^32 [x >= -T], p the Chebyshev interpolant of degree 6 of e^z on
    [-T/32, 1/2] (relative error 2.4e-7 at T = 25), then 5 squarings, each at the
    largest scale at which e^16 still fits. The guard [x < -T] zeroes what lies below
    the output's resolution without a truncation: y = sum_j ((x + T - 2)_j >> (f + 1)) over the
    boolean addends of x + T - 2 (narrow.msb_narrow's local shift) is
    floor((x + T) / 2) - 1 - c mod 2^32, 0 <= c <= s = floor_slack (aby3: 2, semi2k: 1),
    a small integer for |x| < 4e9 whose sign a 32-bit adder on packed words gives.
    y < 0 for x < 2 - T, y >= 0 for x >= 2 + 2s - T; between, either answer is right,
    as T = ceil((fo + 1) ln 2) + 2 + 2s puts e^x < 2^-(fo+1) there (T = 25 for aby3 at
    fo = 26). The polynomial is garbage far below -T, and the guard multiplies it by
    exactly 0.
    Domain (k = 64): -4e9 < x <= 16; beyond 16 the squarings overflow (undefined; the
    "accurate" mode goes to 22.18).
    Error: 3.6e-6 relative (the polynomial's error amplified by the squarings; at most
    2.4e-7 times 32 a priori, 3.6e-6 tested: test_exp_error_model) + about 2^-18 e^(x/2)
    (the last squaring's input e^(x/2) is at scale 19 so that e^16 fits) + one output
    ulp. Measured figures against float64 and SPU: docs/precision.md.
    Cost: the guard: 7 AND rounds (aby3; semi2k 6) on words of 2 elements + 1 bit
    conversion; polynomial: 3 products, 4 truncations; 5 squarings (fused mul_trunc);
    1 product with the guard. aby3: 26 rounds, 304 bytes per element (busiest party);
    semi2k: 25 rounds, 248 bytes."""
    k, dt = P.ring.bits, P.ring.dtype
    m = 5
    top = min(16.0, (k - 2 - 2 * f) * math.log(2.0) - 0.5, (k - 3 - fo) * math.log(2.0))
    slack = floor_slack(P)
    T = math.ceil((fo + 1) * math.log(2.0)) + 2 + 2 * slack
    y = B.add(P, x, enc(T - 2, f, dt))                   # floor(y / 2^(f+1)) - 1 - c < 0
    if k - (f + 1) >= 32:
        neg = msb_narrow(P, y, 32, shift=f + 1)          # [x < -T], no truncation round
    else:                                                # a 32-bit ring: truncate first
        neg = msb_narrow(P, B.trunc(P, y, f + 1), 32)
    keep = B.sub(P, enc(1, 0, dt), neg)

    w = work_scale(P, f)
    sh = w - f - m
    z = B.lshift(P, x, sh) if sh >= 0 else B.trunc(P, x, -sh)   # x / 2^m at scale w
    c = fit(np.exp, -T / 2 ** m, top / 2 ** m, 6)
    # p = (c0 + c1 z + c2 z^2) + z^3 (c3 + c4 z + c5 z^2 + c6 z^3): 3 products
    pw = Powers(z, 3, w)
    run(P, [pw])
    h = B.trunc(P, pw.combine(P, c[3:], w), w)
    (hz3,) = mul_round(P, [(h, pw.p[3], None)])
    low = pw.combine(P, c[:3], w)
    scales = _squaring_scales(k, w, m, top, fo)
    v = B.trunc(P, B.add(P, low, hz3), 2 * w - scales[0])
    for i in range(m):
        (v,) = mul_round(P, [(v, v, 2 * scales[i] - scales[i + 1])])
    return B.mul(P, v, keep)


def _exp_accurate(P: Protocol, x: Share, f: int, fo: int) -> Share:
    """e^x = 2^t, t = x log2(e) = n + r, n integer, r in [0, 1] (up to eps = 0.043).

    - n: from the bits (one a2b) of a coarse t_c = x round(log2(e) 2^8) + 2^5 (exact, no
      truncation): bits u_0..u_5 give n + 32, the sign bit says t < -32 (result 0).
    - r = t - n exactly: x round(log2(e) 2^s) - n 2^s (s = k - 4 - f) wraps mod 2^k as it
      likes, the difference is small; one truncation brings it to scale w.
    - 2^r: degree-6 polynomial on [-eps, 1 + eps] (relative error 5e-9), evaluated as
      L + r^4 H (Poly), its products riding in the rounds of the 2^n products.
    - 2^n: public constants selected by the bits of n, multiplied as integers (no
      truncation): G = prod_{j<5} (u_j ? 2^(2^j) : 1) [t >= -32] = 2^(n mod 32);
      q = 2^r G, q+ = q u_5 (n >= 0), q- = q - q+ (n < 0: stands for 2^(r + n + 32));
      e^x = trunc(q+, w - f) + trunc(q-, w - f + 32).
    Domain (k = 64, f = 18): -4.7e10 < x < 22.18 (= 32 ln 2). x < -22.2 gives 0 (within
    2 ulp); x >= 22.18 overflows and |x| > 4.7e10 wraps (both undefined).
    Error: 1e-8 relative + 1 output ulp against e^(x rounded to 2^-f). Measured on
    [-8, 4] (fo = 26): max abs err 9.7e-5, all of it the 2^-19 rounding of the input
    (e^4 2^-19 = 1.0e-4); max rel err 4.4e-5 = one 26-bit ulp at e^-8.
    Cost: 1 a2b, 7 bit conversions, 11 products, 8 truncations; aby3: 20 rounds, 610
    bytes per element (busiest party); semi2k: 19 rounds, 433 bytes."""
    k, dt = P.ring.bits, P.ring.dtype
    nb = max(1, math.ceil(math.log2(f + 2)))                 # n in [-2^nb, 2^nb): 5 bits at f=18
    N = 2 ** nb
    w = min(work_scale(P, f), k - 2 - N)                     # p 2^(n) < 2^(k-2) for n < N
    b, eps, _ = _coarse(P, f, N)
    sc = f + b                                               # scale of t_c
    tc = B.mul(P, x, enc(round(LOG2E * 2 ** b), 0, dt))
    vb = T.a2b(P, B.add(P, tc, enc(N, sc, dt)))
    u = b2a_many(P, [T.bit(vb, sc + j, dt) for j in range(nb + 1)] + [T.bit(vb, k - 1, dt)])
    u, neg = u[:nb + 1], u[nb + 1]
    n = B.add(P, sum_bits(P, u), enc(-N, 0, dt))
    s = k - 4 - f                                            # |r| 2^(f+s) < 2^(k-2)
    rr = B.sub(P, B.mul(P, x, enc(LOG2E, s, dt)), B.mul(P, n, enc(1, f + s, dt)))
    r = B.trunc(P, B.add(P, rr, enc(-0.5, f + s, dt)), f + s - w)   # r - 1/2 at scale w

    pw = Poly(P, r, fit(lambda z: np.exp2(z + 0.5), -0.5 - eps, 0.5 + eps, 6), w)
    g = Tree([select_const(P, u[j], 1, 2.0 ** (2 ** j)) for j in range(nb)]
             + [B.sub(P, enc(1, 0, dt), neg)])               # 2^(n mod N) [t >= -N]
    run(P, [pw, g])
    p = B.trunc(P, pw.value(), w)                             # 2^r at scale w
    (pg,) = mul_round(P, [(p, g.value, None)])                # 2^(r + n mod N) at scale w
    (pos,) = mul_round(P, [(pg, u[nb], None)])                # the part with n >= 0
    y_pos, y_neg = trunc_many(P, [pos], w - fo) + trunc_many(P, [B.sub(P, pg, pos)], w - fo + N)
    return B.add(P, y_pos, y_neg)


def _exp_taylor(P: Protocol, x: Share, f: int, fo: int) -> Share:
    """e^x = p(x / 2^8)^(2^8), p the degree-4 Taylor polynomial of e^z, then 8 squarings;
    each squaring runs at the largest scale at which e^16 still fits, so the last ones
    drop towards scale f (one truncation per squaring either way).
    Domain (k = 64, f = 18): x in [-600, 16]. Below about -640 p(z) > 1 and the squarings
    blow up (garbage, e.g. -1e4 masks); above 16 the last squarings overflow.
    Error: 2.5e-6 relative + 1 ulp; measured on [-8, 4]: max abs err 1.3e-4 (at 4).
    Cost: 11 products, 12 truncations, no comparison; aby3: 21 rounds, 284 bytes per
    element; semi2k: 21 rounds, 200 bytes. About SPU's own exp."""
    k = P.ring.bits
    w = work_scale(P, f)
    m = max(1, min(8, w - f))                                # z = x / 2^m keeps all of x's bits
    top = min(16.0, (k - 2 - 2 * f) * math.log(2.0) - 0.5)     # e^top 2^(2f) < 2^(k-2)
    z = B.lshift(P, x, w - f - m)
    pw = Powers(z, 4, w)
    run(P, [pw])
    # scale of the input of squaring i: y = e^(top / 2^(m-i)) needs y^2 2^(2s) < 2^(k-2)
    scales = _squaring_scales(k, w, m, top, fo)
    y = B.trunc(P, pw.combine(P, [1.0 / math.factorial(i) for i in range(5)], w), 2 * w - scales[0])
    for i in range(m):
        (y,) = mul_round(P, [(y, y, 2 * scales[i] - scales[i + 1])])
    return y


# ---- log -------------------------------------------------------------------------------

def log(P: Protocol, x: Share, frac: int, options, out_frac: int = None) -> Share:
    """ln x for x > 0: x = m 2^(e+1-f), m in [0.5, 1) (normalize), ln x = ln m + (e+1-f) ln 2,
    ln m a degree-7 polynomial in v = 4m - 3 in [-1, 1) (error 2.6e-7); the exponent
    term is added at scale 2w, one truncation at the end.
    x at scale f, ln x at scale fo (out_frac, default f).
    Domain: every positive valid x (e up to k - 3). x = 0 is read as one ulp (ln 2^-f);
    x < 0: undefined (garbage). Error: 1 output ulp against ln(x rounded to 2^-f).
    With the input at f = 26 (what the compiler gives an input read only by log) the
    approximation's error dominates; with f = 18 the rounding of the input does at
    x = 0.01 (2^-19 / 0.01). Measured figures: docs/precision.md.
    Cost: normalize (a2b, 6-round OR, 7 bit conversions), 10 products, 6 truncations;
    aby3: 26 rounds, 592 bytes per element; semi2k: 25 rounds, 489 bytes."""
    k, dt, f = P.ring.bits, P.ring.dtype, frac
    fo = f if out_frac is None else out_frac      # x at scale f, ln x at scale fo
    K = k - 3
    # |ln m + (e+1-f) ln 2| 2^(2w) < 2^(k-2) at the final truncation
    w = min(work_scale(P, fo), int((k - 2.1 - math.log2(max(K + 1 - f, f) * math.log(2) + 1)) / 2))
    nm = normalize(P, x, K, zero=True)
    tree = Tree([x] + [select_const(P, dj, 1, 2.0 ** (2 ** j)) for j, dj in enumerate(nm.d)])
    run(P, [tree])                                          # x 2^d = m 2^(K+1)
    m = B.add(P, B.trunc(P, tree.value, K + 1 - w), B.mul(P, nm.zero, enc(0.5, w, dt)))
    v = B.add(P, B.mul(P, m, enc(4, 0, dt)), enc(-3, w, dt))
    pw = Poly(P, v, fit(np.log, 0.5, 1.0, 7, center=0.75, scale=0.25), w)
    run(P, [pw])
    s = pw.value()
    e_term = B.sub(P, enc(K + 1 - f, 0, dt), sum_bits(P, nm.d))     # e + 1 - f
    s = B.add(P, s, B.mul(P, e_term, enc(math.log(2.0), 2 * w, dt)))
    return B.trunc(P, s, 2 * w - fo)


def log1p(P: Protocol, x: Share, frac: int, options, out_frac: int = None) -> Share:
    """ln(1 + x) = log(1 + x) for x > -1: absolute error as log (1 ulp), so relative
    error near 0 is that of an 18-bit output. Cost as log."""
    return log(P, B.add(P, x, enc(1, frac, P.ring.dtype)), frac, options, out_frac)
