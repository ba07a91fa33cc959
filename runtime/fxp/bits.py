"""Bit-level building blocks over boolean shares (XOR over k-bit words).

Everything GF(2)-linear on a boolean share -- shifts, masks, bit reversal, XOR with a
public word, parity of selected bits, replicating one bit into a word -- is local: it
is applied to every piece. Only AND needs a round. With that:

  a2b(x)            the bits of an arithmetic share: one parallel-prefix (Kogge-Stone)
                    adder; (addends - 2) carry-save rounds + 1 + ceil(log2(k-1)) AND
                    rounds (aby3, k = 64: 8 rounds, 13 words per element).
  or_down(y, n)     y | y>>1 | ... | y>>(n-1): ceil(log2 n) AND rounds of one word.
  position bits     of a one-hot word h: bit j of the position is the parity of
                    h & M_j (local), so a position costs log2(k) bit conversions
                    instead of k.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..protocols.base import Protocol, Share
from .batch import and_many


def shl(x: Share, d: int, dt) -> Share:
    return x.map(lambda s: s << dt(d))


def shr(x: Share, d: int, dt) -> Share:
    return x.map(lambda s: s >> dt(d))


def a2b(P: Protocol, x: Share) -> Share:
    """Boolean share of the k-bit word of arithmetic share x."""
    dt = P.ring.dtype
    return add_boolean(P, P.boolean_addends(x), P.ring.bits, lambda v, d: shl(v, d, dt))


def add_boolean(P: Protocol, addends: List[Share], width: int, shift) -> Share:
    """Boolean share of the sum of boolean addends, bit-sliced over fields of `width`
    bits: carry-save layers down to two addends, then a Kogge-Stone prefix adder.
    shift(v, d) shifts left by d inside a field (a whole word for a2b; packed fields
    for narrow.msb_narrow, whose shift drops the bits leaving a field)."""
    while len(addends) > 2:                    # carry-save: 3 addends -> 2, one AND
        groups = [addends[i:i + 3] for i in range(0, len(addends) - len(addends) % 3, 3)]
        rest = addends[len(groups) * 3:]
        ands = and_many(P, [(P.xor(a, c), P.xor(b, c)) for a, b, c in groups])
        addends = rest
        for (a, b, c), t in zip(groups, ands):
            addends += [P.xor(P.xor(a, b), c), shift(P.xor(t, c), 1)]
    if len(addends) == 1:
        return addends[0]
    a, b = addends
    p0 = P.xor(a, b)
    g, p, d = P.and_(a, b), p0, 1
    while d < width - 1:                       # g_i: carry out of bit i (prefix generate)
        if 2 * d < width - 1:
            g2, p = and_many(P, [(p, shift(g, d)), (p, shift(p, d))])
        else:
            g2 = P.and_(p, shift(g, d))
        g = P.xor(g, g2)                       # g and p & (g << d) are disjoint
        d *= 2
    return P.xor(p0, shift(g, 1))


def bit(x: Share, i: int, dt) -> Share:
    """Boolean share holding bit i of x in bit 0 (the other bits zero)."""
    return x.map(lambda s: (s >> dt(i)) & dt(1))


def not_bit(P: Protocol, b: Share) -> Share:
    """1 - b for a boolean share holding one bit in bit 0."""
    return P.xor_public(b, np.asarray(1, P.ring.dtype))


def replicate(b: Share, i: int, dt) -> Share:
    """Every bit set to bit i of b (e.g. i = k-1: a sign mask for ones' complement)."""
    return b.map(lambda s: dt(0) - ((s >> dt(i)) & dt(1)))


def mask(P: Protocol, x: Share, lo: int, hi: int) -> Share:
    """Keep bits lo..hi (inclusive)."""
    m = (1 << (hi + 1)) - (1 << lo)
    return P.and_public(x, np.asarray(m, P.ring.dtype))


def _or(P, pairs):
    """a | b = a ^ b ^ (a & b), all pairs in one round."""
    return [P.xor(P.xor(a, b), t) for (a, b), t in zip(pairs, and_many(P, pairs))]


def or_down(P: Protocol, y: Share, span: int) -> Share:
    """Bit i becomes the OR of bits i .. i+span-1 (bits above are zero-filled)."""
    dt = P.ring.dtype
    d = 1
    while d < span:
        (y,) = _or(P, [(y, shr(y, d, dt))])
        d *= 2
    return y


def any_bits(P: Protocol, x: Share, lo: int, hi: int) -> Share:
    """Boolean share whose bit 0 is the OR of bits lo..hi of x."""
    y = or_down(P, shr(mask(P, x, lo, hi), lo, P.ring.dtype), hi - lo + 1)
    return bit(y, 0, P.ring.dtype)


def parity(x: Share, m: int, dt) -> Share:
    """Bit 0 = XOR of the bits of x selected by public mask m (local: linear)."""
    mm = dt(m)
    return x.map(lambda s: (np.bitwise_count(s & mm) & 1).astype(dt))


def position_bits(h: Share, K: int, dt) -> List[Share]:
    """For a one-hot h with its bit at position e <= K (bits above K ignored): the
    bits of d = K - e, LSB first, as boolean shares in bit 0. Local."""
    nbits = max(1, int(K).bit_length())
    out = []
    for j in range(nbits):
        m = sum(1 << i for i in range(K + 1) if ((K - i) >> j) & 1)
        out.append(parity(h, m, dt))
    return out
