"""Lowering rules: elementwise arithmetic, comparison, logic, selection, conversion."""
from __future__ import annotations

import numpy as np

from . import quotient_round, wide
from .variance import two_pass_variance
from .context import CompileError, Lowerer, rule


def _aligned(L: Lowerer, *vs):
    """Broadcast scalar literals and bring fxp operands to a common scale."""
    vs = wide.narrow(L, L.same_shape(*vs))
    if any(v.type.dtype.is_fxp for v in vs):
        vs = [L.as_fxp(v) for v in vs]
        frac = L.common_frac(vs)
        vs = [_const_at(L, v, frac) or L.to_frac(v, frac) for v in vs]
    return vs


def _const_at(L, v, frac):
    """A public constant below `frac` bits encoded afresh at `frac` (not shifted: 1e-6
    at 18 bits is 0), or None."""
    if v.type.secret or v.type.dtype.frac >= frac:
        return None
    c = L.const_value(v)
    if c is None:
        return None
    c = np.asarray(c, np.float64)
    dt = v.type.dtype.with_frac(frac)
    if c.ndim == 0:
        return L.const(c, dt, v.type.shape)
    return L.emit("constant", [], value=np.ascontiguousarray(np.broadcast_to(c, v.type.shape)), dtype=dt)


@rule("add", "add_any")
def _add(L, eqn, a, b):
    a, b = L.same_shape(a, b)
    w = wide.add(L, a, b)
    return w if w is not None else L.emit("add", _aligned(L, a, b))


@rule("sub")
def _sub(L, eqn, a, b):
    a, b = L.same_shape(a, b)
    w = wide.add(L, a, b, sub=True)
    if w is None:
        w = two_pass_variance(L, a, b)
    return w if w is not None else L.emit("sub", _aligned(L, a, b))


@rule("neg")
def _neg(L, eqn, a):
    out = L.emit("neg", [a])
    if id(a) in L.wide:
        L.wide[id(out)] = L.wide[id(a)]
    return out


@rule("mul")
def _mul(L, eqn, a, b):
    a, b = L.same_shape(a, b)
    if a.type.dtype.is_bool and b.type.dtype.is_bool:
        return L.emit("and", [a, b])
    return L.fmul(a, b)


@rule("square")
def _square(L, eqn, a):
    return L.fmul(a, a)


@rule("integer_pow")
def _integer_pow(L, eqn, x):
    return integer_power(L, x, eqn.params["y"])


def integer_power(L, x, y: int):
    """x**y by repeated squaring: about 2*log2(y) products; negative y via reciprocal."""
    if y == 0:
        return L.const(1.0 if x.type.dtype.is_fxp else 1, x.type.dtype, x.type.shape)
    result, base, n = None, x, abs(y)
    while n:
        if n & 1:
            result = base if result is None else L.fmul(result, base)
        n >>= 1
        if n:
            base = L.fmul(base, base)
    if y < 0:
        if not result.type.dtype.is_fxp:
            raise CompileError("negative integer power of an integer")
        result = L.emit("reciprocal", [result])
    return result


def _less(L, a, b):
    return L.emit("less", _aligned(L, a, b))


# lt_to / le_to: comparisons in IEEE total order (jnp.searchsorted, digitize, interp).
# They differ from lt / le only on NaN and -0.0, which fixed point does not have.
@rule("lt", "lt_to")
def _lt(L, eqn, a, b):
    return _less(L, a, b)


@rule("gt")
def _gt(L, eqn, a, b):
    return _less(L, b, a)


@rule("ge")
def _ge(L, eqn, a, b):
    return L.emit("not", [_less(L, a, b)])


@rule("le", "le_to")
def _le(L, eqn, a, b):
    return L.emit("not", [_less(L, b, a)])


@rule("eq")
def _eq(L, eqn, a, b):
    return L.emit("eq", _aligned(L, a, b))


@rule("ne")
def _ne(L, eqn, a, b):
    return L.emit("not", [L.emit("eq", _aligned(L, a, b))])


