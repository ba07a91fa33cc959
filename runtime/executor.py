"""Runs an IR Program for one party: a loop over ops with a value environment.

Values are freed right after their last use (liveness from compiler.ir). Each op's
wall time, bytes sent and rounds are recorded in the party's Profile; an op with blocks
(for, while, cond) records only what is not recorded by the ops of its body, so the
profile's totals count everything once.
"""
from __future__ import annotations

import time
from collections import ChainMap

import numpy as np
from typing import Dict, List, Sequence

from compiler.ir import Block, Program, last_uses

from .kernels import KERNELS, KernelContext
from .profile import Profile


class ExecutionError(RuntimeError):
    pass


def run_block(K: KernelContext, block: Block, args: Sequence, profile: Profile,
              outer=None) -> List:
    """Run `block`; values of enclosing blocks that it reads (scoped CSE makes nested
    blocks reuse them) are looked up in `outer`; its own values are freed locally."""
    local: Dict[int, object] = {id(p): a for p, a in zip(block.params, args)}
    env = local if outer is None else ChainMap(local, outer)
    nested = lambda K_, b, a, prof: run_block(K_, b, a, prof, outer=env)
    frees = last_uses(block)
    comm = K.P.comm
    for op, dead in zip(block.ops, frees):
        fn = KERNELS.get(op.name)
        if fn is None:
            raise ExecutionError(f"no kernel for op `{op.name}`")
        ins = [env[id(v)] for v in op.inputs]
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
            inner = profile.total
            dt -= inner.seconds - inner0.seconds
            db -= inner.bytes - inner0.bytes
            dr -= inner.rounds - inner0.rounds
        profile.record(op.name, dt, db, dr)
        outs = out if isinstance(out, list) else [out]
        for v, o in zip(op.outputs, outs):
            local[id(v)] = np.asarray(o) if isinstance(o, np.generic) else o
        for v in dead:
            local.pop(id(v), None)
    return [env[id(v)] for v in block.results]


def run_program(K: KernelContext, program: Program, args: Sequence, profile: Profile) -> List:
    # Ring arithmetic wraps by design: silence numpy's overflow warnings (thread-local).
    with np.errstate(over="ignore"):
        return run_block(K, program.body, args, profile)
