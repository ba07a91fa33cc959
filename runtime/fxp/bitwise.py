"""Bitwise and / or / xor of secret integers, through boolean shares.

The ring word of an integer is its two's-complement bit pattern, so a bitwise op on the
words is the op on the integers, whatever their sign:
  1. a2b of the secret operands, concatenated into one call (aby3 k = 64: 8 rounds);
  2. xor is local; and is one AND round; or = x ^ y ^ (x & y);
  3. back to arithmetic: the k bits converted in one batched b2a (1 round, k
     conversions per element) and summed with their weights 2^j (local, mod 2^k).
A public operand is used as a public word (no a2b for it).
Cost (aby3, k = 64, two secret operands): about 10 rounds.
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from . import bits as T
from .batch import b2a_many


def _words(P: Protocol, xs):
    """Boolean shares of the secret operands (one a2b for all), public ones as they are."""
    secret = [x for x in xs if B.is_secret(x)]
    n = [int(np.prod(x.shape, dtype=np.int64)) for x in secret]
    both = B.zip_local(lambda *a: np.concatenate([p.reshape(-1) for p in a]), secret, P)
    words = T.a2b(P, both)
    pieces = iter([words.map(lambda s, lo=lo, m=m, sh=x.shape: s[lo:lo + m].reshape(sh))
                   for lo, m, x in zip(np.cumsum([0] + n[:-1]), n, secret)])
    return [next(pieces) if B.is_secret(x) else np.asarray(x, P.ring.dtype) for x in xs]


def _and(P, x, y):
    if B.is_secret(x) and B.is_secret(y):
        return P.and_(x, y)
    return P.and_public(x, y) if B.is_secret(x) else P.and_public(y, x)


def _xor(P, x, y):
    if B.is_secret(x) and B.is_secret(y):
        return P.xor(x, y)
    return P.xor_public(x, y) if B.is_secret(x) else P.xor_public(y, x)


def _to_arithmetic(P: Protocol, w: Share) -> Share:
    dt = P.ring.dtype
    bits = b2a_many(P, [T.bit(w, j, dt) for j in range(P.ring.bits)])
    acc = bits[0]
    for j, b in enumerate(bits[1:], start=1):
        acc = B.add(P, acc, B.mul(P, b, np.asarray(dt(1) << dt(j), dt)))
    return acc


def bitwise(P: Protocol, op: str, x, y) -> Share:
    """x op y for op in and / or / xor; at least one operand secret."""
    bx, by = _words(P, [x, y])
    if op == "xor":
        w = _xor(P, bx, by)
    elif op == "and":
        w = _and(P, bx, by)
    else:
        w = _xor(P, _xor(P, bx, by), _and(P, bx, by))
    return _to_arithmetic(P, w)
