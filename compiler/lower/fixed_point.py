"""Products by public constants: how many fractional bits the constant gets.

A constant q encoded at the program's f fractional bits keeps only f + log2|q|
significant bits: 1/10^4 at 18 bits is 26/2^18, 0.8% off, so the mean of 10^4 ones came
out 0.9918. Here a small q is encoded at f + e bits, e = floor(log2(1/max|q|)), so it
keeps f significant bits (relative error <= 2^-(f+1)) whatever its size.

    x * q  (scale)  x@f * q@(f+e) -> @(2f+e), one truncation by f+e. The ring product
        is |x| 2^f * |q| 2^(f+e) <= |x| 2^(2f): the bound any product at f bits needs,
        |x| < 2^(k-2f-1) (2^27 at k=64, f=18).
        Error: 1 ulp (the truncation) + |x q| 2^-(f+1) (the constant's rounding).
    x / n  (keep_range, a division by n >= 128)  trunc(x, p)@(f-p) * q@(f+e), truncation
        by f+e-p, p = min(e, f). The ring product is at most |x| 2^(2f-p), so x itself
        (a sum of n values) may be as large as 2^(k-2f-1+p) while the mean fits the
        product range, for one more truncation (one more round).
        Error: 2 ulps + |x q| 2^-(f+1).

A power of two q = +-2^-s is exact at max(f, s) bits: the ring product is |x| 2^(2f-s)
(so |x| < 2^(k-2f-1+s)), or x itself for s > f (x keeps its whole range), and the
truncation is by f, batched with the step's others, or by s.

A product by |q| >= 2^-7 (e <= 6: learning rates down to 1/128) keeps q at f bits and the
usual truncation by f, which the runtime batches with the other truncations of a step
(it batches equal shifts only): q keeps >= 12 significant bits (relative error
<= 2^-12). A division by 2 <= n < 128 is the one-truncation product by 1/n at f + e bits,
whose dividend (n times the mean) must stay below 2^(k-2f-1). e is capped so that
f + e <= k/2 + 14 (the truncation protocols take shifts up to k - 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINE_FROM = 6   # |q| >= 2^-7 keeps >= 12 significant bits at f (see above)


@dataclass(frozen=True)
class ScalePlan:
    pre_shift: int              # truncate x by this many bits first (keep_range)
    frac: int                   # fractional bits of the encoded constant
    value: np.ndarray           # the constant to encode at `frac` bits

    @property
    def final_shift(self) -> int:
        """The truncation after the product: back to f bits."""
        return self.frac - self.pre_shift


def scale_plan(q: np.ndarray, f: int, field: int, keep_range: bool) -> ScalePlan:
    shift = _power_of_two_shift(q)
    if shift is not None and not keep_range:
        # q = +-2^-s is exact at max(f, s) bits: the ring product is |x| 2^(2f-s) (or x
        # itself past f), never more than x alone needs, e.g. clipping's scale ladder
        return ScalePlan(0, max(f, shift), q)
    m = float(np.abs(q).max()) if q.size else 0.0
    e = 0 if m == 0.0 or m >= 0.5 else int(np.floor(-np.log2(m)))
    e = min(e, field // 2 + 14 - f)
    if e <= (0 if keep_range else FINE_FROM):
        return ScalePlan(0, f, q)
    if keep_range and e > FINE_FROM:
        return ScalePlan(min(e, f), f + e, q)
    return ScalePlan(0, f + e, q)


def _power_of_two_shift(q: np.ndarray):
    """s >= 1 if every element of q is +-2^-s (one s), else None."""
    a = np.unique(np.abs(q))
    if a.size != 1 or a[0] == 0 or a[0] >= 1:
        return None
    mant, ex = np.frexp(a[0])
    return int(1 - ex) if mant == 0.5 else None
