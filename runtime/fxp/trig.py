"""sin and cos: range reduction to turns, then one polynomial.

With q = x / (2 pi) (turns), both functions have period 1 in q, so any integer n
taken off q changes nothing: cos x = cos(2 pi (q - n)), sin x = cos(2 pi (q - 1/4 - n)).

Reduction (x at scale f, ring Z_2^k):
  1. n = trunc(x * C1, f + c), C1 = round(2^c / 2 pi): an integer within 1 + 0.02 of
     q (trunc is floor or floor + 1; C1's rounding is below 3.2 2^-c relative). Needs
     |x C1| < 2^(k-2): |q| < 2^(k-2-f-c), the domain (c = 26 at k = 64, f = 18:
     |x| <= 2 pi 2^18 = 1.6e6).
  2. y = (x * C2 - n 2^W) / 2^(W-w), C2 = round(2^(W-f) / 2 pi), W = k - 4: both
     products are exact in the ring and their integer parts wrap alike, so the
     difference is (q - n) 2^W exactly up to C2's rounding (|x| 2^(f-W-1) turns,
     1e-13 at x = 1e6), a value below 1.03 2^(k-4): one truncation to the working
     scale w. y = q - n in (-1.03, 1.03).
Approximation: cos(2 pi y) = 1 - 2 sin^2(pi y), sin(pi y) = y P(y^2) with P of
degree 6 (least squares on [-1.05, 1.05], error 2.4e-9), Horner at scale w = 28.
Error: 1 output ulp plus the rounding of x itself (2^-(f+1) in x is 1.9e-6 in sin x).
Cost: 2 local products by constants, 3 truncations, 9 products with their
truncations (Horner 6, the square, y P, the final square); measured on aby3: 19
rounds. In a 32-bit ring the constants are too coarse for this accuracy (field 64 only
is documented).
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B

def _fit_sin_pi_y() -> np.ndarray:
    """Coefficients of P (lowest first): least squares on Chebyshev-spaced nodes."""
    y = np.cos(np.linspace(0.0, np.pi, 4001)) * 1.05
    A = np.stack([y ** (2 * i + 1) for i in range(7)], axis=1)
    return np.linalg.lstsq(A, np.sin(np.pi * y), rcond=None)[0]


_SIN_PI_Y = _fit_sin_pi_y()


def reduction_bits(k: int, f: int) -> int:
    """c of step 1: half the headroom above f, plus 4 bits (26 at k = 64, f = 18)."""
    return (k - 2 - f) // 2 + 4


def max_abs_input(k: int, f: int) -> float:
    """The domain's edge: |x| <= 2 pi 2^(k-2-f-c) (1.6e6 at k = 64, f = 18)."""
    return 2 * np.pi * 2.0 ** (k - 2 - f - reduction_bits(k, f))


def _turns(P: Protocol, x: Share, f: int, shift: float) -> Share:
    """y = q - shift - n at the working scale, in (-1.03, 1.03)."""
    k, dt = P.ring.bits, P.ring.dtype
    c, W = reduction_bits(k, f), k - 4

    def minus_shift(v, scale):
        return B.add(P, v, np.asarray(round(-shift * 2.0 ** scale) % (1 << k), dtype=dt))

    n = B.trunc(P, minus_shift(B.mul(P, x, dt(round(2.0 ** c / (2 * np.pi)))), f + c), f + c)
    y = minus_shift(B.mul(P, x, dt(round(2.0 ** (W - f) / (2 * np.pi)))), W)
    return B.trunc(P, B.sub(P, y, B.lshift(P, n, W)), W - _work(k, f))


def _work(k: int, f: int) -> int:
    """Working scale: products of values below 8 stay below 2^(k-2)."""
    return min(f + 10, (k - 6) // 2)


def _cos_turns(P: Protocol, y: Share, w: int, f: int) -> Share:
    """cos(2 pi y) = 1 - 2 (y P(y^2))^2 at scale f."""
    coef = _SIN_PI_Y
    u = B.fmul(P, y, y, w)
    acc = B.trunc(P, B.mul(P, u, B.const(P, coef[-1], w)), w)
    for a in coef[-2:0:-1]:
        acc = B.fmul(P, B.add(P, acc, B.const(P, a, w, y.shape)), u, w)
    s = B.fmul(P, y, B.add(P, acc, B.const(P, coef[0], w, y.shape)), w)
    s2 = B.trunc(P, B.mul(P, s, s), 2 * w - f - 1)                # 2 s^2 at scale f
    return B.sub(P, B.const(P, 1.0, f, y.shape), s2)


def cos(P: Protocol, x: Share, frac: int, options) -> Share:
    """cos x for |x| <= max_abs_input(k, frac); see the module docstring."""
    return _cos_turns(P, _turns(P, x, frac, 0.0), _work(P.ring.bits, frac), frac)


def sin(P: Protocol, x: Share, frac: int, options) -> Share:
    """sin x = cos(x - pi/2): a quarter turn taken off q before the reduction."""
    return _cos_turns(P, _turns(P, x, frac, 0.25), _work(P.ring.bits, frac), frac)
