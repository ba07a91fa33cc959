"""Liveness: after which op each value is dead, so executors can free it at once.

Used by the runtime (which may import only compiler.ir) and by the cost model.
"""
from __future__ import annotations

import operator
from typing import Dict, List

from .program import Block, Program


def _block_free_vars(block: Block) -> List:
    """Values a block reads that it does not define (captured from outside)."""
    defined = {id(v) for v in block.params}
    seen, out = set(), []
    for op in block.ops:
        for b in op.blocks:
            for v in _block_free_vars(b):
                if id(v) not in defined and id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        for v in op.inputs:
            if id(v) not in defined and id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        defined.update(id(o) for o in op.outputs)
    for v in block.results:
        if id(v) not in defined and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def last_uses(block: Block) -> List[List]:
    """For each op index i of `block`, the values whose last read in this block is op i.

    Values read by nested blocks count as read by the op that owns the block.
    Block results and block params are never freed here (the caller owns them).
    """
    keep = {id(v) for v in block.results} | {id(v) for v in block.params}
    last: Dict[int, int] = {}
    vals = {}
    for i, op in enumerate(block.ops):
        reads = list(op.inputs)
        for b in op.blocks:
            reads += _block_free_vars(b)
        for v in reads:
            last[id(v)] = i
            vals[id(v)] = v
        for o in op.outputs:          # an unused output dies where it is made
            last.setdefault(id(o), i)
            vals[id(o)] = o
    frees: List[List] = [[] for _ in block.ops]
    for vid, i in last.items():
        if vid not in keep:
            frees[i].append(vals[vid])
    return frees


def program_last_uses(program: Program, block: Block) -> List[List]:
    """last_uses(block) for a block of `program` (its body or a nested block), computed
    once: kept in program.liveness, so every loop iteration and every party reuses it;
    computed again if the block's ops have changed since."""
    hit = program.liveness.get(id(block.ops))
    if hit is None or len(hit[0]) != len(block.ops) or not all(map(operator.is_, hit[0], block.ops)):
        hit = program.liveness[id(block.ops)] = (list(block.ops), last_uses(block))
    return hit[1]
