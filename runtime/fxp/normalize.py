"""Normalisation by the highest set bit: x = m * 2^(e+1) with m in [0.5, 1).

For a secret x >= 0 (or any sign, via ones' complement), the position e of its highest
set bit comes from the bits of x: a2b, then y = OR of all bits at or above each
position (or_down), h = y ^ (y >> 1) is one-hot at e. Instead of converting all k bits
of h, only the bits of d = K - e are converted (parities of h, local), and
2^d = prod_j (d_j ? 2^(2^j) : 1) is a product tree of selected public constants.
x * 2^d = m * 2^(K+1): one product and one truncation give m at any working scale.
Callers use the same bits for their own output scaling (2^-e, 2^(-e/2), ...).

Cost (aby3, k = 64): a2b (8 rounds, 13 words) + or_down (6 rounds, 1 word each) +
one batched bit conversion of ceil(log2 K) bits (+ sign / flags) in 1 round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from ..protocols.base import Protocol, Share
from . import bits as T
from .batch import b2a_many


@dataclass
class Norm:
    d: List[Optional[Share]]       # arithmetic 0/1: bits of d = K - e, LSB first (None: dropped)
    sign: Optional[Share] = None   # arithmetic 0/1: x < 0 (signed only)
    zero: Optional[Share] = None   # arithmetic 0/1: the magnitude word was 0
    big: Optional[Share] = None    # arithmetic 0/1: e > K (result scaled to 0 by caller)


def normalize(P: Protocol, x: Share, K: int, *, signed=False, zero=False, big=False,
              drop: int = 0) -> Norm:
    """Bits of d = K - e, e = position of the highest set bit of x (of ~x = |x| - 1 for
    negative x when signed). A zero word is treated as e = 0 (d = K) and reported in
    `zero` if asked. Bits above K are ignored for d; `big` reports them. The lowest
    `drop` bits of d are not converted (None)."""
    dt, k = P.ring.dtype, P.ring.bits
    xb = T.a2b(P, x)
    flags = []
    if signed:
        flags.append(T.bit(xb, k - 1, dt))
        xb = P.xor(xb, T.replicate(xb, k - 1, dt))          # ones' complement of negatives
    y = T.or_down(P, T.mask(P, xb, 0, k - 2), k - 1)
    is_zero = T.not_bit(P, T.bit(y, 0, dt))
    h = P.xor(P.xor(y, T.shr(y, 1, dt)), is_zero)           # one-hot at e (at 0 if x == 0)
    if zero:
        flags.append(is_zero)
    if big:
        flags.append(T.bit(y, K + 1, dt))
    conv = b2a_many(P, flags + T.position_bits(h, K, dt)[drop:])
    it = iter(conv)
    out = Norm(d=[])
    out.sign = next(it) if signed else None
    out.zero = next(it) if zero else None
    out.big = next(it) if big else None
    out.d = [None] * drop + list(it)
    return out
