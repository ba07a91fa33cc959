"""Runs an IR Program for one party: an interpreter over ops with a value environment.

The compiler has decided what runs as one protocol call (compiler/passes/rounds.py):
fused ops (`mul_trunc`, ...) have their own kernels, and an op with the attribute
`batch=n` runs with the n - 1 ops after it as one call of their batched kernel. Values
are freed right after their last use (liveness from compiler.ir, computed once per
program). Each call's wall time, bytes sent and rounds are recorded in the party's
Profile under the op's name (a batch: n calls, the cost on the first); an op with
blocks (for, while, cond) records only what the ops of its body do not, so the
profile's totals count everything once.
If the KernelContext has an `observer`, it sees every op: observer(op, inputs, outputs).
"""
from __future__ import annotations

import time
from collections import ChainMap
from typing import Dict, List, Sequence

import numpy as np

from spu_lite.compiler.ir import BATCH, BATCH_KINDS, Block, Program, program_last_uses

from .kernels import BATCHED, KERNELS, KernelContext
from .link import PeerError
from .profile import Profile


class ExecutionError(RuntimeError):
    pass


def run_block(K: KernelContext, program: Program, block: Block, args: Sequence,
              profile: Profile, outer=None) -> List:
    """Run `block` of `program`; values of enclosing blocks that it reads (scoped CSE
    makes nested blocks reuse them) are looked up in `outer`; its own values are freed
    locally."""
    local: Dict[int, object] = {id(p): a for p, a in zip(block.params, args)}
    env = local if outer is None else ChainMap(local, outer)
    nested = lambda K_, b, a, prof: run_block(K_, program, b, a, prof, outer=env)
    ops, frees, i = block.ops, program_last_uses(program, block), 0
    while i < len(ops):
        call = ops[i:i + ops[i].attrs.get(BATCH, 1)]
        ins = [[env[id(v)] for v in op.inputs] for op in call]
        outs = _call(K, call, ins, profile, nested)
        for op, a, out in zip(call, ins, outs):
            out = [np.asarray(o) if isinstance(o, np.generic) else o
                   for o in (out if isinstance(out, list) else [out])]
            local.update((id(v), o) for v, o in zip(op.outputs, out))
            if K.observer is not None:
                K.observer(op, a, out)
        for dead in frees[i:i + len(call)]:
            for v in dead:
                local.pop(id(v), None)
        i += len(call)
    return [env[id(v)] for v in block.results]


def _call(K: KernelContext, call, ins, profile: Profile, nested) -> List:
    """One protocol call: one op, or a batch of ops; returns each op's output(s)."""
    op = call[0]
    fn = BATCHED.get(BATCH_KINDS.get(op.name)) if len(call) > 1 else KERNELS.get(op.name)
    if fn is None:
        raise ExecutionError(f"no {'batched ' * (len(call) > 1)}kernel for op `{op.name}`")
    comm = K.P.comm
    t0, b0, r0 = time.perf_counter(), comm.bytes_sent, comm.rounds
    inner0 = profile.total if op.blocks else None
    try:
        if len(call) > 1:
            outs = fn(K, call, ins)
        elif op.blocks:
            outs = [fn(K, op, *ins[0], run_block=nested, profile=profile)]
        else:
            outs = [fn(K, op, *ins[0])]
    except Exception as e:
        if isinstance(e, (ExecutionError, PeerError)):   # a peer's failure is not this op's
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
    profile.record(op.name, dt, db, dr)
    for other in call[1:]:
        profile.record(other.name, 0.0, 0, 0)
    return outs


def run_program(K: KernelContext, program: Program, args: Sequence, profile: Profile) -> List:
    # Ring arithmetic wraps by design: silence numpy's overflow warnings (thread-local).
    with np.errstate(over="ignore"):
        return run_block(K, program, program.body, args, profile)
