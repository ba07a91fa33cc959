"""sigmoid, tanh and erf: odd symmetry, saturation, and an accurate core on |x|.

All three start from one bit decomposition of x (split_abs): the sign s, the integer
bits of |x| below the saturation point, and a saturation flag; |x| = (1 - 2s) x
is one product. Ones' complement (~x = |x| - 1 ulp for x < 0) gives the bits of |x|
without a second adder; the missing ulp lands in the fraction, which is in [0, 1].
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import List

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from . import bits as T
from .batch import b2a_many
from .exp_log import work_scale
from .poly import Poly, Powers, Tree, enc, fit, mul_round, run, select_const, step
from .reciprocal import recip_unit


@dataclass
class AbsSplit:
    sign: Share            # arithmetic 0/1: x < 0
    ibits: List[Share]     # arithmetic 0/1: bits lsb .. lsb+q-1 of the integer part of |x|
    sat: Share             # arithmetic 0/1: |x| >= 2^(lsb + q)


def split_abs(P: Protocol, x: Share, f: int, q: int, lsb: int = 0) -> AbsSplit:
    """a2b (8 rounds on aby3) + an OR over the bits above (6 rounds, one word) + one
    batched bit conversion of q + 2 bits."""
    dt, k = P.ring.dtype, P.ring.bits
    xb = T.a2b(P, x)
    s = T.bit(xb, k - 1, dt)
    a = P.xor(xb, T.replicate(xb, k - 1, dt))                   # |x| - s
    sat = T.any_bits(P, a, f + lsb + q, k - 2)
    conv = b2a_many(P, [s] + [T.bit(a, f + lsb + j, dt) for j in range(q)] + [sat])
    return AbsSplit(conv[0], conv[1:-1], conv[-1])


def _fraction(P, ax, sp: AbsSplit, f: int, lsb: int, w: int):
    """(|x| - integer bits) / 2^lsb: the position inside the segment, in [0, 1], at scale w."""
    dt = P.ring.dtype
    frac = ax
    for j, b in enumerate(sp.ibits):
        frac = B.sub(P, frac, B.mul(P, b, enc(2 ** (lsb + j), f, dt)))
    return B.lshift(P, frac, w - f - lsb) if w >= f + lsb else B.trunc(P, frac, f + lsb - w)


# ---- sigmoid / tanh via e^-|x| and one reciprocal ----------------------------------------

def _logistic_core(P: Protocol, x: Share, f: int, scale_out: int):
    """scale_out * (1 - 2s) / (1 + e^-|x|) at scale f, and the split (for the sign).

    e^-|x| = e^-v E_01 E_23 (1 - sat), v = frac(|x|) and E_ij = e^-(b_i 2^i + b_j 2^j) a
    table of 4 constants selected by two integer bits (one bit product each): every
    factor is <= 1, so truncation errors stay absolute (2^-w each); e^-v is a
    degree-5 polynomial (4.5e-7). 1 + e^-|x| is in [1, 2]: recip_unit of its half
    needs no normalisation."""
    dt = P.ring.dtype
    w = work_scale(P, f)
    q = max(1, math.ceil(math.log2((f + 1) * math.log(2))))    # e^-(2^q) < 2^-(f+1)
    sp = split_abs(P, x, f, q)
    one = enc(1, 0, dt)
    sg = B.sub(P, one, B.add(P, sp.sign, sp.sign))
    # e^-(integer part) = prod over pairs of bits (b, c) of a table of 4 constants,
    # t0 + (t1 - t0) b + (t2 - t0) c + (t3 - t2 - t1 + t0) bc: one integer product each
    bits = sp.ibits
    res = mul_round(P, [(x, sg, None)] + [(bits[i], bits[i + 1], None)
                                          for i in range(0, len(bits) - 1, 2)])
    ax, groups = res[0], []
    for i in range(0, len(bits), 2):
        t = [math.exp(-(a * 2.0 ** i + c * 2.0 ** (i + 1))) for c in (0, 1) for a in (0, 1)]
        g = select_const(P, bits[i], t[0], t[1], w)
        if i + 1 < len(bits):
            g = B.add(P, g, B.add(P, B.mul(P, bits[i + 1], enc(t[2] - t[0], w, dt)),
                                  B.mul(P, res[1 + i // 2], enc(t[3] - t[2] - t[1] + t[0], w, dt))))
        groups.append(g)
    tree = Tree(groups, shift=w)
    v = _fraction(P, ax, sp, f, 0, w)
    u = B.add(P, B.add(P, v, v), enc(-1, w, dt))                # 2v - 1 in [-1, 1]
    pw = Poly(P, u, fit(lambda t: np.exp(-t), 0, 1, 5, 0.5, 0.5), w)
    nsat = B.sub(P, one, sp.sat)
    while not tree.done:
        step(P, [pw, tree])
    (c,) = step(P, [pw], [(tree.value, nsat, None)])            # 0 when saturated
    run(P, [pw])
    ev = B.trunc(P, pw.value(), w)
    (z,) = mul_round(P, [(ev, c, w)])                            # e^-|x| at scale w
    m = B.add(P, z, enc(1, w, dt))                               # (1 + z) / 2 at scale w + 1
    # recip_unit gives y = 2 / (1 + z) at scale w + 1; scale_out * y / 2 at scale f:
    out_shift = (w + 1) - f + 1 - int(math.log2(scale_out))
    return recip_unit(P, m, w + 1, first=sg, out_shift=out_shift), sp


def sigmoid(P: Protocol, x: Share, frac: int, options) -> Share:
    """1 / (1 + e^-x). Modes (option sigmoid_mode):
    "accurate" (default): s + (1 - 2s) / (1 + e^-|x|), e^-|x| from the bits of |x| (see
      _logistic_core), Goldschmidt for the reciprocal of a value in [1, 2]. Every valid
      x; saturates at |x| >= 16. Error 1 ulp; measured on [-10, 10] (k = 64, f = 18):
      max abs err 4.3e-6. Cost: 1 a2b, a 6-round OR, 6 bit conversions, 17 products,
      14 truncations; aby3: 32 rounds, 776 bytes per element; semi2k: 31 rounds, 673.
    "segmented": odd piecewise quartic in |x| on 4 segments of width 2, saturating at
      |x| >= 8 (odd_piecewise). Max abs err 2.9e-4 (3.4e-4 bound: 1 - sigmoid(8)),
      below SPU's 9.5e-4. Cost: 4 bit conversions, 13 products, 4 truncations; aby3:
      22 rounds, 488 bytes per element (63% of accurate). For training, where the
      sigmoid's error is far below the gradient noise."""
    mode = options.get("sigmoid_mode", "accurate")
    dt = P.ring.dtype
    if mode == "accurate":
        y, sp = _logistic_core(P, x, frac, 1)
        return B.add(P, y, B.mul(P, sp.sign, enc(1, frac, dt)))
    if mode == "segmented":
        half = enc(0.5, frac, dt)
        return B.add(P, odd_piecewise(P, x, frac, lambda t: 1 / (1 + np.exp(-t)) - 0.5,
                                      q=2, lsb=1, deg=4), half)
    raise ValueError(f"sigmoid_mode must be 'accurate' or 'segmented', not {mode!r}")


