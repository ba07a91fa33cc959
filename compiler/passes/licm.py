"""Loop-invariant code motion: ops of a `for` body that read only loop constants
(and values from outside the loop) move in front of the loop, so they run once
instead of once per iteration -- e.g. `lr * x.T` in a training step, with its
truncation. The body then reads the hoisted values from the enclosing scope.
Ops are pure, so hoisting out of a zero-trip loop costs time, never correctness.
Dots that stay in the body but multiply by a loop-invariant secret are marked
`reuse_rhs` (see _mark_invariant_rhs).
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
            _mark_invariant_rhs(body, nc)
        out.append(op)
    block.ops[:] = out
    return changed


def _mark_invariant_rhs(body: Block, nc: int) -> None:
    """A secret dot in the body whose right operand comes from outside the loop reads the
    same value every iteration: mark it (`reuse_rhs`), so protocols that mask operands
    per call (semi2k's matrix triples) can mask it once (e.g. weights in token-by-token
    generation)."""
    defined = {id(p) for p in body.params[nc:]}
    for bop in body.ops:
        if bop.name == "dot" and id(bop.inputs[1]) not in defined and bop.inputs[1].type.secret \
                and bop.inputs[0].type.secret:
            bop.attrs["reuse_rhs"] = True
        defined.update(id(o) for o in bop.outputs)


def hoist_loop_invariants(p) -> bool:
    return on_body(p, _hoist_block)
