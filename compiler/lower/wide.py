"""Wide formats: values whose range the compiler knows get the fractional bits it allows.

Every value at the program's f bits (18) must stay below 2^(k-2f-1) for a product, so
small values keep few significant bits: 1e-8 is 0.003 ulp, and Adam's second moment
(1 - b2) g^2 rounds to 0 for |g| < 0.06. A *wide* value carries a bound B (|v| <= B,
in Lowerer.wide) and is kept at frac_for(B) = 61 - HEAD - log2 B bits (at most
MAX_FRAC): its ring value stays below 2^(61-HEAD), so a product by a public constant of
HEAD significant bits still fits the ring.

Where bounds come from:
    moment   m' = y + c (x - y), the exponential moving average optax writes as
             `c * x + (1 - c) * y` (0 < c <= 1/2, y zero or itself a moment): its
             bound is (1 - c) B_y + c B_x, which from a zero start is (1 - (1-c)^t) B_x,
             exactly what the bias correction divides by. The averaged x is ASSUMED
             below 2^GRAD_BITS (a gradient, 16 by default) and x*x below 2^(2 GRAD_BITS):
             this is the rule's one assumption (docs/fixed-point.md; spu.check reports
             an overflow when it fails). x*x enters exactly (the product before its
             truncation, 2f bits).
    scale    a wide value times / divided by a public constant q: bound B |q|; q keeps
             HEAD significant bits.
    add      a wide value plus a public constant (eps, eps_root): B + |c|.
    sqrt     sqrt of a wide value: sqrt(B) (the runtime's root takes any input scale).
    quotient a / d with d wide: 1/d = rsqrt(d)^2 at f - 2 bits (d >= eps > 0; the
             root normalises, so d keeps its precision), and |a / d| is ASSUMED below
             2^RATIO_BITS (Adam's m_hat / (sqrt(v_hat) + eps) is at most ~7 by
             Cauchy-Schwarz over the two averages).
Any other reader of a wide value gets it back at f bits first (Lowerer.to_frac), and an
addition with a value at f bits is done at f bits, so nothing else changes.
Measured: the moment's product (1 - b)(x^2 - y) at 44 bits meets the truncation
protocols' |x| < 2^62 near x^2 = 2^11, so updates wrap now and then from |g| ~ 44 on
(right up to 40; tests/e2e/test_optimizers.py). Moments are recognised in straight-line code (a Python
loop of steps); state that arrives as a loop carry or an input gets a *state format*
(state_frac: rules_control's carry fixpoint, spu_lite/optim_state.py for optax state),
and what cannot be kept wide is a PrecisionWarning (warn_narrow).
    public   a wide value divided by a public non-constant d (optax's bias correction
             with a public count): 1/d in the clear at HEAD bits (by_public).
Cost: the truncations that move between formats (one per wide step, batched with the
step's others when their shift agrees); the quotient takes an rsqrt and a product where
plaintext divides (about the cost of the reciprocal it replaces).
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

from .errors import CompileError

HEAD = 8           # significant bits of a public constant multiplying a wide value
MAX_FRAC = 56      # and at most this many fractional bits
ROOT_FRAC = 30     # sqrt's output scale at most (runtime roots: (k - 4) / 2 at k = 64)
GRAD_BITS = 4      # assumed |x| < 2^4 for a value a moment averages
RATIO_BITS = 5     # assumed |a / d| < 2^5 for a quotient by a wide value
EPS_FLOOR = 2.0 ** -20   # the smallest eps of a quotient by `wide + eps` (see quotient)


class PrecisionWarning(UserWarning):
    """A value the compiler cannot keep at the format it needs (docs/fixed-point.md)."""


WORKAROUND = ("adam, adamw, rmsprop, nadam, lamb, lion and amsgrad are recognised (optax's step "
              "count must not be a Secret handle: spu.jit passes plain counts public); "
              "for other optimizers check the updates with spu.check; see "
              "docs/fixed-point.md, 'Where the compiler sees the loop'")


def warn_narrow(L, what: str) -> None:
    """Tell the user at compile time that a moment stays at f bits (Adam may diverge)."""
    warnings.warn(f"{L.loc or '<unknown line>'}: {what} stays at {L.opt.fxp_bits} "
                  f"fractional bits: small second moments round to 0 and Adam/RMSprop "
                  f"updates can be far too large; {WORKAROUND}", PrecisionWarning, stacklevel=2)


def frac_for(bound: float, f: int) -> int:
    """Fractional bits of a wide value below `bound` (at least f)."""
    bits = math.log2(bound) if bound > 0 else -64.0
    return int(max(f, min(MAX_FRAC, math.floor(61 - HEAD - bits))))


def state_bound(source_bound: float) -> float:
    """The bound of a moment kept as state (a loop carry, an input): its source's, the
    fixed point of B' = (1 - c) B + c B_x."""
    return 2.0 ** (2 * GRAD_BITS) if source_bound > 2.0 ** GRAD_BITS else 2.0 ** GRAD_BITS