def tanh(P: Protocol, x: Share, frac: int, options) -> Share:
    """tanh x = 2 sigmoid(2x) - 1 = (1 - 2s)(2 / (1 + e^-2|x|) - 1): the sigmoid core on
    2x with the factor 2 folded into its last truncation. Every valid x; saturates at
    |x| >= 8. Error 1-2 ulp; measured on [-5, 5]: max abs err 5.8e-6. Cost as sigmoid
    (accurate)."""
    dt = P.ring.dtype
    y, sp = _logistic_core(P, B.lshift(P, x, 1), frac, 2)
    one = enc(1, frac, dt)
    return B.sub(P, y, B.sub(P, one, B.mul(P, sp.sign, enc(2, frac, dt))))


# ---- erf: piecewise polynomials selected by the integer bits of |x| ------------------------

def odd_piecewise(P: Protocol, x: Share, f: int, fn, q: int, lsb: int, deg: int) -> Share:
    """Odd extension of fn (given on [0, 2^(lsb+q)], saturating at fn(2^(lsb+q))):
    2^q segments of width 2^lsb selected by the integer bits b of |x|, on each a
    degree-`deg` interpolant in u = 2 frac - 1.
    out = (1 - 2s) [(1 - sat) sum_S (prod_{i in S} b_i) A_S(u) + sat fn(top)], A_S the
    Moebius transform of the segment polynomials over the subsets S of the q bits.
    Products of bits ride along with the powers of u; one truncation at the end."""
    dt = P.ring.dtype
    w = work_scale(P, f)
    width = 2.0 ** lsb
    segs = [fit(fn, i * width, (i + 1) * width, deg, (i + 0.5) * width, width / 2)
            for i in range(2 ** q)]
    subsets = [S for r in range(q + 1) for S in itertools.combinations(range(q), r)]
    A = {S: sum((-1) ** (len(S) - len(Tt)) * segs[sum(1 << i for i in Tt)]
                for r in range(len(S) + 1) for Tt in itertools.combinations(S, r))
         for S in subsets}
    sp = split_abs(P, x, f, q, lsb)
    one = enc(1, 0, dt)
    sg = B.sub(P, one, B.add(P, sp.sign, sp.sign))
    ax, qs, ts = mul_round(P, [(x, sg, None), (sg, B.sub(P, one, sp.sat), None), (sg, sp.sat, None)])
    fr = _fraction(P, ax, sp, f, lsb, w)
    u = B.add(P, B.add(P, fr, fr), enc(-1, w, dt))               # 2 frac - 1 in [-1, 1]
    pw = Powers(u, deg, w)
    sel = {(): qs}                                               # (1-2s)(1-sat) prod b_i
    for r in range(1, q + 1):
        new = [S for S in subsets if len(S) == r]
        res = step(P, [pw], [(sel[S[:-1]], sp.ibits[S[-1]], None) for S in new])
        sel.update(zip(new, res))
    while not pw.done:
        step(P, [pw])
    terms = [(sel[S], pw.combine(P, A[S], w), None) for S in subsets]
    acc = B.mul(P, ts, enc(fn(2.0 ** (lsb + q)), 2 * w, dt))
    for t in mul_round(P, terms):
        acc = B.add(P, acc, t)
    return B.trunc(P, acc, 2 * w - f)


def erf(P: Protocol, x: Share, frac: int, options) -> Share:
    """erf x: odd, degree-7 polynomials on [0,1), [1,2), [2,3), [3,4) (error 3e-7) selected
    by the integer bits of |x| (odd_piecewise), 1 beyond 4 (1 - erf(4) = 1.5e-8). Every
    valid x. Error 1 ulp; measured on [-4, 4] (k = 64, f = 18): max abs err 5.6e-6; gelu
    (x/2 (1 + erf(x/sqrt 2))) on [-6, 6]: 1.1e-5. Cost: 1 a2b, a 6-round OR, 4 bit
    conversions, 16 products, 7 truncations; aby3: 24 rounds, 560 bytes per element;
    semi2k: 23 rounds, 601 bytes."""
    return odd_piecewise(P, x, frac, np.vectorize(math.erf, otypes=[np.float64]),
                         q=2, lsb=0, deg=7)
