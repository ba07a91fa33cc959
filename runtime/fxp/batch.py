"""One protocol call for many independent operations.

Interactive kernels cost a round per call, whatever the size. These helpers stack
same-shape secret operands along a new leading axis, call the kernel once, and split
the result, so independent products / truncations / bit conversions of one step of an
approximation share a round. Public operands never reach the protocol.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B


def stack(xs: Sequence[Share]) -> Share:
    return Share.zip(lambda *a: np.stack(a), xs)


def split(x: Share, n: int) -> List[Share]:
    return [x.map(lambda p, i=i: p[i]) for i in range(n)]


def _grouped(P, items, call):
    """Run call(stacked) once per shape over the secret items; items[i] is a tuple of
    Shares (the operands of one operation). Returns the per-item results."""
    out = [None] * len(items)
    groups = {}
    for i, ops in enumerate(items):
        groups.setdefault(tuple(np.broadcast_shapes(*(o.shape for o in ops))), []).append(i)
    for shape, idx in groups.items():
        if len(idx) == 1:
            out[idx[0]] = call(*items[idx[0]])
            continue
        cols = list(zip(*[items[i] for i in idx]))
        args = [stack([Share([np.broadcast_to(p, shape) for p in o.parts], o.boolean) for o in c])
                for c in cols]
        if len(args) == 2 and all(items[i][0] is items[i][1] for i in idx):
            args[1] = args[0]                      # all squares: protocols may save
        for i, s in zip(idx, split(call(*args), len(idx))):
            out[i] = s
    return out


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


def trunc_concat(P: Protocol, xs: Sequence[Share], bits: int) -> List[Share]:
    """Truncations of secrets of any shapes in one protocol call (one round): the
    flattened pieces are concatenated, truncated together and split back. Truncation is
    elementwise, so each result is what its own call would give (up to the 1-ulp
    randomness of the protocol)."""
    if len(xs) == 1:
        return [P.trunc(xs[0], bits)]
    sizes = [int(np.prod(x.shape, dtype=np.int64)) for x in xs]
    flat = Share.zip(lambda *a: np.concatenate([np.reshape(p, -1) for p in a]), xs)
    out = P.trunc(flat, bits)
    pieces = [np.split(p, np.cumsum(sizes)[:-1]) for p in out.parts]
    return [Share([pp[i].reshape(x.shape) for pp in pieces]) for i, x in enumerate(xs)]


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
