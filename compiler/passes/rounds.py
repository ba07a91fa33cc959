"""Scheduling: which ops run as one protocol call, written into the IR.

Every call of an interactive kernel costs its rounds, whatever the operands' size, and
the runtime runs calls one after another, so a program's rounds are the sum over its
calls. Independent ops of the same kind can share a call (their operands concatenated,
runtime/fxp/batch.py): the rounds of one. This pass orders each block by list
scheduling and marks the calls:

1. Depth. Within a stretch of ops between ops with blocks (for, while, cond: nothing
   moves across them), each op's height is the interactive work on the longest path
   from it to the stretch's end (ROUND_WEIGHT per interactive op, 0 per local one).
2. List scheduling. Of the interactive ops whose inputs are ready, the one of greatest
   height (the critical path) runs next, and with it every other ready op of its
   batching kind (`batch_key`: ops that reduce to the same protocol call, e.g. `mul`
   and `select` are one product each, `less` and `eq` sign bits; secret operands; the
   same truncation amount). Local ops run just before the first call that needs
   them, in source order. Ops off the critical path wait for company: e.g. every
   parameter update of a training step `p - lr * g` ends in a truncation;
   they join the backward pass's truncations instead of taking a round each.
3. Fusion. A batch of products of secrets (mul, dot, conv) whose results are each read
   only by a truncation, those truncations forming exactly one batch, becomes one
   batch of fused ops (`mul_trunc`, `dot_trunc`, `conv_trunc`: aby3 saves a reshare).
   Dots fuse only alone (the protocols have no batched fused dot): two dots and their
   truncations take two rounds batched, four fused.
4. The first op of a batch of n > 1 gets the attribute `batch=n` (compiler/ir/ops_fused.py):
   it and the n - 1 ops after it run as one protocol call.

Ops are pure and the order is topological, so values do not change; the runtime only
follows the marks. Cost: none at run time. Memory: an interactive op may run earlier than
in source order and keep its result alive longer; local ops run as late as they can.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ..ir import BATCH, BATCH_KINDS, FUSED, Block, Op, Program
from .rewrite import uses

#: ops that never communicate, whatever their operands
LOCAL = frozenset((
    "add", "sub", "neg", "lshift", "reshape", "transpose", "broadcast", "slice", "concat",
    "pad", "rev", "gather", "scatter_add", "dynamic_slice", "dynamic_update_slice",
    "constant", "iota", "cumsum", "reduce_sum", "to_secret", "not", "bit_and", "bit_or",
    "bit_xor", "bit_not", "int_div", "fdiv"))
PRODUCTS = ("mul", "dot", "conv")
#: rough rounds of one call, for the critical path (1 for the rest)
ROUND_WEIGHT = {"less": 10, "eq": 10, "reduce_max": 40, "reduce_min": 40, "argmax": 40,
                "argmin": 40, "sort": 200, "exp": 30, "log": 40, "log1p": 40,
                "reciprocal": 30, "recip_parts": 30, "sqrt": 30, "rsqrt": 30, "logistic": 30, "tanh": 30, "erf": 30}


def _secret(op: Op, i: int) -> bool:
    return op.inputs[i].type.secret


def interactive(op: Op) -> bool:
    """op may communicate: it has a secret operand and is not local on shares."""
    if op.name in LOCAL or not any(v.type.secret for v in op.inputs):
        return False
    if op.name in PRODUCTS + ("and", "or", "xor"):   # public x secret products are local
        return _secret(op, 0) and _secret(op, 1)
    if op.name == "select":
        return _secret(op, 0)
    if op.name == "convert":                      # a truncation, or exact and local
        src, dst = op.inputs[0].type.dtype, op.outputs[0].type.dtype
        return src.is_fxp and (not dst.is_fxp or dst.frac < src.frac)
    return True


def batch_key(op: Op) -> Optional[tuple]:
    """Ops with equal keys may run as one protocol call (runtime/kernels/batched.py);
    None: the op runs alone."""
    kind = BATCH_KINDS.get(op.name)
    if kind is None or not interactive(op) or op.attrs.get("reuse_rhs"):
        return None
    return (kind, op.attrs["bits"]) if "bits" in op.attrs else (kind,)


def _stretches(ops: List[Op]) -> List[List[Op]]:
    """ops cut before and after every op with blocks."""
    out, cur = [], []
    for op in ops:
        if op.blocks:
            out += [cur, [op]]
            cur = []
        else:
            cur.append(op)
    return out + [cur]


def _list_schedule(ops: List[Op]) -> List[List[Op]]:
    """ops in a topological order, as calls: lists of ops that run together. Local
    ops run as late as they can: just before the first call that needs them."""
    made = {id(v): i for i, op in enumerate(ops) for v in op.outputs}
    deps = [sorted({made[id(v)] for v in op.inputs if id(v) in made}) for op in ops]
    inter = [interactive(op) for op in ops]
    near: List[set] = []            # the nearest interactive ops each op depends on
    for i in range(len(ops)):
        near.append(set().union(*({j} if inter[j] else near[j] for j in deps[i])))
    after: List[List[int]] = [[] for _ in ops]
    for i in range(len(ops)):
        for j in near[i]:
            after[j].append(i)
    height = [0] * len(ops)
    for i in reversed(range(len(ops))):
        w = ROUND_WEIGHT.get(ops[i].name, 1) if inter[i] else 0
        height[i] = w + max((height[r] for r in after[i]), default=0)
    keys = [batch_key(op) for op in ops]
    waiting = [len(near[i]) for i in range(len(ops))]
    ready = {i for i in range(len(ops)) if inter[i] and not waiting[i]}
    emitted = [False] * len(ops)
    calls: List[List[Op]] = []

    def emit_locals(roots):
        todo, found = list(roots), set()
        while todo:
            for j in deps[todo.pop()]:
                if not emitted[j] and j not in found:
                    found.add(j)
                    todo.append(j)
        for j in sorted(found):
            emitted[j] = True
            calls.append([ops[j]])
    while ready:
        first = max(ready, key=lambda i: (height[i], -i))
        group = [first] if keys[first] is None else sorted(
            i for i in ready if keys[i] == keys[first])
        ready.difference_update(group)
        emit_locals(group)
        for i in group:
            emitted[i] = True
        calls.append([ops[i] for i in group])
        for i in group:
            for r in after[i]:
                waiting[r] -= 1
                if not waiting[r] and inter[r]:
                    ready.add(r)
    emit_locals(i for i in range(len(ops)) if not emitted[i])
    calls += [[ops[i]] for i in range(len(ops)) if not emitted[i]]
    assert sum(map(len, calls)) == len(ops), "a cycle in a block"
    return calls


def _fuse(calls: List[List[Op]], n_uses: Dict[int, int]) -> List[List[Op]]:
    """Batches of products whose only readers are one batch of truncations become
    batches of fused ops (see the module doc, step 3)."""
    call_of = {id(op): k for k, call in enumerate(calls) for op in call}
    reader = {}
    for call in calls:
        for op in call:
            if op.name == "trunc":
                reader.setdefault(id(op.inputs[0]), op)
    out, gone = [], set()
    for k, call in enumerate(calls):
        if k in gone:
            continue
        p = call[0]
        truncs = [reader.get(id(op.outputs[0])) for op in call]
        fusable = (p.name in FUSED and interactive(p) and all(op.name == p.name for op in call)
                   and (len(call) == 1 or p.name == "mul")
                   and all(t is not None and n_uses.get(id(op.outputs[0])) == 1
                           for op, t in zip(call, truncs)))
        if fusable:
            tk = {call_of[id(t)] for t in truncs}
            fusable = len(tk) == 1 and len(calls[min(tk)]) == len(call)
        if not fusable:
            out.append(call)
            continue
        gone.add(min(tk))
        out.append([Op(FUSED[op.name], list(op.inputs), list(t.outputs),
                       {**op.attrs, "bits": t.attrs["bits"]}, [], op.loc or t.loc)
                    for op, t in zip(call, truncs)])
    return out


def _schedule_block(block: Block, n_uses: Dict[int, int]) -> None:
    for op in block.ops:
        op.attrs.pop(BATCH, None)
        for b in op.blocks:
            _schedule_block(b, n_uses)
    new: List[Op] = []
    for stretch in _stretches(block.ops):
        for call in _fuse(_list_schedule(stretch), n_uses):
            if len(call) > 1:
                call[0].attrs[BATCH] = len(call)
            new += call
    block.ops[:] = new


def schedule(p: Program) -> bool:
    """In place, every block of p. Returns True (the marks are always rewritten)."""
    _schedule_block(p.body, uses(p.body.ops, p.body.results))
    return True