def select(L, pred, on_true, on_false):
    pred, on_true, on_false = L.same_shape(pred, on_true, on_false)
    if id(on_true) in L.wide and id(on_false) in L.wide:
        return wide.select(L, pred, on_true, on_false)
    on_true, on_false = _aligned(L, on_true, on_false)
    return L.emit("select", [pred, on_true, on_false])


@rule("select_n")
def _select_n(L, eqn, which, *cases):
    known = L.known_value(eqn.invars[0])
    if known is not None and np.unique(known).size == 1:
        # a predicate fixed in the program (optax.MultiSteps' `where(emit, new, old)` in
        # a Python loop of steps): that case as it is, so a moment there stays wide
        pick = cases[int(np.clip(np.ravel(known)[0], 0, len(cases) - 1))]
        return L.broadcast_to(pick, eqn.outvars[0].aval.shape)
    if which.type.dtype.is_bool:
        if len(cases) != 2:
            raise CompileError("select_n with a bool predicate takes two cases")
        return select(L, which, cases[1], cases[0])
    out = cases[0]
    for i, c in enumerate(cases[1:], start=1):
        hit = L.emit("eq", L.same_shape(which, L.const(i, which.type.dtype)))
        out = select(L, hit, c, out)
    return out


@rule("max")
def _max(L, eqn, a, b):
    # select(b < a, a, b): relu = max(x, 0) then tests 0 < x, the very comparison its
    # gradient (x > 0) makes, so CSE shares one secret comparison between the two.
    if id(a) in L.wide and id(b) in L.wide:     # amsgrad's running max of second moments
        return wide.maximum(L, a, b)
    a, b = _aligned(L, a, b)
    return L.emit("select", [L.emit("less", [b, a]), a, b])


@rule("min")
def _min(L, eqn, a, b):
    a, b = _aligned(L, a, b)
    return L.emit("select", [L.emit("less", [b, a]), b, a])


@rule("abs")
def _abs(L, eqn, x):
    zero = L.const(0, x.type.dtype, x.type.shape)
    return L.emit("select", [L.emit("less", [x, zero]), L.emit("neg", [x]), x])


@rule("sign")
def _sign(L, eqn, x):
    dt, shape = x.type.dtype, x.type.shape
    zero = L.const(0, dt, shape)
    neg, pos = L.emit("less", [x, zero]), L.emit("less", [zero, x])
    one = L.const(1, dt, shape)
    sel = L.emit("select", [pos, one, zero])
    return L.emit("select", [neg, L.const(-1, dt, shape), sel])


@rule("clamp")
def _clamp(L, eqn, lo, x, hi):
    lo, x, hi = _aligned(L, lo, x, hi)
    x = L.emit("select", [L.emit("less", [x, lo]), lo, x])
    return L.emit("select", [L.emit("less", [hi, x]), hi, x])


def _logic(name_bool, name_bits):
    def lower(L, eqn, *xs):
        xs = L.same_shape(*xs)
        if all(x.type.dtype.is_bool for x in xs):
            return L.emit(name_bool, xs)
        return L.emit(name_bits, xs)          # integers, secret ones included
    return lower


for _jax, _b, _i in [("and", "and", "bit_and"), ("or", "or", "bit_or"),
                     ("xor", "xor", "bit_xor"), ("not", "not", "bit_not")]:
    rule(_jax)(_logic(_b, _i))


@rule("convert_element_type")
def _convert(L, eqn, x):
    to = L.dtype_of(eqn.outvars[0].aval)
    if to == x.type.dtype or (to.is_fxp and x.type.dtype.is_fxp):
        return x
    if to.is_bool:
        zero = L.const(0, x.type.dtype, x.type.shape)
        return L.emit("not", [L.emit("eq", [x, zero])])
    if x.type.dtype.is_fxp:
        # float -> int rounds toward zero: floor(|x|) with the sign restored
        neg, ax = _magnitude(L, x)
        fl = _floor_int(L, ax)
        fl = fl if to.is_int else L.emit("convert", [fl], to=to)
        return L.emit("select", [neg, L.emit("neg", [fl]), fl])
    return L.emit("convert", [x], to=to)


