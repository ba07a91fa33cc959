"""Lowering rules for primitives newer jax versions emit (added with the GPT-2 model)."""
from __future__ import annotations

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
