"""Lowering rules: reduce_prod (jnp.prod) as a tree of products, and the running
products / maxima / minima (jnp.cumprod, lax.cummax, lax.cummin) as a parallel prefix.

The reduced axes move to the end and are flattened to one axis of length n; each level
multiplies the first half by the second (a padding 1 makes odd lengths even), so the
product costs ceil(log2 n) rounds of n/2, n/4, ... products, each with its truncation.
Fixed point: every level truncates, so the error is about n ulps relative to the
partial products; the product itself must stay inside the value range (a product of
n values of size a is a^n).
"""
from __future__ import annotations

import numpy as np

from .context import rule


def _halves(L, x, n):
    """x[..., :h] and x[..., h:] after padding the last axis to an even length 2h."""
    shape = list(x.type.shape)
    if n % 2:
        one = L.const(1.0 if x.type.dtype.is_fxp else 1, x.type.dtype, shape[:-1] + [1])
        x = L.emit("concat", [x, one], axis=len(shape) - 1)
        n += 1
    h = n // 2
    start = [0] * len(shape)

    def part(lo, hi):
        return L.emit("slice", [x], start=start[:-1] + [lo], limit=shape[:-1] + [hi],
                      strides=[1] * len(shape))
    return part(0, h), part(h, n), h


@rule("reduce_prod")
def _reduce_prod(L, eqn, x):
    axes = sorted(int(a) for a in eqn.params["axes"])
    shape = list(x.type.shape)
    keep = [d for d in range(len(shape)) if d not in axes]
    out_shape = [shape[d] for d in keep]
    n = int(np.prod([shape[d] for d in axes], dtype=np.int64))
    if n == 0:
        return L.const(1.0 if x.type.dtype.is_fxp else 1, x.type.dtype, out_shape)
    if axes != list(range(len(shape) - len(axes), len(shape))):
        x = L.emit("transpose", [x], perm=keep + axes)
    x = L.emit("reshape", [x], shape=out_shape + [n])
    while n > 1:
        a, b, n = _halves(L, x, n)
        x = L.emit("and", [a, b]) if x.type.dtype.is_bool else L.fmul(a, b)
    return L.emit("reshape", [x], shape=out_shape)


def _combine(L, how, a, b):
    if how == "prod":
        return L.emit("and", [a, b]) if a.type.dtype.is_bool else L.fmul(a, b)
    a_wins = L.emit("less", [b, a] if how == "max" else [a, b])
    return L.emit("select", [a_wins, a, b])


def _slice_axis(L, x, axis, lo, hi):
    shape = list(x.type.shape)
    start, limit = [0] * len(shape), list(shape)
    start[axis], limit[axis] = lo, hi
    return L.emit("slice", [x], start=start, limit=limit, strides=[1] * len(shape))


def _prefix(how):
    def lower(L, eqn, x):
        """Hillis-Steele scan: at distance d = 1, 2, 4, ... each element combines with the
        one d before it (the first d keep themselves: a 1 for products, their own value
        for max / min): ceil(log2 n) levels of one batched product or comparison."""
        axis, reverse = int(eqn.params["axis"]), bool(eqn.params["reverse"])
        if reverse:
            x = L.emit("rev", [x], dims=[axis])
        if x.type.dtype.is_fxp and how == "prod":
            x = L.to_frac(x, L.opt.fxp_bits)
        n, d = x.type.shape[axis], 1
        while d < n:
            head = _slice_axis(L, x, axis, 0, d)
            if how == "prod":
                shape = list(head.type.shape)
                head = L.const(1.0 if x.type.dtype.is_fxp else 1, x.type.dtype, shape)
            before = L.emit("concat", [head, _slice_axis(L, x, axis, 0, n - d)], axis=axis)
            x = _combine(L, how, x, before)
            d *= 2
        return L.emit("rev", [x], dims=[axis]) if reverse else x
    return lower


rule("cumprod")(_prefix("prod"))
rule("cummax")(_prefix("max"))
rule("cummin")(_prefix("min"))
