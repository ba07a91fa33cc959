"""ABY3: 3 parties, 2-of-3 replicated secret sharing, semi-honest, honest majority.

Layout: x = x_0 + x_1 + x_2 mod 2^k (boolean: x_0 ^ x_1 ^ x_2 on k-bit words); P_i holds
Share.parts = (x_i, x_{i+1}), indices mod 3. Two parties reconstruct; one party alone
sees two uniformly random components.

Correlated randomness without a dealer (setup, once): P_i samples k_i and sends it to
P_{i-1}, so P_i holds (k_i, k_{i+1}): {P0,P1} share k_1, {P1,P2} k_2, {P2,P0} k_0.
F(k) is the AES-CTR keystream of k (runtime.prg.Prg); the two holders of a key draw
the same values because every method draws the same amounts in the same order (SPMD).
  * zero sharing alpha_i = F(k_i) - F(k_{i+1}) (boolean: F(k_i) ^ F(k_{i+1})), from
    prg_own = Prg(k_i) and prg_next = Prg(k_{i+1}); sum_i alpha_i = 0.
  * P0-centred streams for trunc and b2a_bit, keys derived with labels:
    A = Prg(H(k_0 | "aby3/p0-p2")) at P0, P2 and B = Prg(H(k_1 | "aby3/p0-p1")) at P0, P1.

Costs per element, per party (rounds on the critical path; k-bit elements sent):
    reveal, mul, and_      1 round, 1 element
    dot                    1 round, 1 element per output element
    trunc                  1 round; P0 2 elements + 2 small words (24 B at k=64, f=18),
                           P1, P2 1 element; exact to 1 ulp, never a large error
    mul_trunc              trunc(x * y) in 2 rounds without mul's reshare: P0 24 B,
                           P1, P2 2 elements (aby3_convert.py)
    b2a_bit                1 round; P0 4 elements, P1, P2 1 element
    add, neg, *_public, xor, boolean_addends (3 addends): local
So less/msb (runtime/fxp/compare.py) = 1 carry-save + 7 Kogge-Stone AND rounds +
1 b2a round = 9 rounds; 17 elements sent by P0, 14 by P1 and P2.

trunc, b2a_bit and mul_trunc (P0-centred, one helper-OT round) live in aby3_convert.py.

Security: every message is masked by keystream of a key the receiver lacks, and the
shares a party ends up with are uniformly random given its view, so each view is
simulatable from the party's inputs and the revealed outputs.

In-process, received arrays are objects shared between party threads: no method writes
into an input or a sent array (only into arrays it just made, or into private scratch
buffers that are never sent or returned).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..prg import Prg, derive_key
from ..ring_matmul import ring_matmul_sum
from .aby3_convert import _SCRATCH_CAP, P0Centred, _keystream
from .base import Protocol, Share
from .dealing import SeededShare, deal_expanded, seeded_pieces

def _free(x: np.ndarray, contract, batch):
    return [x.shape[i] for i in range(x.ndim) if i not in contract and i not in batch]


def _mm_operand(x: np.ndarray, contract, batch, lhs: bool):
    """Bring a dot_general operand into batched-matmul form (as ring_dot_general does):
    lhs -> [nb, m, k] (or [m, k] if there is no batch), rhs -> [nb, k, n] (or [k, n])."""
    free = [i for i in range(x.ndim) if i not in contract and i not in batch]
    nb = int(np.prod([x.shape[i] for i in batch], dtype=np.int64))
    f = int(np.prod([x.shape[i] for i in free], dtype=np.int64))
    k = int(np.prod([x.shape[i] for i in contract], dtype=np.int64))
    if lhs:
        t = np.transpose(x, list(batch) + free + list(contract)).reshape(nb, f, k)
    else:
        t = np.transpose(x, list(batch) + list(contract) + free).reshape(nb, k, f)
    return t if batch else t[0]


class Aby3(P0Centred, Protocol):
    name = "aby3"
    default_parties = 3
    needs_dealer = False
    share_parts = 2            # (x_i, x_{i+1})

    def __init__(self, ctx):
        super().__init__(ctx)
        if self.n != 3:
            raise ValueError("aby3 runs with exactly 3 parties")
        self.prev = (self.rank - 1) % 3
        self.next = (self.rank + 1) % 3
        self._scratch = None

    # ---- setup and dealing ------------------------------------------------------
    def setup(self) -> None:
        """P_i samples k_i and sends it to P_{i-1}; receives k_{i+1} from P_{i+1}.
        Cost: 1 round, 16 bytes (once per cluster)."""
        k_own = bytes(self.ctx.local_prg.bytes(16))
        got = self.comm.exchange({self.prev: np.frombuffer(k_own, np.uint8).copy()}, [self.next])
        k_next = np.asarray(got[self.next], np.uint8).tobytes()
        if len(k_next) != 16:
            raise ValueError("aby3 setup: bad key from the next party")
        self.prg_own = Prg(k_own)          # k_i,     shared with P_{i-1}
        self.prg_next = Prg(k_next)        # k_{i+1}, shared with P_{i+1}
        # P0-centred streams: A (P0, P2) from k_0 = P0's own = P2's next key,
        # B (P0, P1) from k_1 = P0's next = P1's own key.
        k0, k1 = (k_own, k_next) if self.rank == 0 else (k_next, k_own)
        self.prg_a = Prg(derive_key(k0, "aby3/p0-p2")) if self.rank != 1 else None
        self.prg_b = Prg(derive_key(k1, "aby3/p0-p1")) if self.rank != 2 else None

    @classmethod
    def deal_seeded(cls, x, nparties, prg, ring):
        """x0, x1 from fresh keys k0, k1, x2 = x - x0 - x1 (dealing.py); P0 (x0,x1),
        P1 (x1,x2), P2 (x2,x0) travel as (k0,k1), (k1,x2), (x2,k0)."""
        if nparties != 3:
            raise ValueError("aby3 runs with exactly 3 parties")
        (k0, k1), x2 = seeded_pieces(x, 3, prg, ring)
        return [SeededShare((k0, k1)), SeededShare((k1, x2)), SeededShare((x2, k0))]

    deal = classmethod(deal_expanded)

    @classmethod
    def reply_share(cls, share, rank):
        """P0 returns x0 + x1 (XOR for boolean) as one part, P1 x2, P2 nothing: two
        arrays back per output (three parties' full shares would be six). x0 + x1 =
        x - x2: nothing the holder of x and x2 could not compute."""
        a, b = share.parts
        none = a.reshape(-1)[:0]
        if rank == 0:
            return Share([a ^ b if share.boolean else a + b, none], share.boolean)
        return Share([none, b if rank == 1 else none], share.boolean)

    @classmethod
    def reconstruct_replies(cls, replies, ring):
        """x = (x0 + x1) + x2 from P0's and P1's reply_share."""
        a, c = replies[0].parts[0], replies[1].parts[1]
        return a ^ c if replies[0].boolean else a + c

    @classmethod
    def reconstruct(cls, shares: Sequence[Share], ring) -> np.ndarray:
        """x0 + x1 + x2 (XOR for boolean shares) from P0's (x0, x1) and P1's x2."""
        a, b = shares[0].parts
        c = shares[1].parts[1]
        if shares[0].boolean:
            return a ^ b ^ c
        out = np.add(a, b)
        out += c
        return out

    # ---- helpers ------------------------------------------------------------------
    def _tmp(self, shape, dtype, count=1, extra=None) -> List[np.ndarray]:
        """Private scratch arrays (never sent, never returned), reused across calls to
        avoid page faults on fresh temporaries: `count` arrays of `dtype`, plus one of
        dtype `extra` if given, all of `shape`."""
        n = int(np.prod(shape, dtype=np.int64))
        dts = [np.dtype(dtype)] * count + ([np.dtype(extra)] if extra is not None else [])
        sizes = [-(-n * d.itemsize // 64) * 64 for d in dts]
        need = max(sum(sizes), 64)
        buf = self._scratch
        if buf is None or buf.nbytes < need:
            buf = np.empty(need, np.uint8)
            if need <= _SCRATCH_CAP:
                self._scratch = buf
        out, off = [], 0
        for d, z in zip(dts, sizes):
            out.append(buf[off:off + n * d.itemsize].view(d).reshape(shape))
            off += z
        return out

    def _add_zero_share(self, z: np.ndarray, t: np.ndarray, boolean: bool) -> None:
        """z += alpha_i = F(k_i) - F(k_{i+1}) (z ^= F(k_i) ^ F(k_{i+1}) if boolean);
        z C-contiguous, t scratch of z's shape. Local; 2 keystream draws of z.size."""
        if boolean:
            _keystream(self.prg_own, t, z)
            _keystream(self.prg_next, z, t)
        else:
            _keystream(self.prg_own, t)
            z += t
            _keystream(self.prg_next, t)
            z -= t

    def _reshare(self, z: np.ndarray, boolean: bool) -> Share:
        """3-of-3 -> 2-of-3: P_i sends z_i to P_{i-1}, gets z_{i+1} from P_{i+1}.
        1 round, 1 element."""
        got = self.comm.exchange({self.prev: z}, [self.next])
        return Share((z, got[self.next]), boolean)

    def reveal(self, x: Share) -> np.ndarray:
        """P_i sends x_i to P_{i+1} (who lacks it) and gets x_{i-1} = x_{i+2}.
        1 round, 1 element."""
        a, b = x.parts
        a_c = np.ascontiguousarray(a).reshape(np.shape(a))   # (0-d stays 0-d)
        got = self.comm.exchange({self.next: a_c}, [self.prev])[self.prev]
        if x.boolean:
            return a ^ b ^ got
        out = np.add(a, b)
        out += got
        return out

    # ---- arithmetic shares: local -------------------------------------------------
    def add(self, x, y):
        """(x_i + y_i, x_{i+1} + y_{i+1}). Local."""
        return Share((x.parts[0] + y.parts[0], x.parts[1] + y.parts[1]))

    def neg(self, x):
        """(-x_i, -x_{i+1}). Local."""
        return Share((np.negative(x.parts[0]), np.negative(x.parts[1])))

    def _public_op(self, x: Share, p, op) -> Share:
        """Apply op(., p) to component x_0 only: P0's parts[0], P2's parts[1]. Local."""
        p = np.asarray(p)
        if p.dtype != self.ring.dtype:
            p = self.ring.cast(p)
        a, b = x.parts
        if self.rank == 0:
            a = op(a, p)
        elif self.rank == 2:
            b = op(b, p)
        shape = np.broadcast_shapes(a.shape, b.shape, p.shape)
        a = a if a.shape == shape else np.broadcast_to(a, shape)
        b = b if b.shape == shape else np.broadcast_to(b, shape)
        return Share((a, b), x.boolean)

    def add_public(self, x, p):
        """x + p: only component x_0 changes (P0 and P2 add p). Local."""
        return self._public_op(x, p, np.add)

    def xor_public(self, x, p):
        """x ^ p: only component x_0 changes (P0 and P2 xor p). Local."""
        return self._public_op(x, p, np.bitwise_xor)

    # ---- multiplication ----------------------------------------------------------------
    # The nine cross terms x_a y_b of x y are split into a 3-of-3 sharing z_0 + z_1 + z_2
    # that each party computes from its own components (ABY3 uses the symmetric
    # z_i = x_i y_i + x_i y_{i+1} + x_{i+1} y_i: 2 products per party). We use an
    # equivalent split with 5 products in total instead of 6 (max 2 per party, so no
    # party does more work; in-process, the three parties share the cores):
    #   P0: z_0 = (x_0 + x_1)(y_0 + y_1)          terms 00 01 10 11   1 product
    #   P1: z_1 = x_1 y_2 + x_2 y_1                terms 12 21         2 products
    #   P2: z_2 = x_2 (y_2 + y_0) + x_0 y_2        terms 22 20 02      2 products
    # (A single rank-1 product per party is impossible in Z_2^k: it needs a and 1 - a
    # both odd.) Then z_i += alpha_i and the reshare: P_i sends z_i to P_{i-1}.
    # Security: P_{i-1} holds k_{i-1}, k_i but not k_{i+1}, and z_i carries -F(k_{i+1}).

    def _product(self, x, y, plus, times, boolean: bool) -> Share:
        """The split above with (plus, times) = (+, *) or (^, &), + zero share, reshare."""
        z, t = self._local_product(x, y, plus, times)
        self._add_zero_share(z, t, boolean)
        return self._reshare(z, boolean)

    def _local_product(self, x, y, plus, times):
        """(z_i, scratch): this party's term of the 3-of-3 split (z_i freshly made)."""
        xa, xb = x.parts
        ya, yb = y.parts
        shape = np.broadcast_shapes(xa.shape, xb.shape, ya.shape, yb.shape)
        dt = self.ring.dtype
        (t,) = self._tmp(shape, dt)
        z = np.empty(shape, dt)
        if x is y:                              # squares: one sum / one product less
            if self.rank == 0:                  # (x_0 + x_1)^2
                plus(xa, xb, out=z)
                times(z, z, out=z)
            elif self.rank == 1:                # 2 x_1 x_2 (x_1 x_2 + x_2 x_1)
                times(xa, xb, out=z)
                plus(z, z, out=z)
            else:                               # x_2 (x_2 + x_0) + x_0 x_2 = x_2 (x_2 + 2 x_0)
                plus(xb, xb, out=t)
                plus(t, xa, out=t)
                times(xa, t, out=z)
            return z, t
        if self.rank == 0:                      # (x_0 + x_1)(y_0 + y_1)
            plus(ya, yb, out=t)
            plus(xa, xb, out=z)
            times(z, t, out=z)
        elif self.rank == 1:                    # x_1 y_2 + x_2 y_1
            times(xa, yb, out=z)
            times(xb, ya, out=t)
            plus(z, t, out=z)
        else:                                   # x_2 (y_2 + y_0) + x_0 y_2
            plus(ya, yb, out=t)
            times(xa, t, out=z)
            times(xb, ya, out=t)
            plus(z, t, out=z)
        return z, t

    def mul(self, x, y):
        """Elementwise x * y: local 3-of-3 products (above) + alpha_i, then reshare.
        Cost: 1 round, 1 element per party; 2 keystream draws."""
        return self._product(x, y, np.add, np.multiply, False)

    def dot(self, x, y, dims):
        """dot_general (dims = lhs/rhs contract, lhs/rhs batch) with the same 3-of-3
        split as mul, matrix products through ring_matmul_sum (exact; the two products
        of P1 and P2 are fused into one call), + alpha_i, then reshare.
        Cost: 1 round, 1 element per OUTPUT element; 1 (P0) or 2 (P1, P2) ring matmuls."""
        return self._reshare(self._masked_dot_term(x, y, dims), False)

    def dot_many(self, items):
        """Independent dots with one reshare: the 3-of-3 terms (+ alpha_i) of all of them
        travel in one message. Cost: 1 round, 1 element per output element of each."""
        zs = [self._masked_dot_term(x, y, dims) for x, y, dims in items]
        got = self.comm.exchange({self.prev: np.concatenate([z.reshape(-1) for z in zs])},
                                 [self.next])[self.next]
        ends = np.cumsum([z.size for z in zs])[:-1]
        return [Share((z, g.reshape(z.shape))) for z, g in zip(zs, np.split(got, ends))]

    def _masked_dot_term(self, x, y, dims) -> np.ndarray:
        """z_i + alpha_i of the 3-of-3 split of dot_general, ready to reshare."""
        z, t = self._local_dot(x, y, dims)
        self._add_zero_share(z, t, False)
        return z

    def _local_dot(self, x, y, dims):
        """(z_i, scratch): this party's term of the 3-of-3 split of dot_general."""
        lc, rc, lb, rb = [list(d) for d in dims]
        xa, xb = x.parts
        ya, yb = y.parts
        L = lambda a: _mm_operand(a, lc, lb, True)
        R = lambda b: _mm_operand(b, rc, rb, False)
        if self.rank == 0:
            pairs = [(L(np.add(xa, xb)), R(np.add(ya, yb)))]
        elif self.rank == 1:
            pairs = [(L(xa), R(yb)), (L(xb), R(ya))]
        else:
            pairs = [(L(xa), R(np.add(ya, yb))), (L(xb), R(ya))]
        out_shape = ([xa.shape[i] for i in lb] + _free(xa, lc, lb) + _free(ya, rc, rb))
        z = ring_matmul_sum(pairs, self.ring.bits)
        z = np.ascontiguousarray(np.asarray(z, self.ring.dtype)).reshape(out_shape)
        (t,) = self._tmp(z.shape, self.ring.dtype)
        return z, t

    # ---- boolean shares -----------------------------------------------------------------
    def boolean_addends(self, x):
        """Three boolean sharings [x_0]^B, [x_1]^B, [x_2]^B with sum_j x_j = x: addend j
        has component j = x_j and the other two components 0, so exactly the holders of
        x_j (P_j and P_{j-1}) hold it. Local, no randomness needed."""
        xa, xb = x.parts
        zero = np.zeros(np.broadcast_shapes(xa.shape, xb.shape), self.ring.dtype)
        return [Share((xa if j == self.rank else zero, xb if j == self.next else zero), True)
                for j in range(3)]

    def and_(self, x, y):
        """Bitwise AND: the split of mul over GF(2) (P0: (x_0 ^ x_1) & (y_0 ^ y_1);
        P1: x_1 & y_2 ^ x_2 & y_1; P2: x_2 & (y_2 ^ y_0) ^ x_0 & y_2), ^ beta_i, reshare.
        Cost: 1 round, 1 element (k-bit word); 2 keystream draws."""
        return self._product(x, y, np.bitwise_xor, np.bitwise_and, True)
