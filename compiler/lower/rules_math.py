"""Lowering rules: division and the nonlinear functions (evaluated by the runtime's
fixed-point approximations, one IR op each: the rows of compiler/ir/nonlinear.py)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..ir.nonlinear import BY_OP, TABLE
from . import quotient_round, wide
from .context import rule
from .rules_arith import integer_power
from .rules_int import int_div


@rule("div")
def _div(L, eqn, a, b):
    a, b = L.same_shape(a, b)
    if not (a.type.dtype.is_fxp or b.type.dtype.is_fxp):
        return int_div(L, a, b)
    c = L.const_value(b)
    if c is not None and np.all(c != 0):
        out = _by_constant(L, a, b, c)
        quotient_round.record(L, out, a, c)    # floor / round of it are exact
        return out
    if id(b) in L.wide and b.type.secret:
        return wide.quotient(L, a, b)
    if id(a) in L.wide and a.type.secret and not b.type.secret:
        return wide.by_public(L, a, b)              # a bias correction m / (1 - b^t)
    if id(a) in L.wide and a.type.secret and b.type.secret:
        wide.warn_narrow(L, "a moment divided by a secret (optax's count, when secret)")
    sel = L.producer(b)
    if b.type.secret and sel is not None and sel.name == "select" and \
            not sel.inputs[1].type.secret and not sel.inputs[2].type.secret:
        # a / (p ? t : f) with public t, f (what jax.grad of max/relu emits):
        # a * (p ? 1/t : 1/f) -- no secret reciprocal needed.
        one = L.const(1.0, L.opt.fxp, b.type.shape)
        inv_t, inv_f = (L.emit("fdiv", [one, L.to_frac(L.as_fxp(v), L.opt.fxp_bits)])
                        for v in sel.inputs[1:])
        return L.fmul(L.as_fxp(a), L.emit("select", [sel.inputs[0], inv_t, inv_f]))
    if not b.type.secret:           # public divisor: its reciprocal is computed in the clear
        out = _by_public(L, a, b)
        quotient_round.record_public(L, out, a, b)     # floor / round of it are exact
        return out
    if L.opt.field >= 64 and L.const_value(a) is None:
        return _quotient(L, a, b)
    return L.fmul(L.as_fxp(a), _reciprocal(L, b))


def _by_public(L, a, b):
    if a.type.secret and L.opt.field >= 64:
        return _quotient(L, a, b)      # its factors too: 1/b at f bits loses a's bits
    b = L.to_frac(L.as_fxp(b), L.opt.fxp_bits)
    if not a.type.secret:
        return L.emit("fdiv", [L.to_frac(L.as_fxp(a), L.opt.fxp_bits), b])
    inv = L.emit("fdiv", [L.const(1.0, L.opt.fxp, b.type.shape), b])
    return L.fmul(L.as_fxp(a), inv)


def _by_constant(L, a, b, c):
    inv = 1.0 / np.asarray(c, np.float64)
    if a.type.secret:   # x / n: exact to ~2 ulps for any n (fixed_point.scale_plan)
        return L.scale(a, inv, keep_range=True)
    inv_c = L.const(inv, L.opt.fxp, ()) if inv.ndim == 0 else \
        L.emit("constant", [], value=np.broadcast_to(inv, b.type.shape).copy(), dtype=L.opt.fxp)
    return L.fmul(L.as_fxp(a), L.broadcast_to(inv_c, a.type.shape))


def _quotient(L, a, b):
    """a / b, b secret: b's reciprocal as factors (r, s) (runtime/fxp/reciprocal.py
    reciprocal_parts), a / b = trunc(trunc(a r, f) s, f + 4). `a * reciprocal(b)`
    read 1/b at f bits, absolute: 1e4 / 2e4 came out 0.4959, 3e5 / 6e5 0. Ranges:
    |a| < 2^25, |a / b| < 2^22, |b| < 2^22 (spu.check's domain of recip_parts)."""
    f = L.opt.fxp_bits
    r, s = _reciprocal_parts(L, b)
    ar = L.to_frac(L.emit("mul", [L.to_frac(L.as_fxp(a), f), r]), f)
    return L.to_frac(L.emit("mul", [ar, s]), f)


#: recip_parts is taken on the value a divisor was sliced from when that value has at
#: most this many elements (a triangular solve divides step by step by the slices of
#: one diagonal: one batched recip_parts, not one per step)
PARTS_OF_WHOLE = 4096


def _reciprocal_parts(L, b):
    """recip_parts(b) taken before any broadcast of b (as _reciprocal), and before the
    slices and reshapes of a small secret (memoised, so every slice shares it)."""
    chain, root = [], b
    while True:
        op = L.producer(root)
        if op is None or not op.inputs or not op.inputs[0].type.secret or not (
                op.name == "broadcast" or (op.name in ("slice", "reshape") and
                                           np.prod(op.inputs[0].type.shape) <= PARTS_OF_WHOLE)):
            break
        chain.append(op)
        root = op.inputs[0]
    parts = L.parts_of.get(id(root))
    if parts is None:
        parts = L.parts_of[id(root)] = L.emit_multi(
            "recip_parts", [L.to_frac(L.as_fxp(root), L.opt.fxp_bits)])
    for op in reversed(chain):
        parts = [L.emit(op.name, [v], **op.attrs) for v in parts]
    return parts


def _reciprocal(L, b):
    """1/b taken before any broadcast of b: softmax divides by a broadcast row sum,
    so one reciprocal per row, not one per element."""
    op = L.producer(b)
    if op is not None and op.name == "broadcast" and op.inputs[0].type.secret:
        return L.emit("broadcast", [_reciprocal(L, op.inputs[0])], **op.attrs)
    return L.emit("reciprocal", [L.to_frac(L.as_fxp(b), L.opt.fxp_bits)])


def _unary(name):
    def lower(L, eqn, x):
        x = L.as_fxp(x)
        if name == "sqrt" and id(x) in L.wide:
            return wide.root(L, x)
        if not BY_OP[name].any_input_scale:    # these normalise: any scale, a wide one too
            x, = wide.narrow(L, [x])
        if BY_OP[name].any_input_scale and x.type.dtype.frac > L.opt.fxp_bits:
            # log / sqrt / rsqrt take any input scale: e.g. log(exp(x)) keeps exp's bits
            return L.emit(name, [x], frac=L.opt.fxp_bits)
        return L.emit(name, [L.to_frac(x, L.opt.fxp_bits)])
    return lower


for _row in TABLE:
    if _row.primitive is not None and _row.op != "exp":     # exp: its own rule below
        rule(_row.primitive)(_unary(_row.op))


@rule("exp")
def _exp(L, eqn, x):
    """e^x leaves at the finer scale L.opt.exp_frac (26 bits by default): its values
    span 2^-18 .. 2^23, and the extra bits keep small results relatively accurate
    (1e-3 at e^-8 instead of 1e-2). Readers that multiply bring it back to fxp_bits
    first (Lowerer.fmul), so products keep their usual range."""
    return L.emit("exp", [L.to_frac(L.as_fxp(x), L.opt.fxp_bits)], frac=L.opt.exp_frac)


@rule("erfc")
def _erfc(L, eqn, x):
    e = _unary("erf")(L, eqn, x)
    return L.emit("sub", [L.const(1.0, L.opt.fxp, e.type.shape), e])


@rule("exp2")
def _exp2(L, eqn, x):
    ln2 = L.const(float(np.log(2.0)), L.opt.fxp, x.type.shape)
    return _exp(L, eqn, L.fmul(L.as_fxp(x), ln2))


@rule("expm1")
def _expm1(L, eqn, x):
    e = _exp(L, eqn, x)
    return L.emit("sub", [e, L.const(1.0, e.type.dtype, e.type.shape)])


@rule("pow")
def _pow(L, eqn, x, y):
    """x**y: a constant integer exponent uses products, exponents 0.5 and -0.5 are
    sqrt and rsqrt, others exp(y log|x|) with float JAX's signs (_pow_signed)."""
    c = L.const_value(y)
    if c is not None and np.unique(c).size == 1 and float(np.unique(c)[0]) in (0.5, -0.5):
        return _unary("sqrt" if float(np.unique(c)[0]) > 0 else "rsqrt")(L, eqn, x)
    if c is not None and np.all(c == np.round(c)) and np.unique(c).size == 1:
        return integer_power(L, L.as_fxp(x), int(np.unique(c)[0]))
    return L.inline_fn(_pow_signed, eqn, [x, y])


def _pow_signed(x, y):
    """x ** y for an exponent known at run time, as float JAX: |x|^y = exp(y log|x|),
    negated where x < 0 and y is an odd integer (jax.grad of `x ** n` calls pow with the
    float n - 1), 1 at 0^0 and 0 at 0^y for y > 0. A negative x with a fractional y (NaN
    in JAX) and 0^y for y < 0 (inf) keep log's domain finding: log reads x, or 0.
    Cost beyond exp and log: two floors and four comparisons."""
    yf = y.astype(x.dtype)
    fy = jnp.floor(yf)
    integral = fy == yf
    odd = integral & (fy - 2 * jnp.floor(fy / 2) == 1)
    neg = x < 0
    zero = (x == 0) & (yf >= 0)
    base = jnp.where(zero, jnp.ones_like(x), jnp.where(neg & integral, -x, x))
    mag = jnp.exp(yf * jnp.log(base))
    return jnp.where(zero, (yf == 0).astype(x.dtype), jnp.where(neg & odd, -mag, mag))
