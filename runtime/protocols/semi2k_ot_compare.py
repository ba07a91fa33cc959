"""Sign bits for two parties by the millionaires' protocol (CrypTFlow2: Rathee, Rastogi,
Gupta, Chandran, Sharma, CCS 2020, sections 3-4; as in Cheetah: Huang, Lu, Hong, Ding,
USENIX Security 2022), used by semi2k_ot in place of the boolean adder of fxp/bits.a2b.

Algebra. x = x_0 + x_1 mod 2^w (party i holds x_i; w = 64, or a narrow width, see
sign_bit). With x_i' the low l = w - 1 bits of x_i,
    msb(x) = msb(x_0) ^ msb(x_1) ^ [x_0' + x_1' >= 2^l]
and the carry is a comparison of two private values: [x_0' > y_1], y_1 = 2^l - 1 - x_1'
(party 1 computes y_1 locally). Split a = x_0' and b = y_1 into q = ceil(l / 4) blocks
of 4 bits, block 0 the lowest. Per block j, XOR shares of gt_j = [a_j > b_j] and
eq_j = [a_j == b_j] come from one 1-out-of-16 OT (below). Blocks merge in a tree,
    gt = gt_hi ^ (eq_hi & gt_lo),   eq = eq_hi & eq_lo
(gt_hi and eq_hi & gt_lo never both hold, so XOR is OR), log2(q) AND rounds. Both
ANDs of a node share the operand eq_hi: one AND pair (_and_pair: 3 bits opened, one
OT each way per pair offline) per node, q - 1 = 15 per element at q = 16, bit-packed
into ring words.
Then msb = gt ^ msb(x_0) ^ msb(x_1) (local) and one bit injection (b2a_bit).

1-out-of-16 OT, offline and online. Offline (ROT correlations, made by
semi2k_ot_source.py): the receiver draws c in [0, 16); 4 random IKNP OTs with c's bits
as choices give the sender pads p_i^0, p_i^1 (64 bits each) and the receiver p_i^{c_i}.
Entry v of the sender's random table is the 2-bit field v of XOR_i p_i^{v_i}:
    R[v] = XOR_i (p_i^{v_i} >> 2v) & 3,     the receiver computes R[c]
(Naor, Pinkas, STOC 1999: 1-out-of-N from log N 1-out-of-2 OTs). For v != c some i has
v_i != c_i, and field v of p_i^{1-c_i} is a pad bit the receiver cannot compute, distinct
for every v: the other 15 entries are pseudo-random to it; the sender learns nothing of
c (IKNP). The sender also draws its output share s (2 bits).
Online, 2 rounds: the receiver sends e = b_j ^ c (4 bits); the sender sends the 16
entries T[w] = f(w ^ e) ^ R[w], f(v) = ([a_j > v] ^ s_gt) | ([a_j == v] ^ s_eq) << 1
(one 32-bit word; the f part is one of 2 x 1024 precomputed words, by s, a_j and e);
the receiver takes T[c] ^ R[c] = f(c ^ e) = f(b_j), its share; s is the sender's. e is
uniform (c is), T is padded by R entries the receiver cannot compute, except T[c],
which is f(b_j), padded by s.
The leaves of an element are split: party 0 sends for the first half of all OTs, party
1 for the rest (the table for party 1 as sender compares the other way round).

Cost per element, w = 64 (q = 16), per party (both do about the same):
  online   7 rounds (2 OT + 4 AND + 1 b2a), against 8 for the adder; 36 bytes of OT
           messages (4 bits + 32 bits per OT, half of the 16) + 15 AND pairs (3 bits
           each opened: 5.6 bytes) + b2a's 1/8: ~42 bytes, against 192 for the adder.
  offline  OTs 16 x 4 IKNP OTs at 16 bytes, half each: 512 bytes; AND pairs 15 x (16
           + 2) bytes: 270 bytes; b2a 12: 794 bytes, against 13,068 for the adder.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from ..link import PeerError
from .base import Share

ROT = 9                 # correlation kind: random 1-out-of-16 OT, key (ROT, sender rank)
AND2 = 10               # correlation kind: AND pair with a shared operand, per ring word
BLOCK_BITS = 4
_U32 = np.uint64(0xFFFFFFFF)
#: fields v with bit i of v set, i = 0..3 (16 fields of 2 bits in a 32-bit word)
_CHOICE_MASKS = [np.uint64(m) for m in (0xCCCCCCCC, 0xF0F0F0F0, 0xFF00FF00, 0xFFFF0000)]

Take = Callable[[object, int], Tuple[np.ndarray, ...]]    # (key, n) -> the pieces


# ---- offline: random 1-out-of-16 OTs from 4 random IKNP OTs ----------------------------

def rot_sender_table(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """(n, 4) pads of both choices -> (n,) uint32 words, field v = R[v]."""
    r = np.zeros(p0.shape[0], np.uint64)
    for i, m in enumerate(_CHOICE_MASKS):
        r ^= (p0[:, i] & ~m) | (p1[:, i] & m)
    return (r & _U32).astype(np.uint32)


def rot_receiver_entry(pads: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(n, 4) pads of the choices' bits, c (n,) -> R[c] (n,) uint8."""
    w = np.bitwise_xor.reduce(pads, axis=1)
    return ((w >> (c.astype(np.uint64) << np.uint64(1))) & np.uint64(3)).astype(np.uint8)


