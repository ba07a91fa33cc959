"""Comparison, equality, selection and max/argmax, written once over the kernels.

msb(x) is a boolean circuit on k-bit words (bits.a2b): the protocol splits x into
boolean addends; a carry-save layer (1 AND round each) reduces them to two; a
Kogge-Stone parallel-prefix adder gives the carry into the top bit in log2(k) AND
rounds; one B2A turns the bit into an arithmetic 0/1. All layers are word-parallel.
Cost: (addends - 2) + 1 + ceil(log2(k-1)) AND rounds + B2A; aby3 at k = 64: 8 AND
rounds (13 words per element) plus its B2A.
"""
from __future__ import annotations

import numpy as np

from ..protocols.base import Protocol, Share
from .basic import add, is_secret, mul, neg, sub
from .bits import a2b, shr


def msb_boolean(P: Protocol, x: Share) -> Share:
    """Boolean share whose bit 0 is the top bit of x: the adder of bits.a2b, read at
    bit k-1 (only the carry into the top bit matters)."""
    top = shr(a2b(P, x), P.ring.bits - 1, P.ring.dtype)
    return P.and_public(top, np.asarray(1, P.ring.dtype))


def msb(P: Protocol, x):
    """Arithmetic 0/1 share of the sign bit of x (public in, public out)."""
    if not is_secret(x):
        return P.ring.msb(x)
    own = P.sign_bit(x, P.ring.bits)            # a protocol's own comparison, if it has one
    return own if own is not None else P.b2a_bit(msb_boolean(P, x))


def less(P: Protocol, x, y):
    """x < y for signed values with |x - y| < 2^(k-1)."""
    return msb(P, sub(P, x, y))


def equal(P: Protocol, x, y):
    """x == y as 1 - [x < y] - [y < x], both signs from one batched msb."""
    d = sub(P, x, y)
    if not is_secret(d):
        return (d == 0).astype(P.ring.dtype)
    both = Share.zip(lambda a, b: np.stack([a, b]), [d, neg(P, d)])
    m = msb(P, both)
    s = add(P, m.map(lambda t: t[0]), m.map(lambda t: t[1]))
    return add(P, neg(P, s), np.ones(d.shape, P.ring.dtype))


def bit_product(P: Protocol, c, d):
    """c * d with c a 0/1 value: the protocol's multiplexer (P.mux) when c and d are
    secret and it has one, else a ring product."""
    if P.mux is not None and is_secret(c) and is_secret(d):
        return P.mux(c, d)
    return mul(P, c, d)


def select(P: Protocol, c, a, b):
    """c ? a : b with c a 0/1 value: b + c * (a - b). One product if c is secret."""
    if not is_secret(c):
        mask = c.astype(bool)
        if is_secret(a) or is_secret(b):
            return add(P, b, mul(P, c, sub(P, a, b)))
        return np.where(mask, a, b)
    return add(P, b, bit_product(P, c, sub(P, a, b)))


def _split_halves(x, axis_len):
    """Pair neighbours (2i, 2i+1), so each winner covers a contiguous range and
    `lo` always holds the earlier positions (first-index tie-breaking survives)."""
    h = axis_len // 2
    lo = take_last(x, slice(0, 2 * h, 2))
    hi = take_last(x, slice(1, 2 * h, 2))
    tail = take_last(x, slice(2 * h, axis_len)) if axis_len % 2 else None
    return lo, hi, tail


def take_last(x, sl):
    f = lambda s: s[..., sl]
    return x.map(f) if is_secret(x) else f(x)


def cat_last(P, xs):
    from .basic import zip_local
    return zip_local(lambda *a: np.concatenate(a, axis=-1), xs, P)


def tree_reduce_last(P: Protocol, x, take_hi, index=None):
    """Reduce the last axis by a tournament: log2(n) levels, each one batched
    comparison. take_hi(lo, hi) -> 0/1 value saying whether hi wins.
    If index is given (same shape), it is carried along (for argmax)."""
    n = x.shape[-1]
    while n > 1:
        lo, hi, tail = _split_halves(x, n)
        c = take_hi(lo, hi)
        if index is None:
            x = select(P, c, hi, lo)
        else:
            ilo, ihi, itail = _split_halves(index, n)
            both = select(P, cat_last(P, [c, c]), cat_last(P, [hi, ihi]), cat_last(P, [lo, ilo]))
            h = n // 2
            x, index = take_last(both, slice(0, h)), take_last(both, slice(h, 2 * h))
            if itail is not None:
                index = cat_last(P, [index, itail])
        if tail is not None:
            x = cat_last(P, [x, tail])
        n = x.shape[-1]
    sq = lambda s: s[..., 0]
    x = x.map(sq) if is_secret(x) else sq(x)
    if index is not None:
        index = index.map(sq) if is_secret(index) else sq(index)
    return x, index
