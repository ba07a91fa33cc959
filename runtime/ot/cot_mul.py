"""Products of private values between two parties by oblivious transfer: Gilboa's
multiplication (CRYPTO 1999) on correlated OTs, as MASCOT (Keller, Orsini, Scholl,
CCS 2016) uses it for triples, over IKNP (iknp.py).

OtLink.cross: the receiver holds choice bits x[e, j] (e an element, j a bit position),
the sender holds ring vectors y[e, j, :] (n elements); they end with additive shares of
x[e, j] * y[e, j, :] mod 2^{w_j}, where w_j is a width the caller gives per position.
Per OT (one x bit): IKNP gives the sender pads m0 = H(q), m1 = H(q ^ Delta) and the
receiver H(t) = m_x. The sender sends the correction
    u = y + m0 - m1  (mod 2^w; only the low w bits travel)
and keeps -m0; the receiver computes H(t) + x u, which is m0 for x = 0 and
m1 + y + m0 - m1 = m0 + y for x = 1: the two shares sum to x y. u is one-time-padded by
m1 - m0 (m1 = H(q ^ Delta) is pseudo-random to a receiver with x = 0, and m0 to one with
x = 1), so the receiver learns nothing of y; the sender sees only IKNP's uniform u.
Gilboa: with x = the bits of a private a, y_j = b for every j and w_j = k - j,
    sum_j 2^j (share_j) = shares of sum_j 2^j a_j b = a b  (mod 2^k)
(the top j bits of a share of a_j b are multiplied away by 2^j, so they need not be
sent). One product of k-bit values: k OTs, 16 k bytes from the receiver (IKNP) and
sum_j (k - j) bits, rounded up to 1/2/4/8 bytes per position (344 bytes at k = 64),
from the sender. Rounds: two messages (receiver's u matrix, sender's corrections);
both directions of a pair of cross products run in the same two messages.

Computation: after IKNP, each end works through its batch chunk by chunk (_CHUNK_WORDS
pad words, in cache): it slices the transposed rows (bit_transpose), hashes them
(Hash.raw: the sender both strings in the same AES calls), and one numba kernel per
chunk makes or applies the corrections and, with fold=True, sums the positions into
sum_j 2^j share_j (Gilboa's sum, mod 2^64), so no batch-sized pad arrays are written.
The kernels run without the GIL: the two in-process parties overlap on two cores (only
AES, in `cryptography`, and the Python between the calls hold it).

The link is set up with 128 base OTs per direction (base_ot.py), 2 rounds, once.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np
from numba import njit

from ..link import PeerError, nbytes
from .base_ot import BaseOtReceiver, BaseOtSender
from .iknp import KAPPA, Hash, IknpReceiver, IknpSender

_CHUNK_WORDS = 1 << 12    # pad words per chunk (~400 KB of buffers: measured best)
_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)
_NO_PART = tuple(np.zeros((0, 0, 0), dt) for dt in _DTYPES)


def _layout(widths):
    """Each bit position's correction class (0..3: 1, 2, 4 or 8 bytes, the narrowest that
    holds its width) and its column in that class's array; the count per class."""
    widths = np.asarray(widths).reshape(-1)
    cls = np.searchsorted(np.array([8, 16, 32]), widths).astype(np.int64)
    col = np.zeros(widths.size, np.int64)
    counts = [0, 0, 0, 0]
    for j, c in enumerate(cls):
        col[j], counts[c] = counts[c], counts[c] + 1
    return cls, col, counts


def _ranges(cls, counts):
    """(lo, hi) per class if every class is a range of positions (all constructions but
    truncation pairs at some shifts), else None."""
    lo, hi = np.zeros(4, np.int64), np.zeros(4, np.int64)
    for c in range(4):
        idx = np.nonzero(cls == c)[0]
        if idx.size and idx[-1] - idx[0] + 1 != idx.size:
            return None
        if idx.size:
            lo[c], hi[c] = idx[0], idx[-1] + 1
    return lo, hi


def correction_bytes(widths) -> int:
    """Bytes of the corrections of one element (one OT per width) per ring element."""
    return sum(c * np.dtype(dt).itemsize for c, dt in zip(_layout(widths)[2], _DTYPES))


