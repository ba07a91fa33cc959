"""Common-subexpression elimination and dead-code elimination."""
from __future__ import annotations

import numpy as np

from ..ir.program import Block
from .rewrite import run_on_program, uses


def _key_attr(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_key_attr(x) for x in v)
    return (type(v).__name__, str(v))


def cse(p) -> bool:
    seen = {}

    def fn(op, em):
        if op.blocks or op.name == "reveal":
            return None
        key = (op.name, tuple(id(v) for v in op.inputs),
               tuple((k, _key_attr(op.attrs[k])) for k in sorted(op.attrs)))
        if key in seen:
            return seen[key]
        seen[key] = op.outputs
        return None

    return run_on_program(p, fn)


def _dce_block(block: Block, live_extra=()) -> bool:
    changed = False
    while True:
        n = uses(block.ops, list(block.results) + list(live_extra))
        keep = [op for op in block.ops if any(n.get(id(o), 0) for o in op.outputs)]
        if len(keep) == len(block.ops):
            break
        block.ops[:] = keep
        changed = True
    for op in block.ops:
        for b in op.blocks:
            changed |= _dce_block(b)
    return changed


def dce(p) -> bool:
    body = Block(p.params, p.ops, p.results)
    changed = _dce_block(body)
    p.ops = body.ops
    return changed
