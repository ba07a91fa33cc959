"""Truncation placement: move truncations later so that sums of products pay one.

    add(trunc(a), trunc(b))      -> trunc(add(a, b))
    add(trunc(a), c)             -> trunc(add(a, lshift(c)))       (lshift is local, free)
    reduce_sum(trunc(a))         -> trunc(reduce_sum(a))           (sum of products)
    neg/reshape/transpose/slice(trunc(a)) -> trunc(op(a))

A truncation is moved only when its value has no other reader and it is made in the
same block as its reader (never into a loop body), so no work is duplicated. Values at the doubled scale fxp<k,2f> must stay below 2^(k-2f-1) in
magnitude (2^27 at k=64, f=18): the same bound a product needs before its own
truncation anyway. Truncation error stays at most 1 ulp per truncation left.
"""
from __future__ import annotations

from ..ir.ops import infer
from .rewrite import run_on_program, uses

_UNARY_SINK = ("neg", "reshape", "transpose", "slice", "reduce_sum", "cumsum")


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
                lifted = make(op, em, "lshift", [other], bits=bits)
                x, y = (t.inputs[0], lifted) if ta is not None else (lifted, t.inputs[0])
            return [make(op, em, "trunc", [make(op, em, op.name, [x, y])], bits=bits)]
        return None

    changed = False
    while run_on_program(p, fn):
        changed = True
        n_uses = uses(p.ops, p.results)
        prod = {id(o): o2 for o2 in p.walk() for o in o2.outputs}
        block_of = _block_of(p.ops, 0, {})
    return changed
