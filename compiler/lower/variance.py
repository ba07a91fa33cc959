"""The fast variance `E[x^2] - E[x]^2` computed as `E[(x - E[x])^2]`.

flax's LayerNorm, GroupNorm and BatchNorm compute the variance the fast way by default
(`use_fast_variance=True`), and so does hand-written code like
`jnp.mean(x**2) - jnp.mean(x)**2`. In fixed point that cancels: E[x] carries f bits,
so E[x]^2 is off by ~2|E[x]| 2^-(f+1), which is the whole variance when |E[x]| >> std
(inputs 0.3 +- 0.01: 2% off at f = 18). The two quantities are equal in exact
arithmetic, so the `sub` of such a pair lowers to the two-pass form instead:

    d = x - broadcast(E[x])          local
    v = sum(d * d) / n               one product round (truncated to f + 6 bits before
                                     the sum, rules_reduce) and the exact division

The error of E[x] no longer cancels: E[(x - m')^2] = var + (m - m')^2, and (m - m')^2 is
below 2^-2f. The product is of x - E[x], whose range is the spread of x, never more than
that of x itself, so no limit gets tighter. Cost: the same number of products
(n squares), one round more on the critical path (E[x] before the squares instead of
beside them); the unused E[x^2] and E[x]^2 are removed by dce.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ..ir.program import Value
from .rules_reduce import reduce_sum


def _mean_of(L, v: Value) -> Optional[Tuple[Value, tuple, float]]:
    """If v = reduce_sum(x, axes) * q (a mean, keepdims or not): (x, axes, q)."""
    scaled = L.scaled.get(id(v))
    if scaled is None:
        return None
    s, q = scaled
    op = L.producer(s)
    if op is not None and op.name in ("reshape", "broadcast") and \
            int(op.inputs[0].type.size) == int(s.type.size):
        s, op = op.inputs[0], L.producer(op.inputs[0])      # keepdims: size-1 axes added
    if op is None or op.name != "reduce_sum":
        return None
    return op.inputs[0], tuple(op.attrs["axes"]), q


def _square_of(L, v: Value) -> Optional[Value]:
    """If v = x * x (at any truncation): x."""
    op = L.producer(v)
    while op is not None and op.name == "trunc":
        op = L.producer(op.inputs[0])
    if op is None or op.name != "mul" or op.inputs[0] is not op.inputs[1]:
        return None
    return op.inputs[0]


def two_pass_variance(L, a: Value, b: Value) -> Optional[Value]:
    """a - b where a = mean(x*x) and b = mean(x)^2 over the same axes of the same secret
    x: the variance as mean((x - mean(x))^2); None for anything else."""
    if id(a) in L.wide or id(b) in L.wide or not (a.type.secret and b.type.dtype.is_fxp):
        return None
    second = _mean_of(L, a)
    m = _square_of(L, b)
    first = _mean_of(L, m) if m is not None else None
    if second is None or first is None:
        return None
    sq_in, axes, q = second
    x = _square_of(L, sq_in)
    if x is None or x is not first[0] or axes != first[1] or q != first[2]:
        return None
    shape = list(x.type.shape)
    if len(m.type.shape) == len(shape):
        mb = L.broadcast_to(m, shape)
    else:
        mb = L.emit("broadcast", [m], shape=shape,
                    dims=[i for i in range(len(shape)) if i not in axes])
    frac = max(x.type.dtype.frac, m.type.dtype.frac)
    d = L.emit("sub", [L.to_frac(x, frac), L.to_frac(mb, frac)])
    s = reduce_sum(L, L.fmul(d, d), axes)
    if list(s.type.shape) != list(a.type.shape):
        s = L.emit("reshape", [s], shape=list(a.type.shape))
    return L.scale(s, q, keep_range=True)
