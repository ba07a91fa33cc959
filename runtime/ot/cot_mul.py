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
pad words, in cache): it slices the transposed rows (made block by block, bit_transpose),
hashes them (the sender both pads at once, Hash.pair), makes or applies the corrections,
and with fold=True sums the positions into sum_j 2^j share_j (Gilboa's sum, mod 2^64, by
a matmul of the pads with the weights), so no batch-sized pad arrays are written.

The link is set up with 128 base OTs per direction (base_ot.py), 2 rounds, once.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Tuple

import numpy as np

from ..link import PeerError, nbytes
from .base_ot import BaseOtReceiver, BaseOtSender
from .iknp import KAPPA, Hash, IknpReceiver, IknpSender

_CHUNK_WORDS = 1 << 15    # pad words per chunk of the corrections (256 KB: in cache)
_POW2 = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))    # Gilboa's weights 2^j
_CLASSES = ((8, np.uint8), (16, np.uint16), (32, np.uint32), (64, np.uint64))


def _classes(widths):
    """Bit positions grouped by the narrowest unsigned dtype that holds their width: a
    slice when the positions are contiguous (every construction here: no fancy-index
    copies), else an index array."""
    widths = np.asarray(widths)
    out, lo = [], 0
    for bits, dt in _CLASSES:
        idx = np.nonzero((widths > lo) & (widths <= bits))[0]
        if idx.size:
            if idx[-1] - idx[0] + 1 == idx.size:
                idx = slice(int(idx[0]), int(idx[-1]) + 1)
            out.append((idx, dt))
        lo = bits
    return out


def _count(idx) -> int:
    return idx.stop - idx.start if isinstance(idx, slice) else idx.size


class OtLink:
    """Both IKNP directions between this party and its one peer.

    send(obj) / recv() move arrays to and from the peer; bytes and messages are counted
    here (offline traffic), not in the online round count."""

    def __init__(self, send, recv):
        self._send, self._recv = send, recv
        self.bytes_sent = 0
        self.messages = 0
        self.hash = Hash()
        self._bufs = {}
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
            mine = self.hash(t[:x.size], first, n)
        if peer_count:
            q, firstq = self.sender.extend(self.recv(), peer_count)
            q = q[:peer_count]
            theirs = (self.hash(q, firstq, n), self.hash(q, firstq, n, xor=self.sender.delta))
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
        classes = _classes(widths)
        if x is not None:
            N, L = x.shape
            u, t, first = self.receiver.extend(x.reshape(-1))
            self.send(u)
        if y is not None:
            Np, Lp = peer_shape
            q, firstq = self.sender.extend(self.recv(), Np * Lp)
            corr = [np.empty((Np, _count(idx), n), dt) for idx, dt in classes]
            theirs = np.empty((Np, n) if fold else (Np, Lp, n), np.uint64)
            yb = np.broadcast_to(y, (Np, Lp, n))
            for e0, e1 in self._chunks(Np, Lp * n):
                r, f = slice(e0 * Lp, e1 * Lp), firstq + e0 * Lp
                m0, d = self.hash.pair(q[r], f, n, self.sender.delta,
                                       self._buf("m0", ((e1 - e0) * Lp, n)),
                                       self._buf("d", ((e1 - e0) * Lp, n)))
                d = d.reshape(e1 - e0, Lp, n)
                for (idx, dt), part in zip(classes, corr):      # u = y + m0 - m1, low w_j bits
                    np.subtract(yb[e0:e1, idx], d[:, idx], out=part[e0:e1], casting="unsafe")
                if not fold:
                    np.negative(m0, out=m0)
                self._put(theirs, e0, e1, m0.reshape(e1 - e0, Lp, n), fold)
            if fold:                                     # sum_j 2^j (-m0_j), negated once
                np.negative(theirs, out=theirs)
            self.send(tuple(corr))
        if x is not None:
            got = self.recv()
            if not isinstance(got, tuple) or len(got) != len(classes):
                raise PeerError("OT product: malformed corrections from the peer")
            for (idx, dt), part in zip(classes, got):
                if not isinstance(part, np.ndarray) or part.dtype != dt \
                        or part.shape != (N, _count(idx), n):
                    raise PeerError("OT product: malformed corrections from the peer")
            mine = np.empty((N, n) if fold else (N, L, n), np.uint64)
            for e0, e1 in self._chunks(N, L * n):
                h = self.hash(t[e0 * L:e1 * L], first + e0 * L, n,
                              out=self._buf("h", ((e1 - e0) * L, n))).reshape(e1 - e0, L, n)
                v = self._buf("v", (e1 - e0, L, n))
                for (idx, dt), part in zip(classes, got):
                    v[:, idx] = part[e0:e1]
                v *= x[e0:e1, :, None]                 # H(t) + x u
                h += v
                self._put(mine, e0, e1, h, fold)
        return mine, theirs

    def _buf(self, name, shape):
        """A kept uint64 buffer of that shape (chunks reuse it: no allocation each)."""
        words = math.prod(shape)
        b = self._bufs.get(name)
        if b is None or b.size < words:
            b = self._bufs[name] = np.empty(words, np.uint64)
        return b[:words].reshape(shape)

    @staticmethod
    def _chunks(N, per):
        """Element ranges of about _CHUNK_WORDS pad words (whole elements)."""
        step = max(1, _CHUNK_WORDS // per)
        for e0 in range(0, N, step):
            yield e0, min(N, e0 + step)

    @staticmethod
    def _put(dst, e0, e1, s, fold):
        if not fold:
            dst[e0:e1] = s
            return
        w = _POW2[:s.shape[1]]
        if s.shape[2] == 1:
            np.matmul(s[:, :, 0], w, out=dst[e0:e1, 0])      # sum_j 2^j s_j, mod 2^64
        else:
            dst[e0:e1] = np.matmul(w, s)
