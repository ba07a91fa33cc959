"""Lowering rule: reduce_prod (jnp.prod) as a tree of products.

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
