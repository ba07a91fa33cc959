"""Lowering rules for primitives newer jax versions emit (stack, tile) and for
functions built from other ops (sinh, cosh, tan, asinh, atanh, cbrt, erf_inv): each of the latter is jnp code
inlined with Lowerer.inline_fn, so its steps keep their own formats and domains."""
from __future__ import annotations

import jax.numpy as jnp

from .context import rule


@rule("stack")
def _stack(L, eqn, *xs):
    """jnp.stack (a primitive since jax 0.10): reshape each operand to have a size-1
    axis at `axis`, then concatenate (fxp operands brought to one scale first)."""
    axis = int(eqn.params["axis"])
    if axis < 0:
        axis += len(xs[0].type.shape) + 1
    if any(x.type.dtype.is_fxp for x in xs):
        xs = [L.as_fxp(x) for x in xs]
        frac = L.common_frac(xs)
        xs = [L.to_frac(x, frac) for x in xs]
    parts = []
    for x in xs:
        shape = list(x.type.shape)
        shape.insert(axis, 1)
        parts.append(L.emit("reshape", [x], shape=shape))
    if len(parts) == 1:
        return parts[0]
    return L.emit("concat", parts, axis=axis)


@rule("tile")
def _tile(L, eqn, x):
    """jnp.tile: every axis d becomes (r, d) by broadcasting, then one reshape (no
    arithmetic, so exact for any visibility)."""
    reps = tuple(int(r) for r in eqn.params["reps"])

    def tile(a):
        pairs = list(zip(reps, a.shape))
        a = a.reshape(sum(((1, d) for _, d in pairs), ()))
        a = jnp.broadcast_to(a, sum(((r, d) for r, d in pairs), ()))
        return a.reshape(tuple(r * d for r, d in pairs))
    return L.inline_fn(tile, eqn, [x])


@rule("sinh")
def _sinh(L, eqn, x):
    """(e^x - e^-x) / 2: exp's domain applies to |x| (<= 16 at the defaults)."""
    return L.inline_fn(lambda a: (jnp.exp(a) - jnp.exp(-a)) * 0.5, eqn, [x])


@rule("cosh")
def _cosh(L, eqn, x):
    return L.inline_fn(lambda a: (jnp.exp(a) + jnp.exp(-a)) * 0.5, eqn, [x])


@rule("tan")
def _tan(L, eqn, x):
    """sin x / cos x: a secret reciprocal of cos, so x near pi/2 + k pi, where float JAX
    is huge, reads a cos of a few ulps (or a domain finding at 0)."""
    return L.inline_fn(lambda a: jnp.sin(a) / jnp.cos(a), eqn, [x])


@rule("asinh")
def _asinh(L, eqn, x):
    """sign(x) log(|x| + sqrt(x^2 + 1)): odd, so the log's argument stays >= 1. x^2 is a
    product: |x| below the product limit's square root (8192 at the defaults)."""
    def asinh(a):
        m = jnp.abs(a)
        return jnp.sign(a) * jnp.log(m + jnp.sqrt(m * m + 1.0))
    return L.inline_fn(asinh, eqn, [x])


@rule("atanh")
def _atanh(L, eqn, x):
    """(log(1 + x) - log(1 - x)) / 2: two logs, no secret reciprocal. Domain |x| < 1;
    at |x| = 1 a log of 0 reads as one ulp (float JAX: inf), reported by spu.check."""
    return L.inline_fn(lambda a: 0.5 * (jnp.log1p(a) - jnp.log1p(-a)), eqn, [x])


@rule("cbrt")
def _cbrt(L, eqn, x):
    """sign(x) exp(log|x| / 3), and 0 at x = 0 (log then reads 1, not 0: no domain
    finding for a value that is not used). Relative error about exp's plus a third of
    log's absolute error."""
    def cbrt(a):
        m = jnp.abs(a)
        nonzero = m > 0
        root = jnp.exp(jnp.log(jnp.where(nonzero, m, 1.0)) / 3.0)
        return jnp.where(nonzero, jnp.sign(a) * root, 0.0)
    return L.inline_fn(cbrt, eqn, [x])


# erfinv: M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011),
# single-precision coefficients (relative error 1.2e-7 in float64), highest power first.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _power_sum(coeffs, a):
    """sum_k c_k a^k from the powers of a, not by Horner: a rounding error of an early
    Horner step would be multiplied by |a|^8 (up to 1.5e3 on the central branch)."""
    out, power = coeffs[-1], None
    for c in coeffs[-2::-1]:
        power = a if power is None else power * a
        out = out + c * power
    return out


@rule("erf_inv")
def _erf_inv(L, eqn, x):
    """x p(w), w = -log(1 - x^2): p a polynomial in w - 2.5 for w < 5 (|x| < 0.9966),
    in sqrt(w) - 3 beyond; each branch sees its w clamped to its own range, so the one
    not taken cannot overflow. Domain |x| < 1: at |x| = 1 - 2^-18 the log reads one ulp
    (erfinv 3.0 there; float JAX: inf at 1). Near +-1 the input's rounding dominates."""
    def erfinv(a):
        w = -jnp.log1p(-a * a)
        central = _power_sum(_ERFINV_CENTRAL, jnp.minimum(w, 5.0) - 2.5)
        tail = _power_sum(_ERFINV_TAIL, jnp.sqrt(jnp.maximum(w, 5.0)) - 3.0)
        return jnp.where(w < 5.0, central, tail) * a
    return L.inline_fn(erfinv, eqn, [x])


@rule("cumlogsumexp")
def _cumlogsumexp(L, eqn, x):
    """lax.cumlogsumexp: a parallel prefix of logaddexp, max(a, b) + log1p(exp(-|a - b|))
    (jnp.logaddexp): ceil(log2 n) levels of one comparison, exp and log1p each. A running
    sum of exp(x - max) would read exp of far-below-max prefixes as 0, and log(0)."""
    import jax
    axis, reverse = int(eqn.params["axis"]), bool(eqn.params["reverse"])
    return L.inline_fn(lambda v: jax.lax.associative_scan(jnp.logaddexp, v, reverse=reverse, axis=axis),
                       eqn, [x])
