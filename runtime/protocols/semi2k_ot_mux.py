"""The product of select, c * x for a shared bit c, by an OT multiplexer (CrypTFlow2's
F_MUX: Rathee, Rastogi, Gupta, Chandran, Sharma, CCS 2020, section 4 on the
multiplexer), used by semi2k_ot in place of a Beaver triple. The multiplexer runs
offline on random inputs, and a Beaver-style correction moves it to the real inputs
online in one round.

Algebra. c = c_0 + c_1 mod 2^k is 0 or 1 (select's predicate), so its low bits are XOR
shares of it: c = lsb(c_0) ^ lsb(c_1). x = x_0 + x_1.
Offline (a MUX correlation, made by semi2k_ot_source.py): party i draws a random bit
b_i and a random v_i; with b = b_0 ^ b_1 and v = v_0 + v_1 the parties get additive
shares u_i of b v. As
    (b_0 ^ b_1) v_i = b_i v_i + b_j (1 - 2 b_i) v_i            (j = 1 - i),
the cross term is one OT per element each way: party i, OT sender, offers the two
messages (b_i ^ t) v_i - r_i for the receiver's choice t = b_j (the F_MUX of the paper
with x_i = v_i; the messages differ by w_i = (1 - 2 b_i) v_i, so one correlated OT
with a 64-bit correction carries them: Gilboa's product of the bit b_j with w_i,
runtime/ot/cot_mul.py), and u_i = b_i v_i + its shares of b_i w_j and b_j w_i.
Online, 1 round: party i sends e_i = lsb(c_i) ^ b_i (1 bit) and f_i = x_i - v_i; both
get e = c ^ b and f = x - v. Then c x = c f + c v, with c f = sum_i c_i f (f public)
and c v = b v = u if e = 0, (1 - b) v = v - u if e = 1:
    z_i = c_i f + (e ? v_i - u_i : u_i).
The result is c x mod 2^k exactly, the value the Beaver product gives (its shares
differ).

Cost per element, per party, k = 64: online 1 round (as a Beaver product), 8 bytes + 1
bit (a Beaver product: 16 bytes); offline one OT each way: 16 bytes of IKNP as
receiver + an 8-byte correction as sender = 24 bytes (a Beaver triple: 1,368). A batch
that mixes selects with other products opens the products' Beaver differences in the
same message (`products`): still one round.

Views. e_i is padded by the fresh random bit b_i, f_i by the fresh random v_i; the
offline messages are IKNP's and Gilboa corrections (semi2k_ot_source.py). The
correlation requires c to be 0 or 1: select's predicate is a bool, held as 0/1.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from ..link import PeerError
from .base import Share
from .semi2k_common import MUL

MUX = 11                # correlation kind: (b_i bit, v_i, u_i) with u = (b_0 ^ b_1) v

Take = Callable[[object, int], Tuple[np.ndarray, ...]]    # (key, n) -> the pieces


def mux_pieces(b: np.ndarray, v: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """u_i from this party's b_i (0/1), v_i and the sum of its shares of the two cross
    products b_i w_j and b_j w_i (see the module docstring)."""
    return (b.astype(v.dtype) * v + cross.astype(v.dtype)).astype(v.dtype)


def cross_operand(b: np.ndarray, v: np.ndarray) -> np.ndarray:
    """w_i = (1 - 2 b_i) v_i: what party i, as OT sender, corrects with."""
    return np.where(b.astype(bool), np.negative(v), v)


def empty_mux_pieces(key, n: int, dtype):
    """n correlations of zeros, MUX (b = 0, v = 0, u = 0 is one) or MUL (a Beaver triple
    of zeros): a dry run's stand-in."""
    if key == MUX:
        return np.zeros(n, np.uint8), np.zeros(n, dtype), np.zeros(n, dtype)
    return tuple(np.zeros(n, dtype) for _ in range(3))


def _flat(s: Share, shape) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(s.parts[0], shape)).reshape(-1)


def mux(P, c: Share, x: Share, take: Take, products: Optional[tuple] = None):
    """c * x for semi2k shares of c (0 or 1) and x: 1 round (module docstring). take(key,
    n) gives the pieces of n correlations (pools, OT, or zeros): MUX (b_i, v_i, u_i), MUL.
    products: None, or 1-D Shares (y, w) of one size whose ring product y * w is wanted
    in the same round (a batch mixing selects with other products), by a Beaver triple
    (a, b', c' = a b'): open y - a and w - b' with e and f; y w = c' + a (w - b') +
    (y - a) w. Returns c x, or (c x, y w)."""
    dt = P.ring.dtype
    shape = tuple(np.broadcast_shapes(c.shape, x.shape))
    cs, xs = _flat(c, shape), _flat(x, shape)
    n = cs.size
    b, v, u = take(MUX, n)
    mine = (np.packbits((cs & dt(1)).astype(np.uint8) ^ b, bitorder="little"), xs - v)
    if products is not None:
        ys, ws = (_flat(p, p.shape) for p in products)
        ta, tb, tc = take(MUL, ys.size)
        mine += (ys - ta, ws - tb)
    (got,) = P._exchange(mine)
    if not isinstance(got, tuple) or len(got) != len(mine) or any(
            not isinstance(g, np.ndarray) or g.dtype != m.dtype or g.shape != m.shape
            for g, m in zip(got, mine)):
        raise PeerError("select: malformed multiplexer message from the peer")
    e = np.unpackbits(mine[0] ^ got[0], count=n, bitorder="little").astype(bool)
    f = mine[1] + got[1]
    z = cs * f
    z += np.where(e, v - u, u)
    out = Share([z.reshape(shape)])
    if products is None:
        return out
    d_open, e_open = mine[3] + got[3], mine[2] + got[2]
    zp = tc + ta * d_open + e_open * ws
    return out, Share([zp.reshape(products[0].shape)])
