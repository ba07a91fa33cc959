"""The semi2k dealer role (see semi2k.py for the protocol): it reads every party's
keystreams and sends P_0 its pieces of the derived values; it receives only requests
(kinds and shapes) from P_0 and never sees a share of any input."""
from __future__ import annotations

from typing import List

import numpy as np

from ..link import PeerError
from ..prg import KEY_BYTES, Prg, derive_key
from ..ring_linalg import ring_dot_general
from .base import PartyContext
from .semi2k_ahead import Lookahead, SeekablePrg, is_plan
from .semi2k_common import (AND, B2A, BLOCK, DERIVED, DERIVED_LABEL, DONE, DOT, DOT_KEEP,
                            DOT_REUSE, MUL, RANDOM, SQUARE, TRUNC, _blocks, _decode_request,
                            _draw_b2a, _draw_dot, _draw_dot_reuse, _fill, _size)


# --------------------------------------------------------------------------------------

class Semi2kDealer:
    """The dealer role: reads every party's keystreams and sends P_0 its pieces of the
    derived values. Receives only requests (kinds and shapes) from P_0."""

    def __init__(self, ctx: PartyContext):
        self.ctx = ctx
        self.comm = ctx.comm
        self.ring = ctx.ring
        self.dt = ctx.ring.dtype
        self.n = ctx.nparties
        if ctx.rank != self.n:
            raise ValueError("the semi2k dealer has rank n = number of computing parties")
        self.prgs: List[Prg] = []           # random streams of P_0..P_{n-1}
        self.prgs_d: List[Prg] = []         # derived streams (index 0 unused)
        self.requests_served = 0
        self.kept_b = {}                    # slot -> B of a dot whose B is reused (one job)
        self.ahead = Lookahead(self)        # answers computed ahead of P_0's requests

    def setup(self) -> None:
        """One key per party from the dealer's private randomness; one exchange. The
        dealer's copies of the keystreams are seekable (semi2k_ahead.py)."""
        keys = [self.ctx.local_prg.bytes(KEY_BYTES) for _ in range(self.n)]
        self.prgs = [SeekablePrg(k) for k in keys]
        self.prgs_d = [None] + [SeekablePrg(derive_key(k, DERIVED_LABEL)) for k in keys[1:]]
        self.comm.exchange({i: np.frombuffer(k, np.uint8).copy() for i, k in enumerate(keys)}, [])

    def serve(self) -> None:
        """Answer P_0's requests until DONE (or until a peer fails: recv raises
        PeerError), working ahead along P_0's plan if it sent one (semi2k_ahead.py)."""
        ahead = self.ahead
        while True:
            msg = ahead.next_message()
            if is_plan(msg):
                ahead.set_plan(msg)
                continue
            kind, params = _decode_request(msg)
            if kind == DONE:
                self.kept_b.clear()
                ahead.end_job()
                return
            self.requests_served += 1
            self.comm.send(0, ahead.answer(msg, kind, params))

    def idle(self, stop) -> None:
        """Between jobs: compute the next job's correlations ahead (guessing it repeats
        the last one) until stop() is true."""
        self.ahead.idle(stop)

    def make(self, kind, params):
        """P_0's derived pieces of one correlation (reading all keystreams)."""
        if kind in RANDOM:
            return self._elementwise(kind, params)
        dt, rest = self.dt, range(1, self.n)
        if kind in (DOT, DOT_KEEP):
            pieces = [_draw_dot(g, gd, params[:3], dt) for g, gd in zip(self.prgs, self.prgs_d)]
            a, b, _ = pieces[0]
            for i in rest:
                a += pieces[i][0]
                b += pieces[i][1]
            c = ring_dot_general(a, b, params[2], self.ring.bits)
            for i in rest:
                c -= pieces[i][2]
            if kind == DOT_KEEP:
                self.kept_b[params[3]] = b
            return c
        if kind == DOT_REUSE:
            b = self.kept_b.get(params[3])
            if b is None:
                raise PeerError(f"dealer: no kept B in slot {params[3]}")
            pieces = [_draw_dot_reuse(g, gd, params, dt) for g, gd in zip(self.prgs, self.prgs_d)]
            a = pieces[0][0]
            for i in rest:
                a += pieces[i][0]
            c = ring_dot_general(a, b, params[2], self.ring.bits)
            for i in rest:
                c -= pieces[i][1]
            return c
        if kind == B2A:
            pieces = [_draw_b2a(g, gd, params, dt) for g, gd in zip(self.prgs, self.prgs_d)]
            rb = pieces[0][0]
            for i in rest:
                rb ^= pieces[i][0]
            (shape,) = params
            r = np.unpackbits(rb, count=_size(shape)).reshape(shape).astype(dt)
            for i in rest:
                r -= pieces[i][1]
            return r
        raise PeerError(f"dealer: unknown request kind {kind}")  # pragma: no cover

    def _elementwise(self, kind, params):
        """Block by block, in cache: read each party's pieces of the block (one call per
        stream), combine, write P_0's derived pieces."""
        dt, k = self.dt, self.ring.bits
        n = _size(params[0])
        blk = min(n, BLOCK)
        nr, nd = RANDOM[kind], DERIVED[kind]
        rbufs = [np.empty(nr * blk, dt) for _ in range(self.n)]
        dbufs = [np.empty(nd * blk, dt) for _ in range(self.n - 1)]
        t = np.empty(blk, dt)
        out = np.empty(n, dt)
        if kind == TRUNC:
            m = params[1]
            out2 = np.empty(n, dt)
            shm, top, up = dt(m), dt(k - 1), dt(k - m)
            off, lo_s = dt(1 << (k - 2)), dt(1 << (k - 2 - m))
        for lo, hi in _blocks(n):
            w = hi - lo
            R = [_fill(g, b[:nr * w]).reshape(nr, w) for g, b in zip(self.prgs, rbufs)]
            D = [_fill(g, b[:nd * w]).reshape(nd, w) for g, b in zip(self.prgs_d[1:], dbufs)]
            s = slice(lo, hi)
            if kind == MUL or kind == AND:
                add = np.add if kind == MUL else np.bitwise_xor
                a, b = R[0][0], R[0][1]
                for q in R[1:]:
                    add(a, q[0], out=a)
                    add(b, q[1], out=b)
                if kind == MUL:
                    a *= b
                    for q in D:
                        a -= q[0]
                else:
                    a &= b
                    for q in D:
                        a ^= q[0]
                out[s] = a
            elif kind == SQUARE:
                a = R[0][0]
                for q in R[1:]:
                    a += q[0]
                a *= a
                for q in D:
                    a -= q[0]
                out[s] = a
            else:                           # TRUNC
                r = R[0][0]
                for q in R[1:]:
                    r += q[0]
                r -= off                    # r = R - 2^(k-2)
                u = t[:w]
                np.right_shift(r, shm, out=u)
                u += lo_s                   # s = (r >> m) + 2^(k-2-m)
                for q in D:
                    u -= q[0]
                out[s] = u
                r >>= top
                r <<= up                    # w = msb(r) 2^(k-m)
                for q in D:
                    r -= q[1]
                out2[s] = r
        return (out, out2) if kind == TRUNC else out