@njit(nogil=True, cache=True)
def _sender_chunk(h, px, y, e0, e1, cls, col, c8, c16, c32, c64, out, fold):
    """Rows e0 .. e1 (L OTs each, row r = (e - e0) L + j): pads m0 = H(q), m1 = H(q ^
    Delta) from Hash.raw (h, px); corrections u = y + m0 - m1, low bits into the class
    arrays; out = -m0 (e, j, i), or with fold sum_j 2^j (-m0_j) (e, 0, i), mod 2^64."""
    L, n = y.shape[1], y.shape[2]
    for e in range(e0, e1):
        if fold:
            for i in range(n):
                out[e, 0, i] = 0
        for j in range(L):
            r = (e - e0) * L + j
            c, q = cls[j], col[j]
            sh = np.uint64(j)
            for i in range(n):
                w, s = i >> 1, i & 1
                m0 = h[r, 0, w, s] ^ px[r, 0, s]
                u = y[e, j, i] + m0 - (h[r, 1, w, s] ^ px[r, 1, s])
                if c == 3:
                    c64[e, q, i] = u
                elif c == 2:
                    c32[e, q, i] = np.uint32(u & np.uint64(0xFFFFFFFF))
                elif c == 1:
                    c16[e, q, i] = np.uint16(u & np.uint64(0xFFFF))
                else:
                    c8[e, q, i] = np.uint8(u & np.uint64(0xFF))
                if fold:
                    out[e, 0, i] -= m0 << sh
                else:
                    out[e, j, i] = np.uint64(0) - m0


@njit(nogil=True, cache=True)
def _receiver_chunk(h, px, x, e0, e1, cls, col, c8, c16, c32, c64, out, fold):
    """Rows e0 .. e1: H(t) (from Hash.raw) + x u, u the peer's corrections; out as in
    _sender_chunk (the two ends' outputs sum to x y)."""
    L, n = x.shape[1], out.shape[2]
    for e in range(e0, e1):
        if fold:
            for i in range(n):
                out[e, 0, i] = 0
        for j in range(L):
            r = (e - e0) * L + j
            c, q, xb = cls[j], col[j], x[e, j] != 0
            sh = np.uint64(j)
            for i in range(n):
                v = h[r, 0, i >> 1, i & 1] ^ px[r, 0, i & 1]
                if xb:
                    if c == 3:
                        v += c64[e, q, i]
                    elif c == 2:
                        v += np.uint64(c32[e, q, i])
                    elif c == 1:
                        v += np.uint64(c16[e, q, i])
                    else:
                        v += np.uint64(c8[e, q, i])
                if fold:
                    out[e, 0, i] += v << sh
                else:
                    out[e, j, i] = v


@njit(nogil=True, cache=True)
def _sender_fold1_part(h, px, y, e, base, j0, j1, part, acc):
    for j in range(j0, j1):
        r = base + j
        m0 = h[r, 0] ^ px[r, 0]
        part[e, j - j0, 0] = y[e, j, 0] + m0 - (h[r, 2] ^ px[r, 2])
        acc -= m0 << np.uint64(j)
    return acc


@njit(nogil=True, cache=True)
def _sender_fold1(h, px, y, e0, e1, lo, hi, c8, c16, c32, c64, out):
    """_sender_chunk for one word per pad (n = 1), fold, and each class a range lo[c] ..
    hi[c] of positions: h, px (R, 4) (the two strings' two words)."""
    L = y.shape[1]
    for e in range(e0, e1):
        base = (e - e0) * L
        acc = np.uint64(0)
        acc = _sender_fold1_part(h, px, y, e, base, lo[3], hi[3], c64, acc)
        acc = _sender_fold1_part(h, px, y, e, base, lo[2], hi[2], c32, acc)
        acc = _sender_fold1_part(h, px, y, e, base, lo[1], hi[1], c16, acc)
        acc = _sender_fold1_part(h, px, y, e, base, lo[0], hi[0], c8, acc)
        out[e, 0, 0] = acc


@njit(nogil=True, cache=True)
def _receiver_fold1_part(h, px, x, e, base, j0, j1, part, acc):
    for j in range(j0, j1):
        r = base + j
        v = (h[r, 0] ^ px[r, 0]) + np.uint64(part[e, j - j0, 0]) * np.uint64(x[e, j])
        acc += v << np.uint64(j)
    return acc


@njit(nogil=True, cache=True)
def _receiver_fold1(h, px, x, e0, e1, lo, hi, c8, c16, c32, c64, out):
    """_receiver_chunk for n = 1, fold and class ranges (as _sender_fold1): h, px (R, 2)."""
    L = x.shape[1]
    for e in range(e0, e1):
        base = (e - e0) * L
        acc = np.uint64(0)
        acc = _receiver_fold1_part(h, px, x, e, base, lo[3], hi[3], c64, acc)
        acc = _receiver_fold1_part(h, px, x, e, base, lo[2], hi[2], c32, acc)
        acc = _receiver_fold1_part(h, px, x, e, base, lo[1], hi[1], c16, acc)
        acc = _receiver_fold1_part(h, px, x, e, base, lo[0], hi[0], c8, acc)
        out[e, 0, 0] = acc


