"""Kernels of region ops: loops and branches run their blocks with the executor."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from .registry import kernel

MAX_WHILE_TRIPS = 1 << 20


@kernel("to_secret")
def _to_secret(K, op, x):
    return x if B.is_secret(x) else K.P.public_share(np.asarray(x, K.ring.dtype))


@kernel("for")
def _for(K, op, *args, run_block, profile):
    a = op.attrs
    nc, nk, n = a["num_consts"], a["num_carry"], a["length"]
    consts, carry, xs = list(args[:nc]), list(args[nc:nc + nk]), args[nc + nk:]
    body = op.blocks[0]
    ys = []
    for step in range(n):
        i = n - 1 - step if a["reverse"] else step
        x_i = [B.map_local(x, lambda s, i=i: s[i]) for x in xs]
        outs = run_block(K, body, consts + carry + x_i, profile)
        carry, y = outs[:nk], outs[nk:]
        ys.append(y)
    if a["reverse"]:
        ys.reverse()
    stacked = []
    for j in range(len(op.outputs) - nk):
        col = [y[j] for y in ys]
        if n == 0:
            stacked.append(np.zeros(op.outputs[nk + j].type.shape, K.ring.dtype))
        else:
            stacked.append(B.zip_local(lambda *s: np.stack(s), col, K.P))
    return carry + stacked


@kernel("while")
def _while(K, op, *args, run_block, profile):
    a = op.attrs
    cn, bn = a["cond_nconsts"], a["body_nconsts"]
    cconsts, bconsts, carry = list(args[:cn]), list(args[cn:cn + bn]), list(args[cn + bn:])
    cond, body = op.blocks
    for _ in range(MAX_WHILE_TRIPS):
        (go,) = run_block(K, cond, cconsts + carry, profile)
        if not int(np.asarray(go)):
            return carry
        carry = run_block(K, body, bconsts + carry, profile)
    raise RuntimeError(f"while loop ran more than {MAX_WHILE_TRIPS} iterations")


@kernel("cond")
def _cond(K, op, index, *ops, run_block, profile):
    i = int(K.ring.decode_int(np.asarray(index)))
    i = min(max(i, 0), len(op.blocks) - 1)       # jax clamps the branch index
    return run_block(K, op.blocks[i], list(ops), profile)