def _magnitude(L, x):
    """(x < 0, |x|); |x| of a quotient by a constant stays one (quotient_round.py)."""
    q = quotient_round.magnitude(L, x)
    if q is not None:
        return q
    x = L.to_frac(L.as_fxp(x), L.opt.fxp_bits)
    neg = L.emit("less", [x, L.const(0, x.type.dtype, x.type.shape)])
    return neg, L.emit("select", [neg, L.emit("neg", [x]), x])


def _floor_int(L, x):
    """Exact floor of an fxp value as an int. Truncation by f bits (convert) may come
    out 1 too high for secret x (its carry from the dropped bits), so one comparison
    corrects it: t - [x < t * 2^f]. Public x: exact from the start. A quotient by a
    constant, x / n, is floored exactly at x (quotient_round.py), not at its rounding."""
    q = quotient_round.floor_int(L, x)
    if q is not None:
        return q
    x = L.to_frac(L.as_fxp(x), L.opt.fxp_bits)
    t = L.emit("convert", [x], to=L.opt.int)
    if not x.type.secret:
        return t
    over = L.emit("less", [x, L.emit("convert", [t], to=x.type.dtype)])
    return L.emit("sub", [t, L.emit("convert", [over], to=L.opt.int)])


def _floor(L, x):
    """floor(x) as fxp: exact (see _floor_int)."""
    fl = _floor_int(L, x)
    return L.emit("convert", [fl], to=L.opt.fxp)


@rule("floor")
def _floor_rule(L, eqn, x):
    return _floor(L, x)


@rule("ceil")
def _ceil(L, eqn, x):
    return L.emit("neg", [_floor(L, quotient_round.negated(L, x))])


@rule("round")
def _round(L, eqn, x):
    """lax.round: rounding_method 0 rounds half away from zero (lax.round's default):
    sign(x) floor(|x| + 1/2); 1 rounds half to even (jnp.round): r = floor(x + 1/2),
    less 1 where x + 1/2 == r (a tie) and r is odd (r - 2 floor(r / 2), exact)."""
    half = L.const(0.5, L.opt.fxp, x.type.shape)
    if int(eqn.params.get("rounding_method", 0)) == 0:
        neg, ax = _magnitude(L, x)
        r = _floor(L, _plus_half(L, ax, half))
        return L.emit("select", [neg, L.emit("neg", [r]), r])
    y = _plus_half(L, x, half)
    r = _floor_int(L, y)
    rf = L.emit("convert", [r], to=L.opt.fxp)
    tie = quotient_round.tie(L, y, r)
    tie = L.emit("convert", [L.emit("eq", [y, rf]) if tie is None else tie], to=L.opt.int)
    h = _floor_int(L, L.fmul(rf, half))
    two = L.const(2, L.opt.int, x.type.shape)
    odd = L.emit("sub", [r, L.emit("mul", [two, h])])
    return L.emit("convert", [L.emit("sub", [r, L.emit("mul", [tie, odd])])], to=L.opt.fxp)


def _plus_half(L, x, half):
    """x + 1/2 (a quotient x' / c stays one: (x' + c/2) / c)."""
    y = quotient_round.shifted(L, x, 0.5, half)
    return y if y is not None else L.emit("add", [L.to_frac(L.as_fxp(x), L.opt.fxp_bits), half])


@rule("copy", "copy_p", "optimization_barrier", "reduce_precision")
def _identity(L, eqn, *xs):
    return list(xs)


@rule("is_finite")
def _is_finite(L, eqn, x):
    # Fixed-point values are always finite; inputs are checked for NaN/inf on entry.
    return L.const(True, L.opt.bool, x.type.shape)


@rule("stop_gradient")
def _stop_gradient(L, eqn, x):
    return x