@njit(nogil=True, cache=True)
def _sender_range(h, px, y, e, base, j0, j1, nb, part, out, fold):
    for j in range(j0, j1):
        r = base + j
        for i in range(y.shape[2]):
            s = i & 1
            m0 = h[r, i] ^ px[r, s]
            part[e, j - j0, i] = y[e, j, i] + m0 - (h[r, 2 * nb + i] ^ px[r, 2 + s])
            if fold:
                out[e, 0, i] -= m0 << np.uint64(j)
            else:
                out[e, j, i] = np.uint64(0) - m0


@njit(nogil=True, cache=True)
def _sender_ranges(h, px, y, e0, e1, lo, hi, c8, c16, c32, c64, out, fold):
    """_sender_chunk with each class a range lo[c] .. hi[c] of positions: h (R, 4 nb),
    px (R, 4) (string 0's words, then string 1's)."""
    L, nb = y.shape[1], h.shape[1] // 4
    for e in range(e0, e1):
        if fold:
            out[e, 0, :] = 0
        base = (e - e0) * L
        _sender_range(h, px, y, e, base, lo[3], hi[3], nb, c64, out, fold)
        _sender_range(h, px, y, e, base, lo[2], hi[2], nb, c32, out, fold)
        _sender_range(h, px, y, e, base, lo[1], hi[1], nb, c16, out, fold)
        _sender_range(h, px, y, e, base, lo[0], hi[0], nb, c8, out, fold)


@njit(nogil=True, cache=True)
def _receiver_range(h, px, x, e, base, j0, j1, part, out, fold):
    for j in range(j0, j1):
        r = base + j
        xb = np.uint64(x[e, j])
        for i in range(out.shape[2]):
            v = (h[r, i] ^ px[r, i & 1]) + np.uint64(part[e, j - j0, i]) * xb
            if fold:
                out[e, 0, i] += v << np.uint64(j)
            else:
                out[e, j, i] = v


@njit(nogil=True, cache=True)
def _receiver_ranges(h, px, x, e0, e1, lo, hi, c8, c16, c32, c64, out, fold):
    """_receiver_chunk with class ranges (as _sender_ranges): h (R, 2 nb), px (R, 2)."""
    L = x.shape[1]
    for e in range(e0, e1):
        if fold:
            out[e, 0, :] = 0
        base = (e - e0) * L
        _receiver_range(h, px, x, e, base, lo[3], hi[3], c64, out, fold)
        _receiver_range(h, px, x, e, base, lo[2], hi[2], c32, out, fold)
        _receiver_range(h, px, x, e, base, lo[1], hi[1], c16, out, fold)
        _receiver_range(h, px, x, e, base, lo[0], hi[0], c8, out, fold)


