"""Truncation for semi2k_ot from the pieces' top bits: the AND of two private bits, one
round of 1 bit per element, instead of semi2k's truncation pair (r, r >> m, msb r),
which costs ~740 offline bytes per element when made by OT. The two-party form of
truncation with known MSBs (ABY3's share-wise truncation made exact with the wrap bit,
Mohassel, Rindal 2018; Cheetah's truncation with known MSB, Huang et al. 2022, section
on truncation; aby3_convert.py's trunc for the three-party form).

Algebra. k ring bits, shift m in [1, k - 2], x = x_0 + x_1 mod 2^k signed with
|x| < 2^(k-2) (the same precondition as semi2k's trunc). As k-bit unsigned values,
party 0 holds a = x_0 + 2^(k-2), party 1 holds b = x_1; u = msb(a), v = msb(b). Then
    a + b = x' + w 2^k,  x' = x + 2^(k-2) in [0, 2^(k-1)),  w in {0, 1},
and w = u OR v: u = v = 0 gives a + b < 2^k; u = v = 1 gives a + b >= 2^k; one of them
gives a + b in [2^(k-1), 2^k + 2^(k-1)), which as x' < 2^(k-1) must be x' + 2^k.
floor(x'/2^m) = (a >> m) + (b >> m) + t - w 2^(k-m) with the carry t in {0, 1}, and
floor(x/2^m) = floor(x'/2^m) - 2^(k-2-m) (2^m divides 2^(k-2)), so
    y = (a >> m) + (b >> m) - w 2^(k-m) - 2^(k-2-m) + 1
is floor(x/2^m) + 1 - t: floor(x/2^m) or one more, never further off (deterministic;
which of the two depends on the shares). With w = u + v - u v, every term is local
but u v 2^(k-m):
    y_0 = (a >> m) - u 2^(k-m) - 2^(k-2-m) + 1 + [u v 2^(k-m)]_0
    y_1 = (b >> m) - v 2^(k-m) + [u v 2^(k-m)]_1.
The AND of u (party 0's) and v (party 1's) by a random bit product made offline: the
B2A correlation (random bits beta_i, arithmetic shares ra_i of beta_0 ^ beta_1 =
beta_0 + beta_1 - 2 beta_0 beta_1; semi2k_ot_source.py b2a, one OT per element), so
    g_i = (beta_i - ra_i) 2^(k-m-1),   g_0 + g_1 = beta_0 beta_1 2^(k-m)   (m <= k - 1).
Online, one round: party 0 sends e_0 = u ^ beta_0, party 1 sends e_1 = v ^ beta_1
(1 bit each, packed). With u = e_0 + (1 - 2 e_0) beta_0 and v = e_1 + (1 - 2 e_1) beta_1,
    u v = u e_1 + (1 - 2 e_1) [e_0 beta_1 + (1 - 2 e_0) beta_0 beta_1]:
party 0 adds u e_1 2^(k-m), party 1 adds (1 - 2 e_1) e_0 beta_1 2^(k-m), both add
(1 - 2 e_0)(1 - 2 e_1) g_i.

Views. e_i is party i's top bit padded by its fresh random bit beta_i (a one-time pad):
uniform, whatever x. Nothing else is sent online.
Cost per element, per party, k = 64: online 1 round (as semi2k's trunc), 1 bit (semi2k:
8 bytes); offline one B2A correlation: one OT with a k-bit correction, the receiver's
side split between the parties: (16 + 8) / 2 = 12 bytes (the truncation pair: k OTs,
~740 bytes).
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from ..link import PeerError
from .base import Share
from .semi2k_common import B2A, _blocks, _flat

Take = Callable[[object, int], Tuple[np.ndarray, ...]]    # (key, n) -> the pieces


def trunc_by_msb(P, x: Share, bits: int, take: Take) -> Share:
    """[x >> bits] for a two-party semi2k share x with |x| < 2^(k-2): floor(x / 2^m) or
    one more (module docstring). take(B2A, n) -> (beta_i packed as np.packbits, ra_i).
    Per element the parties' terms fold into small signed coefficients (int8) of 2^(k-m)
    and of g_i, so the ring-sized work runs block by block in cache:
        y_0 = (a >> m) - u (1 - e_1) 2^(k-m) + sigma g_0 + 1 - 2^(k-2-m)
        y_1 = (b >> m) + (-v + (1 - 2 e_1) e_0 beta_1) 2^(k-m) + sigma g_1
    with sigma = (1 - 2 e_0)(1 - 2 e_1) = 1 - 2 (e_0 ^ e_1)."""
    k, m = P.ring.bits, int(bits)
    if not 1 <= m <= k - 2:
        raise ValueError(f"semi2k_ot trunc: shift {m} outside [1, {k - 2}]")
    dt, first = P.ring.dtype, P.rank == 0
    shape = x.shape
    xs = _flat(x.parts[0], shape)
    n = xs.size
    off = dt(1 << (k - 2)) if first else dt(0)           # a = x_0 + 2^(k-2); b = x_1
    rb, ra = take(B2A, n)
    top = np.empty(n, np.uint8)                           # u (party 0) or v (party 1)
    for lo, hi in _blocks(n):
        top[lo:hi] = (xs[lo:hi] + off) >> dt(k - 1)
    mine = np.packbits(top)
    mine ^= rb                                            # e_i = top ^ beta_i
    (got,) = P._exchange((mine,))
    got = got[0] if isinstance(got, tuple) and len(got) == 1 else None
    if not isinstance(got, np.ndarray) or got.dtype != np.uint8 or got.shape != mine.shape:
        raise PeerError("trunc: malformed message from the peer")
    e_mine, e_peer = (np.unpackbits(p, count=n) for p in (mine, got))
    e0, e1 = (e_mine, e_peer) if first else (e_peer, e_mine)
    beta = np.unpackbits(rb, count=n)
    sigma = (1 - 2 * (e0 ^ e1).view(np.int8)).astype(np.int8)
    if first:
        coef = -(top & (1 - e1)).view(np.int8)
    else:
        coef = (e0 & beta).view(np.int8) * (1 - 2 * e1.view(np.int8)) - top.view(np.int8)
    const = dt((1 - (1 << (k - 2 - m))) % (1 << k)) if first else dt(0)
    sh, hi_sh, g_sh = dt(m), dt(k - m), dt(k - m - 1)
    out = np.empty(n, dt)
    for lo, hi in _blocks(n):
        y = xs[lo:hi] + off
        y >>= sh
        y += coef[lo:hi].astype(dt) << hi_sh              # int8 -> ring: -1 wraps to 2^k - 1
        g = beta[lo:hi].astype(dt)
        g -= ra[lo:hi]
        g <<= g_sh                                        # g_i: g_0 + g_1 = beta_0 beta_1 2^(k-m)
        g *= sigma[lo:hi].astype(dt)
        y += g
        y += const
        out[lo:hi] = y
    return Share([out.reshape(shape)])
