"""Quotient residuals: a product with a secret mean keeps the mean's lost bits.

A division of a secret by a public count, `q = x / n`, comes out at f bits, rounded
once (fixed_point.scale_plan: ~1.5 ulps). When q is broadcast and multiplied into a
tensor `a` -- the backward pass of a mean, of flax's fast variance `E[h^2] - E[h]^2`
(`h * broadcast(dv / n)` against `broadcast(m dv / n)`), of BatchNorm and LayerNorm --
that one rounding enters every element with the same sign and |a| as its weight, and
sums over a batch do not average it out: BatchNorm over 128 rows of pixel values 0..16
gave kernel gradients 177% off (0.28 against 0.16), the bias gradient (exactly 0)
0.021, all without a word.

Here the division also leaves its residual d = x/n - q at f + r bits (|d| <= ~2 ulps
at f, so r extra bits cost no range), and a product with q reads both halves:

    a * q  ->  trunc(a * q, f) + trunc(a * d, f + r)

    residual (x / n with pre-shift p, q encoded at f + e bits, s = f + e - p):
        x_hi = trunc(x, p), x_lo = x - (x_hi << p)          x = x_hi 2^p + x_lo exactly
        q_f  = trunc(x_hi * c, s)                           the quotient at f bits
        d    = trunc(((x_hi * c - (q_f << s)) << p) + x_lo * c, f + e - r)
    The difference is taken in the ring, so it is exact even when x_hi * c wraps.

Error of a * q: |a| 2^-(f+r) + 2 ulps (random, per element) instead of |a| * 1.5 ulps
(the same for every element). Cost: d is one truncation after q's (one more round on
that path, on the reduced vector only); each product with q one more secret product of
a's size and one more truncation (by f + r, its own call: one more round). Unused
residuals are dead code. Only in the 64-bit ring. Range: |d| <= 2^(1-f), so the ring
product a 2^f * d 2^(f+r) stays below 2^(k-1) for |a| < 2^(k-2-f-r): 2^36 at k = 64,
r = 8 (a product at f bits needs |a q| < 2^27 anyway).
"""
from __future__ import annotations

from typing import Optional

from ..ir.program import Value

#: fractional bits a residual keeps beyond f (its precision 2^-(f+r))
RESIDUAL_BITS = 8
#: shape ops a residual follows its quotient through
_SHAPE_OPS = ("broadcast", "reshape", "transpose")
#: and, into a dot, the sums of a quotient and a tensor
_SUM_OPS = ("add", "sub", "neg")


def division_residual(L, x_hi: Value, x: Value, c: Value, q_f: Value, p: int, e: int) -> None:
    """Record d = x/n - q_f at f + r bits for q_f = trunc(x_hi * c, f + e - p)
    (Lowerer._scale's keep_range path); x at f, x_hi = trunc(x, p), c at f + e."""
    f = L.opt.fxp_bits
    r = min(e, RESIDUAL_BITS)
    s = f + e - p
    hi_prod = L.emit("mul", [x_hi, c])                                  # @ 2f + e - p
    lost = L.emit("sub", [hi_prod, L.emit("lshift", [q_f], bits=s)])     # |.| < 2^(s+1)
    if p:
        lost = L.emit("lshift", [lost], bits=p)                          # @ 2f + e
        x_lo = L.emit("sub", [x, L.emit("lshift", [x_hi], bits=p)])     # @ f, < 2^(p+1) ulps
        lost = L.emit("add", [lost, L.emit("mul", [x_lo, c])])
    L.residuals[id(q_f)] = L.emit("trunc", [lost], bits=f + e - r)      # @ f + r


def residual_of(L, v: Value, through_sums: bool = False) -> Optional[Value]:
    """The residual of v if v is a recorded quotient or a broadcast/reshape/transpose
    of one (the shape ops are repeated on the residual), else None. through_sums: also
    through add / sub / neg, whose residual is that of their terms (t - q: -d)."""
    if id(v) in L.residuals:
        return L.residuals[id(v)]
    memo = L.sum_residuals if through_sums else None
    if memo is not None and id(v) in memo:
        return memo[id(v)]
    op = L.producer(v)
    d = None
    if op is not None and op.name in _SHAPE_OPS:
        inner = residual_of(L, op.inputs[0], through_sums)
        d = None if inner is None else L.emit(op.name, [inner], **op.attrs)
    elif through_sums and op is not None and op.name in _SUM_OPS:
        ds = [residual_of(L, x, True) if x.type.secret and x.type.dtype.is_fxp else None
              for x in op.inputs]
        if op.name == "neg":
            d = None if ds[0] is None else L.emit("neg", ds)
        elif ds[0] is not None and ds[1] is not None:
            d = L.emit(op.name, ds)
        elif ds[0] is not None:
            d = ds[0]
        elif ds[1] is not None:
            d = ds[1] if op.name == "add" else L.emit("neg", [ds[1]])
    if memo is not None:
        memo[id(v)] = d
    return d


def product(L, a: Value, b: Value, op: str = "mul", **attrs) -> Optional[Value]:
    """a * b (elementwise `mul`, or `dot` with attrs; both fxp at f bits) as hi + lo
    when b (or a) is a quotient with a residual -- for a dot also a sum with one
    (t - broadcast(mean): BatchNorm's input gradient, whose kernel gradient is a dot
    with it) -- None otherwise."""
    if a is b:
        return None
    f = L.opt.fxp_bits
    for x, q, q_first in ((a, b, False), (b, a, True)):
        d = residual_of(L, q, through_sums=op == "dot") if q.type.secret else None
        if d is not None:
            hi = L.to_frac(L.emit(op, [a, b], **attrs), f)
            lo = L.to_frac(L.emit(op, [d, x] if q_first else [x, d], **attrs), f)
            return L.emit("add", [hi, lo])
    return None
