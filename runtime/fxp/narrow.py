"""Sign of a value known to be small, on packed narrow words.

If |y| < 2^(width-1), the sign of y is bit width-1 of y mod 2^width, and an additive
(or replicated) sharing of y mod 2^64 reduces to one of y mod 2^width by reducing every
piece: local. The carry chain then spans width-1 bits instead of 63, and 64 / width
elements share one 64-bit word, each in its own field. Every shift of the adder is
masked so no bit crosses from one field into the next (local: the masks are public and
the operations GF(2)-linear).

  msb_narrow(y, 32)   aby3: 1 carry-save + 1 + 5 Kogge-Stone AND rounds on words that
                      hold 2 elements (11 words per 2 elements, against 13 per element
                      for the 64-bit adder of bits.a2b), then one bit conversion.
  msb_narrow(y, 32, shift=s)   the same on the addends shifted right by s: the sign
                      of floor(y / 2^s) up to floor_slack(P), with no truncation round.

Used where a guard only has to be right for values in a known range, e.g. exp's
"x is far below the output resolution" (exp_log.py), where the local shift brings the
compared quantity down to a small integer.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..protocols.base import Protocol, Share
from .bits import add_boolean
from .compare import msb


def _field_mask(width: int, bits: int, dt):
    """Public word with bits `bits` (a list of positions inside a field) set in every field."""
    m = 0
    for i in range(64 // width):
        for b in bits:
            m |= 1 << (i * width + b)
    return dt(m)


def _pack(x: Share, width: int, m: int, shift: int = 0) -> Share:
    """Elements i*m + j (flat, zero-padded), shifted right by `shift`, go to word j,
    field i."""
    per = 64 // width
    lo = np.uint64((1 << width) - 1)
    sh = np.uint64(shift)

    def pack(p):
        flat = np.ascontiguousarray(p).reshape(-1)
        if flat.size < per * m:
            flat = np.concatenate([flat, np.zeros(per * m - flat.size, flat.dtype)])
        cols = flat.reshape(per, m)
        if shift:
            cols = cols >> sh
        word = cols[0] & lo
        for i in range(1, per):
            word = word | ((cols[i] & lo) << np.uint64(i * width))
        return word
    return Share([pack(p) for p in x.parts], True)


def _unpack_bit(x: Share, width: int, bit: int, n: int, shape) -> Share:
    """Bit `bit` of every field, back in element order, in bit 0 of each word."""
    per = 64 // width
    one = np.uint64(1)

    def unpack(p):
        cols = [(p >> np.uint64(i * width + bit)) & one for i in range(per)]
        return np.concatenate(cols)[:n].reshape(shape)
    return Share([unpack(p) for p in x.parts], True)


def _shl(x: Share, d: int, width: int) -> Share:
    """Shift left by d inside each field (bits leaving a field are dropped)."""
    keep = ~_field_mask(width, range(d), np.uint64)
    dd = np.uint64(d)
    return x.map(lambda s: (s << dd) & keep)


def floor_slack(P: Protocol) -> int:
    """How far msb_narrow's local shift can fall below the floor: one less than the
    number of boolean addends of a sharing (aby3: 2, semi2k with n parties: n - 1,
    ref2k: 0)."""
    return len(P.boolean_addends(P.public_share(np.zeros(1, P.ring.dtype)))) - 1


def msb_narrow(P: Protocol, y: Share, width: int = 32, shift: int = 0) -> Share:
    """Arithmetic 0/1 share of the sign of s = sum_j (y_j >> shift) mod 2^width, the
    y_j being the protocol's boolean addends of y (sum_j y_j = y mod 2^k).
    shift = 0: s = y mod 2^width, so the result is [y < 0] for |y| < 2^(width-1)
    (larger |y|: garbage). shift > 0 is a free local truncation: over the integers
    sum_j (y_j >> shift) = floor((y + W 2^k) / 2^shift) - c, W the number of wrap-arounds
    of the addends and 0 <= c <= floor_slack(P) the lost carries; the W term is a
    multiple of 2^(k - shift), which vanishes mod 2^width when k - shift >= width. So
    the result is [floor(y / 2^shift) - c < 0] for |y / 2^shift| < 2^(width-1) - c.
    width divides 64; in a ring no wider than `width`, the plain 64/32-bit msb of
    compare.py (shift then must be 0)."""
    if P.ring.bits <= width:                    # the ring is no wider: the plain adder
        if shift:
            raise ValueError("msb_narrow: a shift needs a ring wider than width + shift")
        return msb(P, y)
    if P.ring.bits != 64 or 64 % width or width < 4:
        raise ValueError("msb_narrow needs a 64-bit ring and a width dividing 64")
    if shift and P.ring.bits - shift < width:
        raise ValueError(f"msb_narrow: shift {shift} leaves fewer than {width} bits")
    own = P.sign_bit(y, width, shift)           # a protocol's own comparison, if it has one
    if own is not None:
        return own
    n, shape = int(np.prod(y.shape, dtype=np.int64)), y.shape
    m = max(1, -(-n // (64 // width)))
    addends: List[Share] = [_pack(a, width, m, shift) for a in P.boolean_addends(y)]
    top = add_boolean(P, addends, width, lambda v, d: _shl(v, d, width))  # sign: top bit
    return P.b2a_bit(_unpack_bit(top, width, width - 1, n, shape))
