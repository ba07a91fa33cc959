"""Lowering rules: integer division and remainder (lax.div / lax.rem, under jnp's `//`,
`%` and jnp.mod) and right shifts, exact on secret integers.

lax.div rounds toward zero and lax.rem takes the dividend's sign, so both follow from
the magnitudes: q = sign(a) sign(b) floor(|a| / |b|), r = sign(a) (|a| - |b| floor(...)).

floor(|a| / d) for a public constant d > 0 (per element): q0 = (|a| C) >> s with
C = round(2^s / d), s = 31 + floor(log2 min d): |a| C < 2^62 for |a| < 2^31, and q0 is
within [floor - 1, floor + 2] (C's rounding is below 1/2 in q, the truncation adds 0
or 1). The remainder t = |a| - q0 d (local) then fixes q0 with three comparisons in one
batch: q = q0 - [t < 0] - [t < -d] + [t >= d]. Cost: 1 truncation, 4 comparisons
(with the sign of a), 2 selections.

floor(|a| / |b|) for a secret b: restoring long division, one quotient bit per step
from the top: with t = |b| 2^i, take it when t <= r. 31 steps of one comparison and
one selection each (about 31 x 10 rounds on aby3), exact for |a|, |b| < 2^31 (JAX's
int32); b = 0 gives 2^31 - 1 in magnitude (JAX leaves it undefined).

Right shifts: a >> s (arithmetic) is floor(a / 2^s); the protocols' truncation may be
one too high, so one comparison corrects it (t - [a < t 2^s]). Logical shifts of int32
values add 2^(32-s) to the shift of negative ones. A shift amount known only at run time (secret
or not) selects among the 32 candidates with a one-hot (see _shift_left_by,
_shift_right_by); amounts past 31 behave as in JAX.
"""
from __future__ import annotations

import numpy as np

from .context import CompileError, rule
from .consts import public_const_value

_INT_BITS = 31          # magnitudes of JAX's int32


def _needs_64_bit_ring(L, what: str) -> None:
    """The exact algorithms below keep |a| 2^31 inside the ring (|a| C < 2^62, the long
    division's |b| 2^30, the shift candidates' x 2^31): a 32-bit ring has no room."""
    if L.opt.field < 64:
        raise CompileError(f"{what} of secret integers needs field=64 (the exact algorithm "
                           f"keeps |a| 2^31 in the ring); a {L.opt.field}-bit ring has no room")


def _sign_split(L, a):
    """(|a|, a < 0) of an int."""
    zero = L.const(0, a.type.dtype, a.type.shape)
    neg = L.emit("less", [a, zero])
    return L.emit("select", [neg, L.emit("neg", [a]), a]), neg


def _as_int(L, b):
    return L.emit("convert", [b], to=L.opt.int)


def _floor_shift(L, a, s: int):
    """floor(a / 2^s) of an int, exact."""
    t = L.emit("arshift", [a], bits=s)
    if not a.type.secret:
        return t
    over = L.emit("less", [a, L.emit("lshift", [t], bits=s)])
    return L.emit("sub", [t, _as_int(L, over)])


def _floor_div_by_constant(L, a, d: np.ndarray):
    """floor(a / d) for a secret a >= 0, d > 0 public constants (broadcast to a's shape)."""
    s = _INT_BITS + int(np.floor(np.log2(d.min())))
    C = np.round(2.0 ** s / d.astype(np.float64)).astype(np.int64)
    q = L.emit("arshift", [L.emit("mul", [a, L.const(np.broadcast_to(C, a.type.shape), L.opt.int)])],
               bits=s)
    dv = L.const(np.broadcast_to(d, a.type.shape).astype(np.int64), L.opt.int)
    t = L.emit("sub", [a, L.emit("mul", [q, dv])])
    zero = L.const(0, L.opt.int, a.type.shape)
    below = L.emit("less", [t, zero])
    far_below = L.emit("less", [t, L.emit("neg", [dv])])
    above = L.emit("not", [L.emit("less", [t, dv])])
    for bit, sign in ((below, "sub"), (far_below, "sub"), (above, "add")):
        q = L.emit(sign, [q, _as_int(L, bit)])
    return q


def _floor_div_long(L, a, b):
    """floor(a / b) for secret a >= 0 and b > 0: restoring division, top bit first."""
    q, r = L.const(0, L.opt.int, a.type.shape), a
    for i in range(_INT_BITS - 1, -1, -1):
        t = L.emit("lshift", [b], bits=i) if i else b
        take = L.emit("not", [L.emit("less", [r, t])])
        r = L.emit("select", [take, L.emit("sub", [r, t]), r])
        q = L.emit("add", [q, L.emit("mul", [_as_int(L, take), L.const(1 << i, L.opt.int, a.type.shape)])])
    return q