def state_frac(bound: float, f: int) -> int:
    """The format of a moment kept as state: what moment() produces from a state at
    `bound` (frac_for(2 B)), so that a carry or a kept value comes back at its format."""
    return frac_for(2 * bound, f)


def bound_of_state(frac: int) -> float:
    """Inverse of state_frac: the bound a value at a state format `frac` carries."""
    return 2.0 ** (61 - HEAD - 1 - frac)


def mark_state(L, v, frac: int):
    """Mark v (a parameter at a state format, > CompileOptions.fine_frac) as wide."""
    return _mark(L, v, bound_of_state(frac))


def by_public(L, a, d):
    """Wide a divided by a public, non-constant d: optax's bias correction m / (1 - b^t).
    ASSUMED: |a / d| stays below a's bound (a moment from a zero start is at most
    (1 - b^t) B_x, exactly what the correction divides by). 1/d is taken in the clear
    at HEAD fractional bits (1/d >= 1: relative error <= 2^-(HEAD+1)), so the ring
    product |a / d| 2^(F + HEAD) stays below 2^(61 - 1)."""
    f = L.opt.fxp_bits
    d = L.to_frac(L.as_fxp(d), f)
    inv = L.emit("fdiv", [L.const(1.0, L.opt.fxp, d.type.shape), d])
    inv = L.to_frac(inv, HEAD)
    out = L.emit("trunc", [L.emit("mul", [a, L.broadcast_to(inv, a.type.shape)])], bits=HEAD)
    return _mark(L, out, L.wide[id(a)])


def _const_bits(q: float) -> int:
    """Fractional bits that give |q| HEAD significant bits (>= 0)."""
    return max(0, HEAD - 1 - math.floor(math.log2(q)))


def _mark(L, v, bound: float):
    L.wide[id(v)] = float(bound)
    return v


def _retype(L, v, frac: int):
    """v (a wide value) at `frac` bits: an exact lshift or a truncation."""
    return L.to_frac(v, frac)


def scale(L, x, q: np.ndarray):
    """Wide x times the public constant q: x@F * q@s -> trunc to frac_for(B |q|)."""
    f = L.opt.fxp_bits
    qmax = float(np.abs(q).max())
    bound = L.wide[id(x)] * qmax
    s = _const_bits(qmax)
    c_type = L.opt.fxp.with_frac(s)
    uniq = np.unique(q)
    c = L.const(uniq[0], c_type, x.type.shape) if uniq.size == 1 else \
        L.emit("constant", [], value=np.ascontiguousarray(np.broadcast_to(q, x.type.shape)), dtype=c_type)
    raw = L.emit("mul", [x, c])
    return _mark(L, _retype(L, raw, frac_for(bound, f)), bound)


def add_const(L, x, c: np.ndarray, sub: bool = False):
    """Wide x plus (minus) a public constant, at x's scale."""
    bound = L.wide[id(x)] + float(np.abs(c).max())
    F = x.type.dtype.frac
    k = L.const(np.asarray(c, np.float64), L.opt.fxp.with_frac(F))
    k = L.broadcast_to(k, x.type.shape)
    return _mark(L, L.emit("sub" if sub else "add", [x, k]), bound)


def _ema_source(L, x):
    """The averaged value as exactly as it exists, and its bound: a square's product
    before truncation (2f bits), a wide value, or x itself under GRAD_BITS."""
    if id(x) in L.wide:
        return x, L.wide[id(x)]
    op = L.producer(x)
    if op is not None and op.name == "trunc":
        mul = L.producer(op.inputs[0])
        if mul is not None and mul.name == "mul" and mul.inputs[0] is mul.inputs[1] \
                and mul.inputs[0].type.dtype.frac == L.opt.fxp_bits and id(mul.inputs[0]) not in L.wide:
            return mul.outputs[0], 2.0 ** (2 * GRAD_BITS)
    return L.to_frac(x, L.opt.fxp_bits), 2.0 ** GRAD_BITS


