"""The stated input domains of the nonlinear approximations: one table.

    op           domain (k = 64, f = 18)        outside
    exp          -4e9 < x <= 16   (squaring)    x > 16: the squarings overflow (exp(20)
                 -4.7e10 < x < 22.15 (accurate)   gave -4.4e7); below: wraps
                 (k = 32, f = 9: accurate, -1.1e4 < x < 11.06)
                 -600 <= x <= 16  (taylor)
    log          x > 0                          x = 0 is read as one ulp (log(0) = -18.02),
                                                x < 0 is garbage (log(-1) = 22.0)
    log1p        x > -1                         as log
    reciprocal   x != 0 (also x / y)            1/0 saturates to 2^f (262144)
    rsqrt        x > 0                          0 is read as one ulp; x < 0 garbage
    sqrt         x >= 0                         x < 0 garbage
    logistic, tanh, erf: every encodable x.
    sin, cos     as compiler/ir/nonlinear.py states them (|x| <= 1.6e6)

compiler/ir/nonlinear.py, the table of the nonlinear functions, states each domain at the
defaults (k = 64, f = 18); this module computes the ones that move with the ring.

The bounds follow the algorithms' own parameters (exp_log.py, reciprocal.py, roots.py),
so they move with the ring, the fractional bits and exp_mode. spu.check reports every
input outside them as a "domain" finding; docs/check.md and the nonlinear op table quote
this table rather than repeating it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from spu_lite.compiler.ir.nonlinear import TABLE

LOG2E = 1.4426950408889634


@dataclass(frozen=True)
class Domain:
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = True
    hi_open: bool = True
    nonzero: bool = False          # x = 0 excluded (reciprocal)
    outside: str = ""              # what happens outside
    also: Optional[Tuple[float, float]] = None    # a second interval that works

    def outside_mask(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        low = (x <= self.lo) if self.lo_open else (x < self.lo)
        high = (x >= self.hi) if self.hi_open else (x > self.hi)
        bad = low | high
        if self.also is not None:
            bad &= ~((x >= self.also[0]) & (x <= self.also[1]))
        return bad | (x == 0) if self.nonzero else bad

    def __str__(self) -> str:
        if self.nonzero and self.lo == -math.inf and self.hi == math.inf:
            return "x != 0"
        if self.nonzero:
            return f"x != 0, |x| < {self.hi:.4g}"
        lo = "" if self.lo == -math.inf else f"{self.lo:.4g} {'<' if self.lo_open else '<='} "
        hi = "" if self.hi == math.inf else f" {'<' if self.hi_open else '<='} {self.hi:.4g}"
        return f"{lo}x{hi}"


def exp_mode(field: int, options: Optional[dict]) -> str:
    """exp's approximation (option exp_mode; the default depends on the ring)."""
    return (options or {}).get("exp_mode", "squaring" if field == 64 else "accurate")


def _exp(field: int, f: int, fo: int, mode: str) -> Domain:
    k = field
    fits = (k - 3 - fo) * math.log(2.0)          # e^x below the output format's range
    if mode == "accurate":
        n = 2 ** max(1, math.ceil(math.log2(f + 2)))       # exp_log._exp_accurate's N
        b = next(b for b in range(1, 24)                   # exp_log._coarse
                 if (n + 1) * abs(round(LOG2E * 2 ** b) / 2 ** b - LOG2E) <= 0.05)
        c = round(LOG2E * 2 ** b)
        lo = -(2.0 ** (k - 2 - f)) / c
        # Masks: a constant beyond the range (-inf) is encoded as -S, S = 2^(k-3-f) where
        # that is below 2^30 (runtime/kernels/layout.py). -S 2^f c = 2^(k-3) (-c mod 8)
        # mod 2^k: the coarse t wraps to a value whose sign bit is set iff -c mod 8 >= 4,
        # and then exp gives exactly 0 for -S + y, |y| < |lo| / 2 (measured in a 32-bit
        # ring: softmax(where(mask, x, -inf)) exact).
        S = 2.0 ** (k - 3 - f)
        also = (-S + lo / 2, -S - lo / 2) if S < 2.0 ** 30 and (-c) % 8 >= 4 else None
        # n from t = x log2(e) + up to 0.05 of coarse error must stay below N
        return Domain(lo, min((n - 0.05) * math.log(2.0), fits), also=also,
                      outside="overflows above, wraps below (undefined)")
    top = min(16.0, (k - 2 - 2 * f) * math.log(2.0) - 0.5, fits)
    if mode == "taylor":
        return Domain(-600.0, top, lo_open=False, hi_open=False,
                      outside="the squarings blow up (garbage)")
    return Domain(-min(2.0 ** 32, 2.0 ** (k - 2 - f)), top, hi_open=False,   # msb_narrow's 32 bits
                  outside="the squarings overflow (garbage)")


def domains(field: int = 64, fxp_bits: int = 18, options: Optional[dict] = None,
            exp_frac: Optional[int] = None) -> Dict[str, Domain]:
    """op -> Domain of its (real) input for this ring, fractional bits and options;
    exp_frac: the fractional bits of exp's result (the op's `frac`)."""
    fo = fxp_bits if exp_frac is None else exp_frac
    # the other rows of the nonlinear table with a domain (sin, cos), as stated there
    table = {row.op: Domain(row.domain[0], row.domain[1], lo_open=False, hi_open=False,
                            outside="undefined (compiler/ir/nonlinear.py)")
             for row in TABLE if row.domain is not None}
    return {**table,
        "exp": _exp(field, fxp_bits, fo, exp_mode(field, options)),
        "log": Domain(lo=0.0, outside="x = 0 reads as one ulp; x < 0 gives garbage"),
        "log1p": Domain(lo=-1.0, outside="x = -1 reads as one ulp above; below: garbage"),
        "reciprocal": Domain(nonzero=True, outside="1/0 saturates to 2^f"),
        # a / x (runtime/fxp/reciprocal.py reciprocal_parts): x = 0 overflows the
        # product, |x| >= 2^(f+4) reads as 1/x = 0 (right for 1/x, not for a / x)
        "recip_parts": Domain(lo=-2.0 ** (fxp_bits + 4), hi=2.0 ** (fxp_bits + 4), nonzero=True,
                              outside="a / x is garbage at x = 0 and 0 for larger |x|"),
        "rsqrt": Domain(lo=0.0, outside="x = 0 reads as one ulp; x < 0 gives garbage"),
        "sqrt": Domain(lo=0.0, lo_open=False, outside="x < 0 gives garbage"),
    }
