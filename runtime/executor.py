"""Runs an IR Program for one party: a loop over ops with a value environment.

Values are freed right after their last use (liveness from compiler.ir). Each op's
wall time, bytes sent and rounds are recorded in the party's Profile; an op with blocks
(for, while, cond) records only what is not recorded by the ops of its body, so the
profile's totals count everything once. A `mul` or `dot` of secrets whose only reader is
the `trunc` right after it runs as one fused protocol call (recorded as "mul+trunc").
"""
from __future__ import annotations

import time
from collections import ChainMap

import numpy as np
from typing import Dict, List, Sequence

from compiler.ir import Block, Program, last_uses

from .kernels import KERNELS, KernelContext
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
    frees = last_uses(block)
    comm = K.P.comm
    fusable = _product_then_trunc(block)
    skip = False
    for i, (op, dead) in enumerate(zip(block.ops, frees)):
        if skip:                                   # the trunc a fused product already did
            skip = False
            _free(local, dead)
            continue
        fn = KERNELS.get(op.name)
        if fn is None:
            raise ExecutionError(f"no kernel for op `{op.name}`")
        ins = [env[id(v)] for v in op.inputs]
        if i in fusable and all(isinstance(a, Share) for a in ins):
            _run_fused(K, op, block.ops[i + 1], ins, local, profile)
            _free(local, dead)
            skip = True
            continue
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
        profile.record(op.name, dt, db, dr)
        outs = out if isinstance(out, list) else [out]
        for v, o in zip(op.outputs, outs):
            local[id(v)] = np.asarray(o) if isinstance(o, np.generic) else o
        _free(local, dead)
    return [env[id(v)] for v in block.results]


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
    """Indices i of `mul` / `dot` ops whose result is read only by a `trunc` at i + 1:
    the pair runs as the protocol's fused mul_trunc / dot_trunc (aby3 saves a reshare)."""
    uses = _uses(block)
    ops = block.ops
    return {i for i in range(len(ops) - 1)
            if ops[i].name in ("mul", "dot") and ops[i + 1].name == "trunc"
            and ops[i + 1].inputs[0] is ops[i].outputs[0] and uses.get(id(ops[i].outputs[0])) == 1}


def _run_fused(K: KernelContext, op, trunc_op, ins, local, profile: Profile) -> None:
    comm = K.P.comm
    t0, b0, r0 = time.perf_counter(), comm.bytes_sent, comm.rounds
    bits = trunc_op.attrs["bits"]
    try:
        if op.name == "mul":
            out = K.P.mul_trunc(ins[0], ins[1], bits)
        else:
            a = op.attrs
            out = K.P.dot_trunc(ins[0], ins[1], (a["lhs_contract"], a["rhs_contract"],
                                                 a["lhs_batch"], a["rhs_batch"]), bits,
                                reuse_rhs=bool(a.get("reuse_rhs"))
                                and K.options.get("reuse_masks", True))
    except Exception as e:
        if type(e).__name__ == "PeerError":
            raise
        raise ExecutionError(f"op `{op.name}` ({op.loc or 'no location'}) failed: "
                             f"{type(e).__name__}: {e}") from e
    profile.record(f"{op.name}+trunc", time.perf_counter() - t0, comm.bytes_sent - b0,
                   comm.rounds - r0)
    local[id(trunc_op.outputs[0])] = out


def run_program(K: KernelContext, program: Program, args: Sequence, profile: Profile) -> List:
    # Ring arithmetic wraps by design: silence numpy's overflow warnings (thread-local).
    with np.errstate(over="ignore"):
        return run_block(K, program.body, args, profile)
