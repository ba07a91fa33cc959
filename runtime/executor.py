"""Runs an IR Program for one party: a loop over ops with a value environment.

Values are freed right after their last use (liveness from compiler.ir). Each op's
wall time, bytes sent and rounds are recorded in the party's Profile; an op with blocks
(for, while, cond) records only what is not recorded by the ops of its body, so the
profile's totals count everything once. A `mul` or `dot` of secrets whose only reader is
the `trunc` right after it runs as one fused protocol call (recorded as "mul+trunc").
A run of adjacent truncations of secrets by the same amount (compiler/passes/rounds.py
groups independent ones) runs as one protocol call: one round for all of them. So do
dots of secrets whose operands are all ready when the first of them runs (e.g. a
backward pass's dW = x^T dy and dx = dy W^T): the later ones run early, with it.
"""
from __future__ import annotations

import time
import weakref
from collections import ChainMap

import numpy as np
from typing import Dict, List, Sequence

from compiler.ir import Block, Program, last_uses

from .fxp.batch import trunc_many
from .kernels import FUSED_WITH_TRUNC, KERNELS, KernelContext
from .kernels.arith import dot_dims
from .profile import Profile
from .protocols.base import Share


class ExecutionError(RuntimeError):
    pass


def run_block(K: KernelContext, block: Block, args: Sequence, profile: Profile,
              outer=None) -> List:
    """Run `block`; values of enclosing blocks that it reads (scoped CSE makes nested
    blocks reuse them) are looked up in `outer`; its own values are freed locally."""
    local: Dict[int, object] = {id(p): a for p, a in zip(block.params, args)}
    env = local if outer is None else ChainMap(local, outer)
    nested = lambda K_, b, a, prof: run_block(K_, b, a, prof, outer=env)
    frees, fusable, runs, dot_groups = _plan(block)
    comm = K.P.comm
    skip, early = 0, set()
    for i, (op, dead) in enumerate(zip(block.ops, frees)):
        if skip or i in early:   # done by a fused product, a batched run or a dot group
            skip = max(0, skip - 1)
            _free(local, dead)
            continue
        if i in runs and _run_truncs(K, block.ops[i:runs[i]], env, local, profile):
            skip = runs[i] - i - 1
            _free(local, dead)
            continue
        group = [block.ops[j] for j in dot_groups.get(i, ())]
        if group and _run_dots(K, group, env, local, profile):
            early.update(dot_groups[i][1:])
            _free(local, dead)
            continue
        ins = [env[id(v)] for v in op.inputs]
        name, outputs = op.name, op.outputs
        if i in fusable and all(isinstance(a, Share) for a in ins):
            trunc_op = block.ops[i + 1]
            fn = lambda K_, op_, *a, t=trunc_op: FUSED_WITH_TRUNC[op_.name](K_, op_, t, *a)
            name, outputs, skip = f"{op.name}+trunc", trunc_op.outputs, 1
        else:
            fn = KERNELS.get(op.name)
            if fn is None:
                raise ExecutionError(f"no kernel for op `{op.name}`")
        t0, b0, r0 = time.perf_counter(), comm.bytes_sent, comm.rounds
        inner0 = profile.total if op.blocks else None
        try:
            out = fn(K, op, *ins) if not op.blocks else fn(K, op, *ins, run_block=nested,
                                                            profile=profile)
        except Exception as e:
            if isinstance(e, (ExecutionError,)) or type(e).__name__ == "PeerError":
                raise
            raise ExecutionError(f"op `{op.name}` ({op.loc or 'no location'}) failed: "
                                 f"{type(e).__name__}: {e}") from e
        dt, db, dr = time.perf_counter() - t0, comm.bytes_sent - b0, comm.rounds - r0
        if inner0 is not None:     # a loop / cond: its body's ops are recorded themselves
            profile.record_block(op.name, dt, db, dr)
            inner = profile.total
            dt -= inner.seconds - inner0.seconds
            db -= inner.bytes - inner0.bytes
            dr -= inner.rounds - inner0.rounds
        profile.record(name, dt, db, dr)
        outs = out if isinstance(out, list) else [out]
        for v, o in zip(outputs, outs):
            local[id(v)] = np.asarray(o) if isinstance(o, np.generic) else o
        if K.observer is not None:
            _observe(K, op, block.ops[i + 1] if skip else None, ins, outs)
        _free(local, dead)
    return [env[id(v)] for v in block.results]


def _observe(K: KernelContext, op, fused_trunc, ins, outs) -> None:
    """K.observer per original op: a product fused with its trunc reports the product
    (output not made) and then the trunc (input not made)."""
    if fused_trunc is None:
        K.observer(op, ins, outs)
    else:
        K.observer(op, ins, [None])
        K.observer(fused_trunc, [None], outs)


def _run_batched(K: KernelContext, name: str, ops, local, profile: Profile, call,
                 ins) -> None:
    """outs = call() for all of ops in one protocol call: recorded as len(ops) calls of
    `name`, the measured cost on the first; each op's output stored. ins[i]: the
    inputs of ops[i] (for K.observer)."""
    comm = K.P.comm
    t0, b0, r0 = time.perf_counter(), comm.bytes_sent, comm.rounds
    outs = call()
    profile.record(name, time.perf_counter() - t0, comm.bytes_sent - b0, comm.rounds - r0)
    for op, o, a in zip(ops, outs, ins):
        if op is not ops[0]:
            profile.record(name, 0.0, 0, 0)
        local[id(op.outputs[0])] = o
        if K.observer is not None:
            K.observer(op, a, [o])


