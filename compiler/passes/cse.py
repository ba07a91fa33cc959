"""Common-subexpression elimination and dead-code elimination."""
from __future__ import annotations

import numpy as np

from ..ir.program import Block
from .rewrite import on_body, substitute, uses


def _key_attr(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_key_attr(x) for x in v)
    return (type(v).__name__, str(v))


def _cse_block(block: Block, seen: dict) -> bool:
    """CSE within a block; nested blocks see the enclosing scope's values (they are
    dominated by them) but their own values never leak out."""
    changed = False
    repl = {}
    keep = []
    for op in block.ops:
        op.inputs = [repl.get(id(v), v) for v in op.inputs]
        if op.blocks:
            for b in op.blocks:
                substitute(b, repl)
                changed |= _cse_block(b, dict(seen))
            keep.append(op)
            continue
        key = None if op.name == "reveal" else (
            op.name, tuple(id(v) for v in op.inputs),
            tuple((k, _key_attr(op.attrs[k])) for k in sorted(op.attrs)))
        if key is not None and key in seen:
            for old, new in zip(op.outputs, seen[key]):
                repl[id(old)] = new
            changed = True
            continue
        if key is not None:
            seen[key] = op.outputs
        keep.append(op)
    block.ops[:] = keep
    block.results[:] = [repl.get(id(v), v) for v in block.results]
    return changed


def cse(p) -> bool:
    return on_body(p, lambda body: _cse_block(body, {}))


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
    return on_body(p, _dce_block)
