"""Exact floor, ceil, round and int conversion of a quotient by a public constant.

`jnp.floor(x / n)`, `(x / n).astype(int)`, `jnp.round(x / n)`, optax's
`exponential_decay(staircase=True)` (`floor(count / k)`): the fixed-point quotient
y = x * (1/n) is within a few ulps of x / n (docs/fixed-point.md, rule 3), as often
below it as above, so at every exact multiple the floor came out one less (the
staircase read floor(60 / 10) = 5 at every 10th step, with the count public or
secret). The div rule records a quotient by a constant, `L.quotients[id(y)] = (x, c)`
(a product `x * 0.1` by the reciprocal of an integer counts as x / 10); rounding it
here reads x and c, and is exact at the rounded x:

    t = floor(y - 1/2)                   t in [T - 1, T + 1] for T = floor(x / c), c > 0,
    T = t - [x < t c] + [x >= (t + 1) c]  while |y - x/c| < 1/2 (|x / c| < 2^17)

t c and (t + 1) c are an integer times a public constant (no truncation; exact when c
has f fractional bits or fewer, as every integer has). Cost: the floor's truncation
and two comparisons side by side (one comparison round, as the plain floor's one
correcting comparison), only where a quotient by a constant meets a rounding.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def record(L, y, x, c) -> None:
    """Note that y is the fixed-point quotient x / c for a public constant c != 0."""
    c = np.asarray(c, np.float64)
    if np.all(np.isfinite(c)) and np.all(c != 0):
        L.quotients[id(y)] = (x, c)


def record_public(L, y, x, d) -> None:
    """Note that y is x / d for a public value d known only at run time (d != 0)."""
    L.quotients[id(y)] = (x, d)


def _normalised(L, y) -> Optional[Tuple[object, object]]:
    """(x', c') with x' / c' == y's quotient and c' > 0 (a constant, or a public value at
    f bits), or None if y is no quotient."""
    q = L.quotients.get(id(y)) or _by_reciprocal(L, y)
    if q is None:
        return None
    x, c = q
    x = L.to_frac(L.as_fxp(x), L.opt.fxp_bits)
    if hasattr(c, "type"):                  # public: |d| and its sign in the clear (local)
        d = L.broadcast_to(L.to_frac(L.as_fxp(c), L.opt.fxp_bits), x.type.shape)
        neg = L.emit("less", [d, L.const(0, d.type.dtype, d.type.shape)])
        flip = lambda v: L.emit("select", [neg, L.emit("neg", [v]), v])
        return flip(x), flip(d)
    if np.any(c < 0):
        sign = np.broadcast_to(np.where(c < 0, -1, 1), x.type.shape)
        x = L.emit("mul", [x, L.const(sign, L.opt.int)]) if np.ndim(c) else L.emit("neg", [x])
    return x, np.asarray(np.abs(c))


def _by_reciprocal(L, y):
    """x * q with 1/q an integer n, |n| >= 2, in float32 (`x * 0.1`, which float32 JAX
    computes as x / 10 at every multiple: 0.1f is above 1/10): (x, n), else None."""
    s = L.scaled.get(id(y))
    if s is None or s[1] == 0:
        return None
    n = float(np.float32(1.0 / s[1]))
    return (s[0], np.asarray(n)) if abs(n) >= 2 and n == round(n) else None


def negated(L, y):
    """-y, still known as a quotient if y was one ((-x) / c)."""
    out = L.emit("neg", [y])
    q = _normalised(L, y)
    if q is not None:
        L.quotients[id(out)] = (L.emit("neg", [q[0]]), q[1])
    return out


def shifted(L, y, x_shift: float, y_shift):
    """y + y_shift as the quotient (x + x_shift c) / c, x_shift c = y_shift c; or None."""
    q = _normalised(L, y)
    if q is None:
        return None
    x, c = q
    out = L.emit("add", [L.to_frac(L.as_fxp(y), L.opt.fxp_bits), y_shift])
    if not hasattr(c, "type"):
        record(L, out, L.emit("add", [x, _times(L, c * x_shift, x)]), c)
    else:               # c x_shift for x_shift = 1/2: exact up to c's last bit
        half_c = L.fmul(c, L.const(x_shift, L.opt.fxp, c.type.shape))
        L.quotients[id(out)] = (L.emit("add", [x, half_c]), c)
    return out


def _times(L, c, like):
    """A public constant (or public value) at `like`'s format and shape."""
    if hasattr(c, "type"):
        return c
    if np.ndim(c) == 0:
        return L.const(float(c), like.type.dtype, like.type.shape)
    return L.emit("constant", [], value=np.ascontiguousarray(np.broadcast_to(c, like.type.shape)),
                  dtype=like.type.dtype)


def floor_int(L, y):
    """floor(y) as an int when y is a recorded quotient (exact, see the module), else None."""
    q = _normalised(L, y)
    if q is None:
        return None
    x, c = q
    f = L.opt.fxp_bits
    y = L.to_frac(L.as_fxp(y), f)
    half = L.const(0.5, y.type.dtype, y.type.shape)
    t = L.emit("convert", [L.emit("sub", [y, half])], to=L.opt.int)
    c_f = _times(L, c, x)
    one = L.const(1, L.opt.int, t.type.shape)
    below = L.emit("less", [x, L.emit("mul", [t, c_f])])
    above = L.emit("not", [L.emit("less", [x, L.emit("mul", [L.emit("add", [t, one]), c_f])])])
    as_int = lambda b: L.emit("convert", [b], to=L.opt.int)
    return L.emit("add", [L.emit("sub", [t, as_int(below)]), as_int(above)])


def magnitude(L, y):
    """(y < 0, |y|) with |y| the quotient |x| / c, when y is a recorded quotient (the sign
    is read from x: a tiny positive x / c may round to a negative y); else None."""
    q = _normalised(L, y)
    if q is None:
        return None
    x, c = q
    neg = L.emit("less", [x, L.const(0, x.type.dtype, x.type.shape)])
    y = L.to_frac(L.as_fxp(y), L.opt.fxp_bits)
    ay = L.emit("select", [neg, L.emit("neg", [y]), y])
    L.quotients[id(ay)] = (L.emit("select", [neg, L.emit("neg", [x]), x]), c)
    return neg, ay


def tie(L, y, r):
    """y == r exactly, for y a recorded quotient x / c and r an int: x == r c; else None."""
    q = _normalised(L, y)
    if q is None:
        return None
    x, c = q
    return L.emit("eq", [x, L.emit("mul", [r, _times(L, c, x)])])
