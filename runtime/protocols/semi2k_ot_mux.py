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
receiver + an 8-byte correction as sender = 24 bytes (a Beaver triple: 1,368).

Views. e_i is padded by the fresh random bit b_i, f_i by the fresh random v_i; the
offline messages are IKNP's and Gilboa corrections (semi2k_ot_source.py). The
correlation requires c to be 0 or 1: select's predicate is a bool, held as 0/1.
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from ..link import PeerError
from .base import Share

MUX = 11                # correlation kind: (b_i bit, v_i, u_i) with u = (b_0 ^ b_1) v

Take = Callable[[object, int], Tuple[np.ndarray, ...]]    # (key, n) -> the pieces


def mux_pieces(b: np.ndarray, v: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """u_i from this party's b_i (0/1), v_i and the sum of its shares of the two cross
    products b_i w_j and b_j w_i (see the module docstring)."""
    return (b.astype(v.dtype) * v + cross.astype(v.dtype)).astype(v.dtype)


def cross_operand(b: np.ndarray, v: np.ndarray) -> np.ndarray:
    """w_i = (1 - 2 b_i) v_i: what party i, as OT sender, corrects with."""
    return np.where(b.astype(bool), np.negative(v), v)


def empty_mux(n: int, dtype):
    """n MUX correlations of zeros (b = 0, v = 0, u = 0 is one): a dry run's stand-in."""
    return np.zeros(n, np.uint8), np.zeros(n, dtype), np.zeros(n, dtype)


def mux(P, c: Share, x: Share, take: Take) -> Share:
    """c * x for semi2k shares of c (0 or 1) and x: 1 round (module docstring). take(MUX,
    n) gives the pieces (b_i, v_i, u_i) of n correlations (pools, OT, or zeros)."""
    dt = P.ring.dtype
    shape = tuple(np.broadcast_shapes(c.shape, x.shape))
    cs = np.ascontiguousarray(np.broadcast_to(c.parts[0], shape)).reshape(-1)
    xs = np.ascontiguousarray(np.broadcast_to(x.parts[0], shape)).reshape(-1)
    n = cs.size
    b, v, u = take(MUX, n)
    e_mine = np.packbits((cs & dt(1)).astype(np.uint8) ^ b, bitorder="little")
    f_mine = xs - v
    (got,) = P._exchange((e_mine, f_mine))
    if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(g, np.ndarray) for g in got) \
            or got[0].dtype != np.uint8 or got[0].shape != e_mine.shape \
            or got[1].dtype != dt or got[1].shape != f_mine.shape:
        raise PeerError("select: malformed multiplexer message from the peer")
    e = np.unpackbits(e_mine ^ got[0], count=n, bitorder="little").astype(bool)
    f = f_mine + got[1]
    z = cs * f
    z += np.where(e, v - u, u)
    return Share([z.reshape(shape)])