def _run_truncs(K: KernelContext, ops, env, local, profile: Profile) -> bool:
    """Run adjacent truncations as one protocol call if all their inputs are secret."""
    ins = [env[id(op.inputs[0])] for op in ops]
    if not all(isinstance(a, Share) for a in ins):
        return False
    _run_batched(K, "trunc", ops, local, profile,
                 lambda: trunc_many(K.P, ins, ops[0].attrs["bits"]), [[a] for a in ins])
    return True


def _run_dots(K: KernelContext, ops, env, local, profile: Profile) -> bool:
    """Run independent dots as one protocol call (dot_many) if all operands are secret."""
    items = [(env[id(op.inputs[0])], env[id(op.inputs[1])], dot_dims(op)) for op in ops]
    if not all(isinstance(x, Share) and isinstance(y, Share) for x, y, _ in items):
        return False
    _run_batched(K, "dot", ops, local, profile, lambda: K.P.dot_many(items),
                 [[x, y] for x, y, _ in items])
    return True


_PLANS: Dict[int, tuple] = {}


def _plan(block: Block):
    """(values dead after each op, fusable op indices, runs of batchable truncations,
    groups of independent dots) of a block, computed once per block and reused by every
    iteration of a loop and by every party thread."""
    hit = _PLANS.get(id(block))
    if hit is not None and hit[0]() is block:
        return hit[1:]
    frees, fusable = last_uses(block), _product_then_trunc(block)
    runs, dots = _trunc_runs(block, fusable), _dot_groups(block)
    key = id(block)
    _PLANS[key] = (weakref.ref(block, lambda _: _PLANS.pop(key, None)), frees, fusable, runs, dots)
    return frees, fusable, runs, dots


def _free(local, dead) -> None:
    for v in dead:
        local.pop(id(v), None)


def _uses(block: Block) -> Dict[int, int]:
    """How often each value is read in `block` (nested blocks and results included)."""
    n: Dict[int, int] = {}

    def walk(ops, results):
        for op in ops:
            for v in op.inputs:
                n[id(v)] = n.get(id(v), 0) + 1
            for b in op.blocks:
                walk(b.ops, b.results)
        for v in results:
            n[id(v)] = n.get(id(v), 0) + 1
    walk(block.ops, block.results)
    return n


def _product_then_trunc(block: Block) -> set:
    """Indices i of ops with a fused kernel (mul, dot) whose result is read only by a
    `trunc` at i + 1: the pair runs as one protocol call (aby3 saves a reshare)."""
    uses = _uses(block)
    ops = block.ops
    return {i for i in range(len(ops) - 1)
            if ops[i].name in FUSED_WITH_TRUNC and ops[i + 1].name == "trunc"
            and ops[i + 1].inputs[0] is ops[i].outputs[0] and uses.get(id(ops[i].outputs[0])) == 1}


def _trunc_runs(block: Block, fusable: set) -> Dict[int, int]:
    """start -> end (exclusive) of maximal runs of 2 or more adjacent `trunc` ops with the
    same shift, none reading another's result and none fused with a product."""
    ops, runs, i = block.ops, {}, 0
    while i < len(ops):
        j, outs = i, set()
        while (j < len(ops) and ops[j].name == "trunc" and (j - 1) not in fusable
               and ops[j].attrs["bits"] == ops[i].attrs["bits"]
               and id(ops[j].inputs[0]) not in outs):
            outs.add(id(ops[j].outputs[0]))
            j += 1
        if j - i >= 2:
            runs[i] = j
        i = max(j, i + 1)
    return runs


def _dot_groups(block: Block) -> Dict[int, List[int]]:
    """first index -> indices of dots of secrets (not reusing a mask) whose operands are
    all computed before the first one: they can run with it. A dot that would run fused
    with its trunc joins too (its trunc then runs on its own: the same two rounds as
    the fused pair, one of them shared)."""
    ops = block.ops
    made_at = {id(o): i for i, op in enumerate(ops) for o in op.outputs}

    def groupable(j):
        op = ops[j]
        return (op.name == "dot" and not op.attrs.get("reuse_rhs")
                and all(v.type.secret for v in op.inputs))
    groups, taken = {}, set()
    for i in range(len(ops)):
        if i in taken or not groupable(i):
            continue
        later = [j for j in range(i + 1, len(ops)) if j not in taken and groupable(j)
                 and all(made_at.get(id(v), -1) < i for v in ops[j].inputs)]
        if later:
            groups[i] = [i] + later
            taken.update(later)
    return groups


def run_program(K: KernelContext, program: Program, args: Sequence, profile: Profile) -> List:
    # Ring arithmetic wraps by design: silence numpy's overflow warnings (thread-local).
    with np.errstate(over="ignore"):
        return run_block(K, program.body, args, profile)
