"""Truncation placement: move truncations later where the range allows it.

    add(trunc(a), trunc(b))      -> trunc(add(a, b))
    add(trunc(a), c)             -> trunc(add(a, lshift(c)))       (lshift is local, free)
                                    only for a public constant c below the doubled
                                    scale's range (_fits_doubled): any other c may be as
                                    large as its own format holds
    neg/reshape/transpose/slice(trunc(a)) -> trunc(op(a))

A truncation is moved only when its value has no other reader, it is made in the
same block as its reader (never into a loop body), so no work is duplicated, and it
takes a product of two values at its result's scale back to that scale (2f -> f bits;
the wide formats of compiler/lower/wide.py use the ring's headroom themselves). Values at
the doubled scale fxp<k,2f> must stay below 2^(k-2f-1) in magnitude (2^27 at k=64,
f=18): the same bound a product needs before its own truncation anyway, and an
addition of two products at most doubles it. Truncation error stays at most 1 ulp per
truncation left.

Reductions are where the rule stops: reduce_sum(trunc(a)) is NOT rewritten to
trunc(reduce_sum(a)). An accumulator of n products at 2f bits wraps once the SUM
passes 2^(k-2f-1) (1.3e8 at the defaults) although every term and the truncated result
would fit: the sum of squares of 1000 values up to 3000 (3.1e9) came out 1.8e8 and
jnp.var of them negative. The lowering truncates such products to f + 6 bits before
the sum (rules_reduce.GUARD_BITS: range 2^(k-f-7), 2.7e11); the truncations of one step
still run as one batched round (rounds.py), so the cost is the truncation of n
elements instead of one (aby3: one more ring element sent per element).
Such a truncation moves with its sum (a local op) to just before the sum's first
reader, so that it is not fused with its product (rounds.py keeps fused pairs in
place) and the truncations of independent sums share a round.
A dot product keeps its single truncation after the sum (its result must fit the
product range; docs/fixed-point.md).
"""
from __future__ import annotations

import numpy as np

from ..ir.ops import infer
from .rewrite import run_on_program, uses

_UNARY_SINK = ("neg", "reshape", "transpose", "slice")


def _block_of(ops, block_id, out):
    for op in ops:
        out[id(op)] = block_id
        for b in op.blocks:
            _block_of(b.ops, id(b), out)
    return out


def sink_truncations(p) -> bool:
    n_uses = uses(p.ops, p.results)
    prod = {id(o): op for op in p.walk() for o in op.outputs}
    block_of = _block_of(p.ops, 0, {})

    def single_trunc(v, reader):
        op = prod.get(id(v))
        if op is not None and op.name == "trunc" and n_uses.get(id(v), 0) == 1 \
                and op.inputs[0].type.dtype.frac == 2 * op.attrs["bits"] \
                and block_of.get(id(op)) == block_of.get(id(reader)):
            return op
        return None

    def make(op, em, name, inputs, **attrs):
        t = infer(name, [v.type for v in inputs], attrs)[0]
        v = em.emit(op, name, inputs, t, **attrs)
        prod[id(v)] = em.ops[-1]
        block_of[id(em.ops[-1])] = block_of.get(id(op))
        n_uses[id(v)] = 1
        return v

    def fn(op, em):
        if op.name in _UNARY_SINK:
            t = single_trunc(op.inputs[0], op)
            if t is None:
                return None
            inner = make(op, em, op.name, [t.inputs[0]], **op.attrs)
            return [make(op, em, "trunc", [inner], bits=t.attrs["bits"])]
        if op.name in ("add", "sub"):
            a, b = op.inputs
            ta, tb = single_trunc(a, op), single_trunc(b, op)
            if ta is None and tb is None:
                return None
            if ta is not None and tb is not None:
                if ta.attrs["bits"] != tb.attrs["bits"]:
                    return None
                bits = ta.attrs["bits"]
                x, y = ta.inputs[0], tb.inputs[0]
            else:
                t = ta or tb
                bits = t.attrs["bits"]
                other = b if ta is not None else a
                if not _fits_doubled(other, bits, p.field, prod):
                    return None
                lifted = make(op, em, "lshift", [other], bits=bits)
                x, y = (t.inputs[0], lifted) if ta is not None else (lifted, t.inputs[0])
            return [make(op, em, "trunc", [make(op, em, op.name, [x, y])], bits=bits)]
        return None

    changed = _truncate_next_to_sums(p)
    while run_on_program(p, fn):
        changed = True
        n_uses = uses(p.ops, p.results)
        prod = {id(o): o2 for o2 in p.walk() for o in o2.outputs}
        block_of = _block_of(p.ops, 0, {})
    return changed


def _fits_doubled(v, bits: int, field: int, prod) -> bool:
    """Whether v (at `bits` fractional bits) can be lifted to 2 * bits without wrapping:
    only a public constant, known to be below 2^(k - 2 bits - 3). Anything else may be as
    large as its own format allows (x * y + 3e8 came out 3.2e7 when 3e8 was lifted to
    36 bits), so add(trunc(a), c) keeps its truncation where it is."""
    op = prod.get(id(v))
    while op is not None and op.name == "broadcast":
        op = prod.get(id(op.inputs[0]))
    if op is None or op.name != "constant" or v.type.secret:
        return False
    limit = 2.0 ** (field - 2 * bits - 3)
    return bool(np.all(np.abs(np.asarray(op.attrs["value"], np.float64)) < limit))


_SUMS = ("reduce_sum", "cumsum")


def _truncate_next_to_sums(p) -> bool:
    """Each truncation read only by a sum moves, with its sum, to just before the first
    reader of the sum (sums are local): [mul a, mul b, trunc a, trunc b, sum a, sum b],
    so independent sums' truncations are adjacent and share one round (rounds.py)."""
    n_uses = uses(p.ops, p.results)
    moved = False

    def block(ops):
        nonlocal moved
        for op in ops:
            for b in op.blocks:
                block(b.ops)
        readers = {}
        for op in ops:
            for v in op.inputs:
                readers.setdefault(id(v), []).append(op)
        pairs = []
        for t in ops:
            if t.name != "trunc":
                continue
            rs = readers.get(id(t.outputs[0]), [])
            if t.outputs[0].type.secret and len(rs) == 1 \
                    and rs[0].name in _SUMS and n_uses.get(id(t.outputs[0])) == 1:
                pairs.append((t, rs[0]))
        if not pairs:
            return
        movers = {id(o) for pair in pairs for o in pair}
        rest = [o for o in ops if id(o) not in movers]
        at = {}
        for t, r in pairs:
            first = next((k for k, o in enumerate(rest)
                          if any(v is r.outputs[0] for v in o.inputs)), len(rest))
            at.setdefault(first, []).append((t, r))
        new = []
        for k in range(len(rest) + 1):
            group = at.get(k, [])
            new.extend(t for t, _ in group)
            new.extend(r for _, r in group)
            if k < len(rest):
                new.append(rest[k])
        if [id(o) for o in new] != [id(o) for o in ops]:
            ops[:] = new
            moved = True

    block(p.ops)
    return moved
