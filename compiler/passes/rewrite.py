"""A tiny rewriting helper shared by the passes: walk ops in order, let a callback
return replacement values for an op's outputs (or None to keep it), and keep every
later use pointing at the replacements."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from ..ir.program import Block, Op, Program, Value


def uses(ops: List[Op], results: List[Value]) -> Dict[int, int]:
    """How many times each value is read (results count as reads)."""
    n: Dict[int, int] = {}
    for op in ops:
        for v in op.inputs:
            n[id(v)] = n.get(id(v), 0) + 1
        for b in op.blocks:
            for inner, count in uses(b.ops, b.results).items():
                n[inner] = n.get(inner, 0) + count
    for v in results:
        n[id(v)] = n.get(id(v), 0) + 1
    return n


def substitute(block: Block, repl: Dict[int, Value]) -> None:
    """Point every read in `block` (nested blocks included) at its replacement."""
    def get(v):
        while id(v) in repl:
            v = repl[id(v)]
        return v
    for op in block.ops:
        op.inputs = [get(v) for v in op.inputs]
        for b in op.blocks:
            substitute(b, repl)
    block.results[:] = [get(v) for v in block.results]


def rewrite_block(block: Block, fn: Callable[[Op, "Emitter"], Optional[List[Value]]]) -> bool:
    """Apply fn to each op of block (and nested blocks); returns whether anything changed."""
    changed = False
    repl: Dict[int, Value] = {}
    new_ops: List[Op] = []
    em = Emitter(new_ops)
    for op in block.ops:
        op.inputs = [_follow(repl, v) for v in op.inputs]
        for b in op.blocks:
            substitute(b, repl)
            changed |= rewrite_block(b, fn)
        out = fn(op, em)
        if out is None:
            new_ops.append(op)
        else:
            changed = True
            for old, new in zip(op.outputs, out):
                if old is not new:
                    repl[id(old)] = new
    block.ops[:] = new_ops
    block.results[:] = [_follow(repl, v) for v in block.results]
    return changed


def _follow(repl, v):
    while id(v) in repl:
        v = repl[id(v)]
    return v


class Emitter:
    """Lets a rewrite callback add new ops before the op being rewritten."""

    def __init__(self, ops: List[Op]):
        self.ops = ops
        self.names = None

    def emit(self, template: Op, name: str, inputs, out_type, **attrs) -> Value:
        v = Value(template.outputs[0].name + "_" + name, out_type)
        self.ops.append(Op(name, list(inputs), [v], attrs, [], template.loc))
        return v


def on_body(p: Program, block_pass) -> bool:
    """Run a block-level pass on a program's body. Block passes edit `ops` and
    `results` in place (slice assignment), and Program.body shares those lists, so
    the program sees every change."""
    return block_pass(p.body)


def run_on_program(p: Program, fn) -> bool:
    return on_body(p, lambda body: rewrite_block(body, fn))


def renumber(p: Program) -> None:
    """Give values consecutive names %0, %1, ... in program order."""
    counter = [0]

    def name(v):
        v.name = str(counter[0])
        counter[0] += 1

    def block(b):
        for v in b.params:
            name(v)
        for op in b.ops:
            for inner in op.blocks:
                block(inner)
            for v in op.outputs:
                name(v)

    block(p.body)