class OtLink:
    """Both IKNP directions between this party and its one peer.

    send(obj) / recv() move arrays to and from the peer; bytes and messages are counted
    here (offline traffic), not in the online round count."""

    def __init__(self, send, recv):
        self._send, self._recv = send, recv
        self.bytes_sent = 0
        self.messages = 0
        self.hash = Hash()
        self.receiver: Optional[IknpReceiver] = None
        self.sender: Optional[IknpSender] = None

    def send(self, obj) -> None:
        self.bytes_sent += nbytes(obj)
        self.messages += 1
        self._send(obj)

    def recv(self):
        return self._recv()

    def setup(self, rand=os.urandom) -> None:
        """128 base OTs each way (Chou-Orlandi): 3 messages per party. rand(n) -> n
        random bytes for Delta and the base-OT scalars: os.urandom, or the party's
        cryptographic PRG (which a seeded test cluster makes reproducible)."""
        delta = np.unpackbits(np.frombuffer(bytes(rand(KAPPA // 8)), np.uint8))
        bs, br = BaseOtSender(rand), BaseOtReceiver(delta, rand)
        self.send(np.frombuffer(bs.A, np.uint8).copy())
        a_peer = self._points(self.recv(), 1)[0]
        self.send(np.frombuffer(b"".join(br.points(a_peer)), np.uint8).copy())
        pairs = bs.keys(self._points(self.recv(), KAPPA))
        self.receiver = IknpReceiver(pairs)
        self.sender = IknpSender(delta, br.keys())

    @staticmethod
    def _points(raw, count):
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.size != 33 * count:
            raise PeerError("base OT: malformed message from the peer")
        b = raw.tobytes()
        return [b[33 * i:33 * (i + 1)] for i in range(count)]

    def random(self, x: Optional[np.ndarray], peer_count: int, n: int = 1):
        """One batch of random OTs (no corrections): the receiver of each OT gets the
        pad of its choice, the sender both pads, H(q_j) and H(q_j ^ Delta), n words each.
        x: (N,) 0/1 uint8 choices if this party receives, else None; peer_count: the
        OTs the peer receives (0: none). One message from each receiver (its IKNP u).
        Returns (my pads (N, n) or None, (pads0, pads1) (peer_count, n) each or None)."""
        mine = theirs = None
        if x is not None:
            u, t, first = self.receiver.extend(x.reshape(-1))
            self.send(u)
            mine = np.empty((x.size, n), np.uint64)
            for lo, hi in self._chunks(x.size, n):
                self.hash(t[lo:hi], first + lo, n, out=mine[lo:hi])
        if peer_count:
            q, firstq = self.sender.extend(self.recv(), peer_count)
            theirs = tuple(np.empty((peer_count, n), np.uint64) for _ in range(2))
            for lo, hi in self._chunks(peer_count, n):
                self.hash.pair(q[lo:hi], firstq + lo, n, self.sender.delta,
                               theirs[0][lo:hi], theirs[1][lo:hi], diff=False)
        return mine, theirs

    def cross(self, x: Optional[np.ndarray], y: Optional[np.ndarray], n: int, widths,
              peer_shape: Optional[Tuple[int, int]] = None, fold: bool = False):
        """One batch of OT products (see the module docstring).

        x: (N, L) 0/1 uint8 if this party receives in this batch, else None.
        y: (N', L', n) uint64 (broadcastable to (N', L', n)) if the peer receives, else None;
           peer_shape = (N', L') then.
        widths: (L,) bit widths (the same list for both directions).
        Returns (share of x*y_peer (N, L, n) or None, share of x_peer*y (N', L', n) or None).
        Both parties' shares of one product sum to it mod 2^{w_j}. fold: return
        sum_j 2^j share_j instead, (N, n) and (N', n) mod 2^64 (Gilboa's sum; then
        w_j must be at most 64 - j), made chunk by chunk while the pads are in cache."""
        mine = theirs = None
        cls, col, counts = _layout(widths)
        present = [c for c in range(4) if counts[c]]
        fast = _ranges(cls, counts)
        if x is not None:
            x = np.ascontiguousarray(x, np.uint8)
            N, L = x.shape
            u, t, first = self.receiver.extend(x.reshape(-1))
            self.send(u)
        if y is not None:
            Np, Lp = peer_shape
            q, firstq = self.sender.extend(self.recv(), Np * Lp)
            parts = [np.empty((Np, counts[c], n), _DTYPES[c]) if counts[c] else _NO_PART[c]
                     for c in range(4)]
            theirs = np.empty((Np, n) if fold else (Np, Lp, n), np.uint64)
            out = theirs.reshape(Np, 1 if fold else Lp, n)
            yb = np.broadcast_to(y, (Np, Lp, n))
            for e0, e1 in self._chunks(Np, Lp * n):
                strings = q.strings(e0 * Lp, e1 * Lp, self.sender.delta)
                px, h = self.hash.raw(strings, firstq + e0 * Lp, (n + 1) // 2)
                R = (e1 - e0) * Lp
                if fast and fold and n == 1:
                    _sender_fold1(h.reshape(R, 4), px.reshape(R, 4), yb, e0, e1, *fast,
                                  *parts, out)
                elif fast:
                    _sender_ranges(h.reshape(R, -1), px.reshape(R, 4), yb, e0, e1, *fast,
                                   *parts, out, fold)
                else:
                    _sender_chunk(h, px, yb, e0, e1, cls, col, *parts, out, fold)
            self.send(tuple(parts[c] for c in present))
        if x is not None:
            got = self.recv()
            if not isinstance(got, tuple) or len(got) != len(present):
                raise PeerError("OT product: malformed corrections from the peer")
            parts = list(_NO_PART)
            for c, part in zip(present, got):
                if not isinstance(part, np.ndarray) or part.dtype != _DTYPES[c] \
                        or part.shape != (N, counts[c], n):
                    raise PeerError("OT product: malformed corrections from the peer")
                parts[c] = part
            mine = np.empty((N, n) if fold else (N, L, n), np.uint64)
            out = mine.reshape(N, 1 if fold else L, n)
            for e0, e1 in self._chunks(N, L * n):
                px, h = self.hash.raw(t.strings(e0 * L, e1 * L), first + e0 * L, (n + 1) // 2)
                R = (e1 - e0) * L
                if fast and fold and n == 1:
                    _receiver_fold1(h.reshape(R, 2), px.reshape(R, 2), x, e0, e1, *fast,
                                    *parts, out)
                elif fast:
                    _receiver_ranges(h.reshape(R, -1), px.reshape(R, 2), x, e0, e1, *fast,
                                     *parts, out, fold)
                else:
                    _receiver_chunk(h, px, x, e0, e1, cls, col, *parts, out, fold)
        return mine, theirs

    @staticmethod
    def _chunks(N, per):
        """Element ranges of about _CHUNK_WORDS pad words (whole elements)."""
        step = max(1, _CHUNK_WORDS // per)
        for e0 in range(0, N, step):
            yield e0, min(N, e0 + step)