def _zero_product(L, v) -> Optional[float]:
    """c if public v is `c * zeros` (an optimizer's zero-initialised state), else None."""
    op = L.producer(v)
    if op is not None and op.name == "trunc":
        op = L.producer(op.inputs[0])
    if op is None or op.name != "mul" or v.type.secret:
        return None
    a, b = (L.const_value(u) for u in op.inputs)
    if a is None or b is None:
        return None
    for c, z in ((a, b), (b, a)):
        if np.ndim(c) == 0 and not np.any(z):
            return float(c)
    return None


#: ops that move or re-encode a value without computing a new one
_CARRIERS = ("reshape", "transpose", "broadcast", "slice", "concat", "rev", "trunc",
             "lshift", "convert", "to_secret", "select")


def _from_outside(L, y) -> bool:
    """Whether y is an input or loop carry of this block, or one moved or selected
    (optax.MultiSteps' where) -- state an average can update -- rather than a value
    computed here."""
    seen, todo = set(), [y]
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        op = L.producer(v)
        if op is None:
            return True
        if op.name in _CARRIERS:
            todo.extend(op.inputs[1:] if op.name == "select" else op.inputs)
    return False


def moment(L, a, b):
    """a + b as an exponential moving average, if it is one: y + c (x - y)."""
    terms = []
    for v in (a, b):
        s = L.scaled.get(id(v))
        if s is not None:
            terms.append(("secret", s[0], s[1]))
            continue
        c = _zero_product(L, v)
        if c is None:
            return None
        terms.append(("zero", None, c))
    (ka, xa, ca), (kb, xb, cb) = terms
    if abs(ca + cb - 1.0) > 1e-6 or min(ca, cb) <= 0:
        return None
    (kx, x, c), (ky, y, _) = sorted(terms, key=lambda t: t[2])[0], sorted(terms, key=lambda t: t[2])[1]
    if kx != "secret" or c > 0.5:
        return None
    if L.opt.field < 64:
        _needs_64_bit_ring(L, _ema_source(L, x)[1])
        return None
    if ky == "secret" and id(y) not in L.wide:
        # state from outside at f bits: a loop carry gets a state format next time round
        # (rules_control's fixpoint); an input not recognised as optimizer state stays
        if not _from_outside(L, y):
            return None     # `0.5 q^2 + 0.5 l` of values computed here (optax.huber_loss)
        source = _ema_source(L, x)[1]
        L.want_wide[id(y)] = state_bound(source)
        if source > 2.0 ** GRAD_BITS:     # an average of squares: a 2nd moment
            warn_narrow(L, "a moving average of squares whose state is an input or loop carry")
        return None
    x, bx = _ema_source(L, x)
    by = L.wide[id(y)] if ky == "secret" else 0.0
    f = L.opt.fxp_bits
    F = frac_for(2 * max(bx, by), f)
    d = L.to_frac(x, F)
    yF = L.to_frac(y, F) if ky == "secret" else None
    if yF is not None:
        d = L.emit("sub", [d, yF])
    s = _const_bits(c)
    k = L.const(c, L.opt.fxp.with_frac(s), x.type.shape)
    # The average's own bound is c times smaller than x - y's: the step c (x - y) keeps
    # up to s more bits (at F they were lost: (1 - b2) g^2 of a gradient of 1 ulp,
    # 2^-46, was 0 at 44 bits and m_hat / eps made Adam's update 4x lr).
    bound = (1 - c) * by + c * bx
    F_out = min(F + s, max(F, frac_for(bound, f)))
    step = L.to_frac(L.emit("mul", [d, k]), F_out)
    out = step if yF is None else L.emit("add", [L.to_frac(y, F_out), step])
    return _mark(L, out, bound)


def _needs_64_bit_ring(L, source_bound: float) -> None:
    """Wide formats need a 64-bit ring. A first moment (an average of gradients) is
    fine at the ring's f bits; a second moment is not: at field 32 (f = 9) (1 - b2) g^2
    is 0 for |g| < 0.7 and the update becomes m / eps."""
    if source_bound > 2.0 ** GRAD_BITS:
        raise CompileError(
            f"a moving average of squares (Adam's or RMSprop's second moment) needs "
            f"field=64: in a {L.opt.field}-bit ring ({L.opt.fxp_bits} fractional bits) "
            f"(1 - b2) g^2 rounds to 0 for small gradients and the update to m / eps")


def root(L, x):
    """sqrt of a wide value, at a fine output scale."""
    bound = math.sqrt(L.wide[id(x)])
    F = min(ROOT_FRAC, frac_for(bound, L.opt.fxp_bits))
    return _mark(L, L.emit("sqrt", [x], frac=F), bound)


