"""Lowering rules for primitives newer jax versions emit (stack, tile) and for
functions built from other ops (sinh, cosh, tan, asinh, atanh, cbrt): each of the latter is jnp code
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
        frac = max(x.type.dtype.frac for x in xs if x.type.dtype.is_fxp)
        xs = [L.to_frac(L.as_fxp(x), frac) for x in xs]
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
    """sign(x) exp(log|x| / 3), and 0 at x = 0 (where log reads one ulp). Relative error
    about exp's plus a third of log's absolute error."""
    def cbrt(a):
        m = jnp.abs(a)
        return jnp.where(m > 0, jnp.sign(a) * jnp.exp(jnp.log(m) / 3.0), 0.0)
    return L.inline_fn(cbrt, eqn, [x])
