"""1/sqrt(x) and sqrt(x): normalise to an even power of two, then Goldschmidt.

x = m 2^(2E') with m in [0.25, 1): normalize gives d = K - e; dropping bit d_0 makes the
exponent even (K is chosen with K + 1 - f even). On m: a cubic start y0 ~ m^-1/2
(relative error 9e-3), g = m y0 ~ sqrt(m), h = y0 / 2 ~ 1 / (2 sqrt(m)); two
Goldschmidt steps r = 1/2 - g h, g += g r, h += h r (error 2e-8 after two). The output
scale 2^(+-E') is a product tree of public constants selected by d_1.., computed in
the same rounds as x 2^(d - d_0).
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from .exp_log import work_scale
from .normalize import normalize
from .batch import trunc_many
from .poly import Powers, Tree, enc, fit, mul_round, run, select_const


def _root(P: Protocol, x: Share, f: int, inverse: bool, fo: int) -> Share:
    """x at scale f, the result at scale fo."""
    k, dt = P.ring.bits, P.ring.dtype
    w = work_scale(P, fo)
    K = k - 3 if (k - 2 - f) % 2 == 0 else k - 4
    c = (K + 1 - f) // 2
    nm = normalize(P, x, K, zero=inverse, drop=1)      # d_0 only picks m's octave
    up = Tree([x] + [select_const(P, dj, 1, 2.0 ** (2 ** j)) for j, dj in enumerate(nm.d) if j])
    if inverse:                                   # H = 2^((d - d0) / 2)
        out = Tree([select_const(P, dj, 1, 2.0 ** (2 ** (j - 1))) for j, dj in enumerate(nm.d) if j])
    else:                                         # H = 2^(S - (d - d0) / 2)
        out = Tree([select_const(P, dj, 2.0 ** (2 ** (j - 1)), 1) for j, dj in enumerate(nm.d) if j])
    run(P, [up, out])
    m = B.trunc(P, up.value, K + 1 - w)           # in [0.25, 1) at scale w
    if inverse:                                   # x = 0 read as one ulp: m = 1/4, e = 0
        m = B.add(P, m, B.mul(P, nm.zero, enc(0.25, w, dt)))
    coef = fit(lambda t: t ** -0.5, 0.25, 1.0, 3)
    pw = Powers(m, 4, w)
    run(P, [pw])
    h, g = trunc_many(P, [pw.combine(P, coef / 2, w),                     # y0 / 2
                          pw.combine(P, np.concatenate([[0.0], coef]), w)], w)   # m y0
    for last in (False, True):                    # r = 1/2 - g h; g += g r; h += h r
        (gh,) = mul_round(P, [(g, h, w)])
        r = B.sub(P, enc(0.5, w, dt), gh)
        todo = [h, g] if not last else [h] if inverse else [g]
        new = [B.add(P, v, dv) for v, dv in zip(todo, mul_round(P, [(v, r, w) for v in todo]))]
        h, g = new if not last else (new[0], new[0])
    if inverse:                                   # 1/sqrt(x) = 2h 2^((d-d0)/2 - c)
        (y,) = mul_round(P, [(h, out.value, w + c - fo - 1)])
    else:                                         # sqrt(x) = g H 2^(c - S)
        S = sum(2 ** (j - 1) for j in range(1, len(nm.d)))
        (y,) = mul_round(P, [(g, out.value, w + S - fo - c)])
    return y


def rsqrt(P: Protocol, x: Share, frac: int, options, out_frac: int = None) -> Share:
    """1/sqrt(x) for x > 0 (normalise to an even exponent, cubic start, two Goldschmidt
    steps); x at scale f, the result at scale out_frac (default f). Domain: every
    positive valid x; x = 0 is read as one ulp (gives 2^(f/2)); x < 0: undefined.
    Error: 3e-8 relative + 1 output ulp against rsqrt(x rounded to 2^-f). At f = 18
    the rounding of the input dominates near x = 0.01 (500 * 2^-19), hence the 26-bit
    format of an input read only by roots and log. Measured figures: docs/precision.md.
    Cost: normalize (a2b, 6-round OR, 6 bit conversions), 18 products, 12 truncations;
    aby3: 34 rounds, 712 bytes per element; semi2k: 33 rounds, 665 bytes."""
    return _root(P, x, frac, True, frac if out_frac is None else out_frac)


def sqrt(P: Protocol, x: Share, frac: int, options, out_frac: int = None) -> Share:
    """sqrt(x) for x >= 0: the rsqrt pipeline with g ~ sqrt(m) and the opposite output
    scale from its own tree, so no extra product (as x * rsqrt(x) would need) and the
    relative precision holds for large x too. sqrt(0) = 0; x < 0: undefined.
    Error: 3e-8 relative + 1 ulp; measured on [0, 100]: max abs err 9e-6.
    Cost: normalize (5 bit conversions), 18 products, 12 truncations; aby3: 34 rounds,
    680 bytes per element; semi2k: 33 rounds, 665 bytes."""
    return _root(P, x, frac, False, frac if out_frac is None else out_frac)
