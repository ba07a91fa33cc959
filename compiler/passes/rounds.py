"""Round sharing for truncations: independent truncations move next to each other so
the runtime runs them as one protocol call (one round, whatever their number and
shapes; runtime/executor.py batches runs of adjacent `trunc` ops).

A truncation of a secret is deferred from its place to just before the first op that
reads it (or the block's end). When that op comes, every truncation deferred so far is
placed there, in their original order: those that were independent of one another now
share a round. A truncation that would land there alone stays where it was. E.g. the
parameter updates of a training step, `p - lr * g` for every parameter, end in one
truncation each: 6 rounds for a 3-layer MLP become 1.

Ops are pure, so moving a truncation later, but before every reader, changes no value.
Kept in place: a truncation that directly follows the product of secrets it alone
reads (the runtime fuses the pair, which saves a reshare); and nothing moves across an
op with blocks (for, while, cond): deferred truncations are placed before it.
Cost: none at run time; memory is unchanged (a deferred truncation keeps its input
alive instead of its output, of the same size).
"""
from __future__ import annotations

from typing import Dict, List

from ..ir.program import Block, Op, Program
from .rewrite import uses

FUSABLE_PRODUCTS = ("mul", "dot", "conv")


def _secret_trunc(op: Op) -> bool:
    return op.name == "trunc" and op.outputs[0].type.secret


def _fused(prev: Op, op: Op, n_uses: Dict[int, int]) -> bool:
    """op truncates the product of secrets just before it, its only reader: the runtime
    runs the pair as one fused call (runtime/executor.py)."""
    return (prev is not None and prev.name in FUSABLE_PRODUCTS and op.inputs[0] is prev.outputs[0]
            and n_uses.get(id(prev.outputs[0])) == 1 and all(v.type.secret for v in prev.inputs))


def _group_block(block: Block, n_uses: Dict[int, int]) -> bool:
    moved = False
    for op in block.ops:
        for b in op.blocks:
            moved |= _group_block(b, n_uses)
    # Where each truncation would land if deferred: groups_at[i] go before op i.
    groups_at: Dict[int, List[Op]] = {}
    pending: List[Op] = []
    pending_out = set()
    prev = None
    for i, op in enumerate(block.ops):
        if op.blocks or any(id(v) in pending_out for v in op.inputs):
            groups_at[i], pending, pending_out = pending, [], set()
        if _secret_trunc(op) and not _fused(prev, op, n_uses):
            pending.append(op)
            pending_out.add(id(op.outputs[0]))
        prev = op
    groups_at[len(block.ops)] = pending
    # Only truncations that would share a round move; a lone one stays where it is.
    movers = {id(t) for g in groups_at.values() if len(g) >= 2 for t in g}
    if not movers:
        return moved
    out: List[Op] = []
    for i in range(len(block.ops) + 1):
        group = groups_at.get(i, [])
        if len(group) >= 2:
            out.extend(group)
        if i < len(block.ops) and id(block.ops[i]) not in movers:
            out.append(block.ops[i])
    block.ops[:] = out
    return True


def group_truncations(p: Program) -> bool:
    """In place, every block of p; returns whether any op moved."""
    return _group_block(p.body, uses(p.body.ops, p.body.results))