def _eps_floored(L, d):
    """d = w + eps (w wide, public 0 <= eps < EPS_FLOOR) as w + EPS_FLOOR; else d.

    Adam's sqrt(v_hat) + eps with eps = 1e-8: a gradient of about 1 ulp (2^-18; the
    rounding noise of a parameter whose true gradient is 0, such as a bias before a
    BatchNorm) has a second moment below the 44-bit state format's resolution (state
    passed in; moment() keeps more bits inside a call), v_hat rounds to 0 and m_hat /
    eps is 1e3 x lr, past RATIO_BITS, so the quotient wraps. With eps
    at least 2^-20 the quotient of such noise stays below 8 (m_hat <= 2^-17 when v
    underflows); a real gradient g moves by eps / |g| relative: 1% at 1e-4."""
    op = L.producer(d)
    if op is None or op.name != "add" or id(op.inputs[0]) not in L.wide:
        return d
    c = L.const_value(op.inputs[1])
    if c is None or np.unique(c).size != 1 or not 0 <= float(np.max(c)) < EPS_FLOOR:
        return d
    return add_const(L, op.inputs[0], np.float64(EPS_FLOOR))


def quotient(L, a, d):
    """a / d for a wide d > 0: a * rsqrt(d)^2, the product under RATIO_BITS; an eps
    below EPS_FLOOR added to d is raised to it (_eps_floored)."""
    f = L.opt.fxp_bits
    d = _eps_floored(L, d)
    r = L.emit("rsqrt", [d], frac=f - 1)
    inv = L.emit("trunc", [L.emit("mul", [r, r])], bits=f)          # 1/d at f - 2 bits
    fa = 62 - RATIO_BITS - 1 - inv.type.dtype.frac
    a = L.to_frac(L.as_fxp(a), min(fa, a.type.dtype.frac) if id(a) in L.wide else f)
    raw = L.emit("mul", [a, inv])
    bound = 2.0 ** RATIO_BITS
    return _mark(L, L.to_frac(raw, frac_for(bound, f)), bound)


def add(L, a, b, sub: bool = False):
    """a + b (a - b) when either is wide, else None: a moment, a wide value and a
    public constant, two wide values (bounds add), or at f bits beside a value at f."""
    if not sub:
        m = moment(L, a, b)
        if m is not None:
            return m
    wa, wb = id(a) in L.wide, id(b) in L.wide
    if not (wa or wb) or not (a.type.dtype.is_fxp and b.type.dtype.is_fxp):
        return None
    if wa and wb:
        bound = L.wide[id(a)] + L.wide[id(b)]
        F = frac_for(bound, L.opt.fxp_bits)
        return _mark(L, L.emit("sub" if sub else "add", [L.to_frac(a, F), L.to_frac(b, F)]), bound)
    w, other = (a, b) if wa else (b, a)
    c = L.const_value(other)
    if c is not None and np.ndim(c) == 0:
        out = add_const(L, w, c, sub=sub and not wa)
        return out if wa or not sub else _mark(L, L.emit("neg", [out]), L.wide[id(out)])
    f = L.opt.fxp_bits
    a, b = (L.to_frac(v, f) if id(v) in L.wide else v for v in (a, b))
    return None if (a.type.dtype.frac != b.type.dtype.frac) else L.emit("sub" if sub else "add", [a, b])


def _meet(L, a, b):
    """Two wide values at the format of the larger bound (the coarser one), and that bound."""
    frac = min(a.type.dtype.frac, b.type.dtype.frac)
    return L.to_frac(a, frac), L.to_frac(b, frac), max(L.wide[id(a)], L.wide[id(b)])


def select(L, pred, a, b):
    """pred ? a : b of two wide values (optax's `where(skip, new_state, old_state)`):
    the result keeps the larger bound and its format, so a moment stays wide."""
    a, b, bound = _meet(L, a, b)
    return _mark(L, L.emit("select", [pred, a, b]), bound)


def maximum(L, a, b):
    """max(a, b) of two wide values (amsgrad's running max of second moments), still wide."""
    a, b, bound = _meet(L, a, b)
    return _mark(L, L.emit("select", [L.emit("less", [b, a]), a, b]), bound)


def narrow(L, vs):
    """Wide operands of any other op come back to f bits."""
    return [L.to_frac(v, L.opt.fxp_bits) if id(v) in L.wide else v for v in vs]
