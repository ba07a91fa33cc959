"""Visibility dispatch: the same operation on public ring arrays or secret Shares.

A value here is a numpy ring array (public: every party holds it) or a Share
(secret). Public-public work is plain ring arithmetic, secret-public work is local,
and only secret-secret products reach the protocol's interactive kernels.
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from ..ring_linalg import ring_dot_general


def is_secret(x) -> bool:
    return isinstance(x, Share)


def add(P: Protocol, x, y):
    if is_secret(x) and is_secret(y):
        return P.add(x, y)
    if is_secret(x):
        return P.add_public(x, y)
    if is_secret(y):
        return P.add_public(y, x)
    return x + y


def neg(P: Protocol, x):
    return P.neg(x) if is_secret(x) else -x


def sub(P: Protocol, x, y):
    return add(P, x, neg(P, y))


def mul(P: Protocol, x, y):
    """Ring product (no truncation)."""
    if is_secret(x) and is_secret(y):
        return P.mul(x, y)
    if is_secret(x):
        return P.mul_public(x, np.asarray(y, P.ring.dtype))
    if is_secret(y):
        return P.mul_public(y, np.asarray(x, P.ring.dtype))
    return x * y


def dot(P: Protocol, x, y, dims):
    if is_secret(x) and is_secret(y):
        return P.dot(x, y, dims)
    if is_secret(x) or is_secret(y):
        return P.dot_public(x, y, dims)
    return ring_dot_general(x, y, dims, P.ring.bits)


def trunc(P: Protocol, x, bits: int):
    if bits == 0:
        return x
    return P.trunc(x, bits) if is_secret(x) else P.ring.arshift(x, bits)


def lshift(P: Protocol, x, bits: int):
    k = P.ring.dtype(bits)
    return x.map(lambda s: s << k) if is_secret(x) else x << k


def const(P: Protocol, value, frac: int, shape=()) -> np.ndarray:
    """A public fixed-point constant, broadcast (as a view) to `shape`."""
    enc = P.ring.encode(np.asarray(value, np.float64), frac)
    return np.broadcast_to(enc, shape) if shape != enc.shape else enc


def fmul(P: Protocol, x, y, frac: int):
    """Fixed-point product of two values at scale `frac`: one truncation."""
    return trunc(P, mul(P, x, y), frac)


def map_local(x, fn):
    return x.map(fn) if is_secret(x) else fn(x)


def zip_local(fn, xs, P: Protocol):
    """Combine several values piece by piece; public ones are shared trivially first."""
    if not any(is_secret(x) for x in xs):
        return fn(*xs)
    ref = next(x for x in xs if is_secret(x))
    xs = [x if is_secret(x) else public_as_share(P, x, ref) for x in xs]
    return Share.zip(fn, xs)


def public_as_share(P: Protocol, p: np.ndarray, like: Share) -> Share:
    """A valid sharing of a public value (no communication)."""
    return P.public_share(np.asarray(p, P.ring.dtype), like.boolean)