def trunc_divmod(L, a, b):
    """(lax.div(a, b), lax.rem(a, b)) of integers, a or b secret."""
    _needs_64_bit_ring(L, "integer division and remainder (//, %, lax.div, lax.rem)")
    a, b = L.same_shape(a, b)
    c = public_const_value(L, b)
    abs_a, neg_a = _sign_split(L, a)
    if c is not None and not b.type.secret:
        c = np.broadcast_to(c, a.type.shape).astype(np.int64)
        if np.any(c == 0):
            raise CompileError("integer division by a constant 0")
        q = _floor_div_by_constant(L, abs_a, np.abs(c))
        neg_q = L.emit("xor", [neg_a, L.const(c < 0, L.opt.bool)])
        abs_b = L.const(np.abs(c), L.opt.int)
    else:
        abs_b, neg_b = _sign_split(L, b)
        q = _floor_div_long(L, abs_a, abs_b)
        neg_q = L.emit("xor", [neg_a, neg_b])
    r = L.emit("sub", [abs_a, L.emit("mul", [q, abs_b])])
    q = L.emit("select", [neg_q, L.emit("neg", [q]), q])
    r = L.emit("select", [neg_a, L.emit("neg", [r]), r])
    return q, r


def int_div(L, a, b):
    """lax.div of integers (called by rules_math's div for integer operands)."""
    if not (a.type.secret or b.type.secret):
        return L.emit("int_div", list(L.same_shape(a, b)))
    return trunc_divmod(L, a, b)[0]


def _fxp_rem(L, a, b):
    """lax.rem of fixed-point values: sign(a) (|a| - |b| q), q = floor(|a| / |b|) from
    |a| / |b| (a public reciprocal, or the secret one), fixed by the same three
    comparisons as for integers; |a| - |b| q is exact (an int times a value). Holds
    while the estimate is within 2 of q: |a| < 2^17 (MAX_FXP_REM_DIVIDEND)."""
    f = L.opt.fxp_bits
    a, b = L.same_shape(L.to_frac(L.as_fxp(a), f), L.to_frac(L.as_fxp(b), f))
    abs_a, neg_a = _sign_split(L, a)
    c = public_const_value(L, b)
    if c is not None and not b.type.secret:
        c = np.abs(np.broadcast_to(c, a.type.shape).astype(np.float64))
        if np.any(c == 0):
            raise CompileError("remainder by a constant 0")
        abs_b = L.const(c, L.opt.fxp)
        inv = L.const(1.0 / c, L.opt.fxp)
    else:
        abs_b, _ = _sign_split(L, b)
        inv = L.emit("reciprocal", [abs_b])
    q = L.emit("convert", [L.fmul(abs_a, inv)], to=L.opt.int)
    t = L.emit("sub", [abs_a, L.emit("mul", [q, abs_b])])
    zero = L.const(0.0, L.opt.fxp, a.type.shape)
    fixes = ((L.emit("less", [t, zero]), "sub"), (L.emit("less", [t, L.emit("neg", [abs_b])]), "sub"),
             (L.emit("not", [L.emit("less", [t, abs_b])]), "add"))
    for bit, sign in fixes:
        q = L.emit(sign, [q, _as_int(L, bit)])
    r = L.emit("sub", [abs_a, L.emit("mul", [q, abs_b])])
    return L.emit("select", [neg_a, L.emit("neg", [r]), r])


MAX_FXP_REM_DIVIDEND = 2.0 ** 17


@rule("rem")
def _rem(L, eqn, a, b):
    if a.type.dtype.is_fxp or b.type.dtype.is_fxp:
        return _fxp_rem(L, a, b)
    if not (a.type.secret or b.type.secret):
        a, b = L.same_shape(a, b)
        return L.emit("sub", [a, L.emit("mul", [b, L.emit("int_div", [a, b])])])
    return trunc_divmod(L, a, b)[1]


def _shift_amount(L, s):
    """The shift amount if it is one constant, else None."""
    c = public_const_value(L, s)
    if c is None or s.type.secret or np.unique(c).size != 1:
        return None
    return int(np.unique(c)[0])