def rot_choice_bits(c: np.ndarray) -> np.ndarray:
    """c (n,) in [0, 16) -> (n * 4,) choice bits, bit i of c_t at 4 t + i."""
    return ((c[:, None] >> np.arange(BLOCK_BITS, dtype=np.uint8)) & 1).astype(np.uint8).reshape(-1)


def empty_pieces(key, rank: int, n: int, dtype):
    """Pieces of n correlations of `key` in their layout, all zero (a dry run's
    stand-in; zero pieces are valid correlations, so the dry run even computes right):
    ROT sender (R words uint32, s uint8), receiver (c uint8, R[c] uint8); AND2 (a, b,
    b', c, c') ring words."""
    if key == AND2:
        return tuple(np.zeros(n, dtype) for _ in range(5))
    if key[1] == rank:
        return np.zeros(n, np.uint32), np.zeros(n, np.uint8)
    return np.zeros(n, np.uint8), np.zeros(n, np.uint8)


# ---- online --------------------------------------------------------------------------------

def _masked_tables() -> np.ndarray:
    """(2, 1024) uint32: for the sender (party 0 or 1), its share s (2 bits), its block
    a and the receiver's shift e (4 bits each), at s << 8 | a << 4 | e, the word whose
    field w is f(w ^ e) ^ s: f(v) = [a > v] | [a == v] << 1 when party 0 sends (v is
    party 1's block), [v > a] | [v == a] << 1 when party 1 sends."""
    idx = np.arange(1024, dtype=np.uint64)[:, None]
    sh, a, e = idx >> np.uint64(8), (idx >> np.uint64(4)) & np.uint64(15), idx & np.uint64(15)
    w = np.arange(16, dtype=np.uint64)[None, :]
    v = w ^ e
    out = []
    for gt in (a > v, v > a):                      # party 0 sends, party 1 sends
        field = (gt.astype(np.uint64) | ((a == v).astype(np.uint64) << np.uint64(1))) ^ sh
        out.append((field << (w << np.uint64(1))).sum(axis=1, dtype=np.uint64))
    return np.stack(out).astype(np.uint32)


_TABLES = _masked_tables()


