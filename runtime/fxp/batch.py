"""One protocol call for many independent operations.

Interactive kernels cost a round per call, whatever the size. These helpers flatten
and concatenate secret operands of any shapes, call the kernel once, and split the
result, so independent products / truncations / bit conversions of one step of an
approximation (or adjacent truncations of a program, runtime/executor.py) share a
round. Public operands never reach the protocol.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B


def _grouped(P, items, call):
    """One call(...) for all items, whatever their shapes: each item's operands are
    broadcast to the item's shape and flattened, the items concatenated, and the result
    split back. items[i] is a tuple of Shares (the operands of one operation); every
    operation batched here is elementwise, so each result is what its own call would
    give (up to the protocols' truncation randomness)."""
    if len(items) <= 1:
        return [call(*ops) for ops in items]
    shapes = [tuple(np.broadcast_shapes(*(o.shape for o in ops))) for ops in items]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    args = [Share.zip(lambda *a: np.concatenate(a),
                      [Share([np.broadcast_to(p, s).reshape(-1) for p in o.parts], o.boolean)
                       for o, s in zip(col, shapes)])
            for col in zip(*items)]
    if len(args) == 2 and all(ops[0] is ops[1] for ops in items):
        args[1] = args[0]                          # all squares: protocols may save
    res = call(*args)
    pieces = [np.split(p, np.cumsum(sizes)[:-1]) for p in res.parts]
    return [Share([pp[i].reshape(s) for pp in pieces], res.boolean) for i, s in enumerate(shapes)]


def elementwise_many(P: Protocol, items, call) -> list:
    """call(*operands) once for many elementwise operations of secrets (items[i]: the
    Shares of operation i); the IR's batches of comparisons and selections use it."""
    return _grouped(P, list(items), call)


def mul_many(P: Protocol, pairs: Sequence[Tuple[object, object]]) -> list:
    """Ring products a * b (no truncation); all secret x secret ones in one round."""
    out = [None] * len(pairs)
    secret = [i for i, (a, b) in enumerate(pairs) if B.is_secret(a) and B.is_secret(b)]
    for i, (a, b) in enumerate(pairs):
        if i not in secret:
            out[i] = B.mul(P, a, b)
    for i, r in zip(secret, _grouped(P, [pairs[i] for i in secret], P.mul)):
        out[i] = r
    return out


def trunc_many(P: Protocol, xs: Sequence[object], bits: int) -> list:
    """Arithmetic right shifts by the same amount; all secret ones in one round."""
    if bits == 0:
        return list(xs)
    out = [B.trunc(P, x, bits) if not B.is_secret(x) else None for x in xs]
    secret = [i for i, x in enumerate(xs) if B.is_secret(x)]
    for i, r in zip(secret, _grouped(P, [(xs[i],) for i in secret], lambda s: P.trunc(s, bits))):
        out[i] = r
    return out


def mul_trunc_many(P: Protocol, pairs: Sequence[Tuple[Share, Share]], bits: int) -> list:
    """trunc(a * b, bits) for secret pairs: the protocol's fused mul_trunc, one call."""
    return _grouped(P, list(pairs), lambda x, y: P.mul_trunc(x, y, bits))


def fmul_many(P: Protocol, pairs, frac: int) -> list:
    """Fixed-point products (one round of products, one of truncations)."""
    return trunc_many(P, mul_many(P, pairs), frac)


def and_many(P: Protocol, pairs) -> list:
    """Bitwise ANDs of boolean shares, one round."""
    return _grouped(P, list(pairs), P.and_)


def b2a_many(P: Protocol, bits: Sequence[Share]) -> list:
    """Arithmetic 0/1 shares of bit 0 of each boolean share (other bits zero), one round."""
    return _grouped(P, [(b,) for b in bits], P.b2a_bit)