def _amount_onehot(L, s, shape, top_catches_rest: bool):
    """[s == j] for j = 0..31 along a new leading axis, as ints; with top_catches_rest
    the last one is [s >= 31] (an arithmetic shift by 31 or more keeps the sign)."""
    s = L.broadcast_to(s, shape)
    wide = [_INT_BITS + 1] + list(shape)
    sj = L.emit("broadcast", [s], shape=wide, dims=list(range(1, len(wide))))
    js = L.emit("iota", [], shape=wide, dim=0, dtype=s.type.dtype)
    hit = L.emit("eq", [sj, js])
    if top_catches_rest:
        top = L.emit("not", [L.emit("less", [sj, L.const(_INT_BITS, s.type.dtype, wide)])])
        last = np.broadcast_to((np.arange(_INT_BITS + 1) == _INT_BITS).reshape([-1] + [1] * len(shape)), wide)
        hit = L.emit("select", [L.const(last.copy(), L.opt.bool), top, hit])
    return _as_int(L, hit), wide


def _shift_left_by(L, x, s):
    """x << s for a run-time amount: x 2^s, 2^s = sum_j [s == j] 2^j (0 for s outside
    [0, 31], as JAX). Cost: one batched equality over 32 candidates, one product."""
    _needs_64_bit_ring(L, "a shift by a run-time amount")
    x, s = L.same_shape(x, s)
    onehot, wide = _amount_onehot(L, s, x.type.shape, False)
    pows = L.const(np.broadcast_to((2 ** np.arange(_INT_BITS + 1)).reshape([-1] + [1] * len(x.type.shape)),
                                   wide).astype(np.int64), L.opt.int)
    pow2 = L.emit("reduce_sum", [L.emit("mul", [onehot, pows])], axes=[0])
    return L.emit("mul", [x, pow2])


def _shift_right_by(L, x, s):
    """x >> s (arithmetic) for a run-time amount: sum_j [s == j] floor(x / 2^j), the
    last candidate for every s >= 31. All 32 candidates at once: floor(x 2^(31-j) / 2^31)
    (a local product, then one exact shift of the stacked array; |x| < 2^31 keeps
    x 2^31 inside the ring). Cost: one truncation, one comparison and one equality,
    batched, and one product."""
    _needs_64_bit_ring(L, "a shift by a run-time amount")
    x, s = L.same_shape(x, s)
    onehot, wide = _amount_onehot(L, s, x.type.shape, True)
    xs = L.emit("broadcast", [x], shape=wide, dims=list(range(1, len(wide))))
    scale = (2 ** (_INT_BITS - np.arange(_INT_BITS + 1))).reshape([-1] + [1] * len(x.type.shape))
    cands = _floor_shift(L, L.emit("mul", [xs, L.const(np.broadcast_to(scale, wide).astype(np.int64),
                                                       L.opt.int)]), _INT_BITS)
    return L.emit("reduce_sum", [L.emit("mul", [onehot, cands])], axes=[0])


@rule("shift_left")
def _shift_left(L, eqn, x, s):
    n = _shift_amount(L, s)
    return _shift_left_by(L, x, s) if n is None else L.emit("lshift", [x], bits=n)


@rule("shift_right_arithmetic")
def _shift_right_arithmetic(L, eqn, x, s):
    n = _shift_amount(L, s)
    return _shift_right_by(L, x, s) if n is None else _floor_shift(L, x, n)


@rule("shift_right_logical")
def _shift_right_logical(L, eqn, x, s):
    """int32 semantics: a negative value is its bit pattern 2^32 + a, and
    (a + 2^32) >> s = (a >> s) + 2^(32 - s) for s <= 32; amounts past 31 give 0."""
    n = _shift_amount(L, s)
    if n == 0:
        return x
    zero = L.const(0, x.type.dtype, x.type.shape)
    neg = _as_int(L, L.emit("less", [x, zero]))
    if n is not None:
        if n >= 32:
            return zero
        if n == 1:        # 2^31 is no int of a 32-bit ring
            _needs_64_bit_ring(L, "a logical right shift by 1")
        return L.emit("add", [_floor_shift(L, x, n), L.emit("mul", [neg, L.const(1 << (32 - n), L.opt.int,
                                                                                    x.type.shape)])])
    _needs_64_bit_ring(L, "a shift by a run-time amount")
    x, s = L.same_shape(x, s)
    onehot, wide = _amount_onehot(L, s, x.type.shape, False)
    pows = (2 ** (32 - np.arange(_INT_BITS + 1))).reshape([-1] + [1] * len(x.type.shape))
    high = L.emit("reduce_sum", [L.emit("mul", [onehot, L.const(np.broadcast_to(pows, wide).astype(np.int64),
                                                                   L.opt.int)])], axes=[0])
    out = L.emit("add", [_shift_right_by(L, x, s), L.emit("mul", [neg, high])])
    past = L.emit("not", [L.emit("less", [s, L.const(32, s.type.dtype, x.type.shape)])])
    return L.emit("select", [past, zero, out])