def _nibbles(e: np.ndarray) -> np.ndarray:
    p = np.zeros(-(-e.size // 2) * 2, np.uint8)
    p[:e.size] = e
    return p[0::2] | (p[1::2] << 4)


def _unnibble(got, n: int) -> np.ndarray:
    if not isinstance(got, np.ndarray) or got.dtype != np.uint8 or got.shape != (-(-n // 2),):
        raise PeerError("comparison: malformed OT choice message from the peer")
    return np.stack([got & 15, got >> 4], axis=1).reshape(-1)[:n]


def leaves(P, b: np.ndarray, take: Take):
    """XOR shares (gt, eq) of every block comparison; b (T,) this party's 4-bit block
    values (party 0: a's blocks, party 1: y's). 2 rounds."""
    T = b.size
    h = (T + 1) // 2
    first = P.rank == 0
    send = slice(0, h) if first else slice(h, T)
    recv = slice(h, T) if first else slice(0, h)
    n_send, n_recv = send.stop - send.start, recv.stop - recv.start
    made = take(ROT, (h, T - h))               # (P0 sends h of them, P1 the rest)
    (R, s), (c, rc) = made[P.rank], made[1 - P.rank]
    (got,) = P._exchange((_nibbles(b[recv] ^ c),))[0]           # e = b ^ c
    e = _unnibble(got, n_send)
    idx = (s.astype(np.uint16) << 8) | (b[send].astype(np.uint16) << 4) | e
    words = _TABLES[P.rank][idx]                                # field w: f(w ^ e) ^ s
    words ^= R
    (tab,) = P._exchange((words,))[0]
    if not isinstance(tab, np.ndarray) or tab.dtype != np.uint32 or tab.shape != (n_recv,):
        raise PeerError("comparison: malformed OT table from the peer")
    out = ((tab >> (c.astype(np.uint32) << np.uint32(1))) & np.uint32(3)).astype(np.uint8) ^ rc
    both = np.empty(T, np.uint8)
    both[send], both[recv] = s, out
    return both & 1, both >> 1


def _and_pair(P, x: np.ndarray, y: np.ndarray, y2: np.ndarray, take: Take):
    """x & y and x & y2 for XOR-shared 0/1 uint8 arrays of one shape, packed into ring
    words, with AND2 correlations (a, b, b', c = a & b, c' = a & b'): open e = x ^ a,
    d = y ^ b, d' = y2 ^ b' (3 words for 2 ANDs, one round); then
        z = c ^ (a & d) ^ (e & y),   z' = c' ^ (a & d') ^ (e & y2)      (per party),
    as x & y = (a ^ e) & y = (a & (b ^ d)) ^ (e & y). Offline an AND2 word costs 64
    OTs each way carrying both b bits: 16 + 2 bytes per bit, against 2 x 17 for two
    AND words."""
    dt, item = P.ring.dtype, np.dtype(P.ring.dtype).itemsize
    n = x.size

    def pack(a):
        by = np.packbits(a.reshape(-1), bitorder="little")
        words = np.zeros(-(-by.size // item) * item, np.uint8)
        words[:by.size] = by
        return words.view(dt)

    xs, ys, y2s = pack(x), pack(y), pack(y2)
    a, b, b2, c, c2 = take(AND2, xs.size)
    mine = (xs ^ a, ys ^ b, y2s ^ b2)
    (got,) = P._exchange(mine)
    if not isinstance(got, tuple) or len(got) != 3 or any(
            not isinstance(g, np.ndarray) or g.dtype != dt or g.shape != xs.shape for g in got):
        raise PeerError("comparison: malformed AND opening from the peer")
    e, d, d2 = (m ^ g for m, g in zip(mine, got))
    z = c ^ (a & d) ^ (e & ys)
    z2 = c2 ^ (a & d2) ^ (e & y2s)
    unpack = lambda w: np.unpackbits(w.view(np.uint8), count=n, bitorder="little").reshape(x.shape)
    return unpack(z), unpack(z2)


def greater(P, a: np.ndarray, l: int, take: Take) -> np.ndarray:
    """XOR share (n,) uint8 of [a_0 > a_1] for l-bit values a_i held by party i."""
    n = a.size
    q = -(-l // BLOCK_BITS)
    sh = (np.arange(q, dtype=np.uint64) * np.uint64(BLOCK_BITS))
    blocks = ((a[:, None] >> sh) & np.uint64(15)).astype(np.uint8)
    gt, eq = (np.ascontiguousarray(v.reshape(n, q).T)      # (q, n): a node's bits
              for v in leaves(P, blocks.reshape(-1), take))    # side by side
    while gt.shape[0] > 1:
        h = gt.shape[0] // 2
        lo_gt, hi_gt = gt[0:2 * h:2], gt[1:2 * h:2]
        lo_eq, hi_eq = eq[0:2 * h:2], eq[1:2 * h:2]
        and_gt, new_eq = _and_pair(P, hi_eq, lo_gt, lo_eq, take)
        new_gt = hi_gt ^ and_gt
        if gt.shape[0] % 2:                            # the top node moves up as it is
            new_gt = np.concatenate([new_gt, gt[-1:]])
            new_eq = np.concatenate([new_eq, eq[-1:]])
        gt, eq = new_gt, new_eq
    return gt[0]


def sign_bit(P, x: Share, width: int, shift: int, take: Take) -> Optional[Share]:
    """Arithmetic 0/1 share of bit width-1 of (x_0 >> shift) + (x_1 >> shift) mod 2^width
    (x_i: party i's piece; semi2k's boolean addends are exactly these), i.e. the value
    the generic adder of fxp (compare.msb, narrow.msb_narrow) computes. take(key, n)
    gives the pieces of n correlations of key (ROT, with n = the counts sent by party
    0 and by party 1; AND2): from pools or OT, zeros in a dry run."""
    piece = np.asarray(x.parts[0])
    if piece.size == 0:
        return None
    v = np.broadcast_to(piece, x.shape).astype(np.uint64).reshape(-1)
    if shift:
        v = v >> np.uint64(shift)
    l = width - 1
    low_mask = np.uint64((1 << l) - 1)
    top = ((v >> np.uint64(l)) & np.uint64(1)).astype(np.uint8)
    low = v & low_mask
    a = low if P.rank == 0 else low_mask - low                   # y_1 = 2^l - 1 - x_1'
    bit = greater(P, a, l, take) ^ top
    return P.b2a_bit(Share([bit.astype(P.ring.dtype).reshape(x.shape)], True))
