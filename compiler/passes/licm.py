"""Loop-invariant code motion: ops of a `for` body that read only loop constants
(and values from outside the loop) move in front of the loop, so they run once
instead of once per iteration -- e.g. `lr * x.T` in a training step, with its
truncation. The body then reads the hoisted values from the enclosing scope.
Ops are pure, so hoisting out of a zero-trip loop costs time, never correctness.
"""
from __future__ import annotations

from ..ir.program import Block
from .rewrite import on_body


def _hoist_block(block: Block) -> bool:
    changed = False
    out = []
    for op in block.ops:
        for b in op.blocks:
            changed |= _hoist_block(b)
        if op.name == "for":
            body = op.blocks[0]
            nc = op.attrs["num_consts"]
            outer_of = {id(body.params[i]): op.inputs[i] for i in range(nc)}
            local = {id(p) for p in body.params[nc:]}          # carries and x slices vary
            kept = []
            for bop in body.ops:
                varies = bop.blocks or any(id(v) in local for v in bop.inputs)
                if varies:
                    kept.append(bop)
                    local.update(id(o) for o in bop.outputs)
                else:
                    bop.inputs = [outer_of.get(id(v), v) for v in bop.inputs]
                    out.append(bop)
                    changed = True
            body.ops[:] = kept
            # body reads of a hoisted const param now go to the outer value directly
            for bop in body.ops:
                bop.inputs = [outer_of.get(id(v), v) for v in bop.inputs]
            body.results[:] = [outer_of.get(id(v), v) for v in body.results]
        out.append(op)
    block.ops[:] = out
    return changed


def hoist_loop_invariants(p) -> bool:
    return on_body(p, _hoist_block)
