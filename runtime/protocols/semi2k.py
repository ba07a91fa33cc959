"""semi2k: n-of-n additive sharing over Z_2^k with a trusted dealer (semi-honest).

Parties P_0 .. P_{n-1} (n >= 2) compute; the dealer D (rank n) only hands out
correlated randomness and never sees shares of inputs or anything derived from them.

Sharing
    arithmetic  [x] = (x_0, .., x_{n-1}),  x = sum_i x_i mod 2^k   (P_i holds Share((x_i,)))
    boolean     <x> = (x_0, .., x_{n-1}),  x = XOR_i x_i           (k-bit words, boolean=True)
Any n-1 pieces are uniformly random and independent of x.

Correlated randomness (dealer)
    setup(): D draws one AES key per party from its private PRG and sends key_i to P_i
    (one exchange). From key_i, P_i and D expand two keystreams: the random stream
    G_i = Prg(key_i) and the derived stream H_i = Prg(derive_key(key_i, ...)).
    A correlation (a, b, c = ab), (r, r >> m, msb r), ... is dealt as follows:
      * every *random* piece (a_i, b_i, r_i, ...) of every party, P_0 included, is read
        from G_i; so a = sum_i a_i is uniform and no party knows it;
      * the pieces of every *derived* value (c = ab, ...) of P_1..P_{n-1} are read from
        H_i, and P_0's piece c_0 = c - sum_{i>0} c_i is computed by D and sent to P_0
        (the only messages D sends during a job; P_0 never reads H_0).
    D reads all keystreams in the same order as the parties do (SPMD: every party asks
    for the same correlations in the same order), so the streams stay in sync.
    Keystream layout: dot and b2a correlations take whole arrays, piece after piece;
    elementwise correlations (mul, square, trunc, and) are laid out in blocks of BLOCK
    elements, the pieces of block j (e.g. a_j, b_j) before block j + 1. So the parties
    and the dealer work block by block in cache (about 2x less memory traffic than
    whole-array numpy passes), and a party reads its derived pieces c_j only after the
    exchange, when it needs them (they are never stored whole).
    How D learns what to deal: P_0 sends a request (kind, shape, params; a few int64)
    before it needs the correlation, does its local work and its exchange with the
    other parties, and only then receives D's answer, so D works while the parties do.
    When a program runs again, P_0 also sends the requests of its last run at the
    start of the job and D computes them ahead (semi2k_ahead.py).
    P_1..P_{n-1} never talk to D during jobs. end_job() on P_0 sends a DONE request,
    which ends Dealer.serve(). All dealer traffic goes through comm (Comm.send /
    Comm.recv: counted bytes, outside the parties' round count since it does not depend
    on any input: it could all be sent ahead of time).

View of the parties: P_i sees its keystream pieces and opened values (x - a, ...), each
masked by a fresh uniform piece that P_i does not know in full; P_0 also sees
c_0 = c - sum_{i>0} c_i, uniform because the c_i are. The dealer sees the requests
(kinds and shapes) and nothing else.

Costs (per element, per computing party; n parties; one ring element = k/8 bytes):
    reveal          1 round,  n-1 elements
    add/neg/add_public/mul_public/xor/xor_public/and_public:   local
    mul             1 round,  2(n-1) elements           (x * x: 1 round, n-1 elements)
    dot             1 round,  (n-1)(|X| + |Y|) elements in total
    trunc           1 round,  n-1 elements              (error at most 1 ulp, see trunc)
    and_            1 round,  2(n-1) words
    b2a_bit         1 round,  (n-1)/8 bytes             (bits are sent packed)
P_0 also sends D one request (3 to ~20 int64) per interactive call, and D sends P_0 its
derived pieces: 1 element per element (2 for trunc). n = 2, k = 64: mul sends 16 bytes
per element, trunc 8, and 16, b2a 1/8.

All randomness comes from AES-CTR keystreams (runtime.prg.Prg); _fill below only
writes the keystream straight into numpy buffers (the same bytes as Prg.bytes).
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..link import PeerError
from ..prg import KEY_BYTES
from ..ring_linalg import ring_dot_general
from .base import PartyContext, Protocol, Share
from .dealing import SeededShare, deal_expanded, seeded_pieces
from .semi2k_ahead import Planner
from .semi2k_common import (AND, B2A, BLOCK, DONE, DOT, DOT_KEEP, DOT_REUSE, MUL, SQUARE, TRUNC,
                            _blocks, _draw_b2a, _draw_dot, _draw_dot_reuse, _encode_request, _fill,
                            _flat, _streams, _sum_into, uniform)

# --------------------------------------------------------------------------------------

class Semi2k(Protocol):
    name = "semi2k"
    default_parties = 2
    needs_dealer = True

    def __init__(self, ctx: PartyContext):
        super().__init__(ctx)
        if self.n < 2:
            raise ValueError("semi2k needs at least 2 computing parties")
        self.dealer_rank = self.n
        self.others = [j for j in range(self.n) if j != self.rank]
        self.first = self.rank == 0
        self.dt = self.ring.dtype
        self.prg = None      # random pieces: keystream shared with the dealer (setup)
        self.prg_d = None    # derived pieces (P_1..; P_0 gets its own from the dealer)
        self._kept_d = {}
        self.planner = Planner()    # P_0: requests of recent programs (semi2k_ahead.py)

    # ---- setup and dealing ---------------------------------------------------------
    def setup(self) -> None:
        """Receive this party's key from the dealer (one exchange); both streams derive
        from it."""
        got = self.comm.exchange({}, [self.dealer_rank])[self.dealer_rank]
        key = np.asarray(got, np.uint8).tobytes()
        if len(key) != KEY_BYTES:
            raise PeerError("semi2k setup: bad key from the dealer")
        self.prg, d = _streams(key)
        self.prg_d = None if self.first else d

    def begin_job(self) -> None:
        self._kept_d = {}            # dot_reusing_rhs: (id(y), dims) -> (y, slot, opened D)
        if self.first and self.needs_dealer:     # the requests of the last run, ahead
            plan = self.planner.begin(self.job_key)
            if plan is not None:
                self.comm.send(self.dealer_rank, plan)

    def end_job(self) -> None:
        self._kept_d = {}
        if self.first:
            self.planner.end()
            self.comm.send(self.dealer_rank, _encode_request(DONE, ()))

    @classmethod
    def deal_seeded(cls, x, nparties, prg, ring):
        """x_0 .. x_{n-2} from fresh keys, x_{n-1} = x - sum of the others
        (dealing.py): P_0 .. P_{n-2} are sent a key each, P_{n-1} the array."""
        keys, last = seeded_pieces(x, nparties, prg, ring)
        return [SeededShare((k,)) for k in keys] + [SeededShare((last,))]

    deal = classmethod(deal_expanded)

    @classmethod
    def reconstruct(cls, shares, ring):
        out = np.array(shares[0].parts[0], copy=True)
        op = np.bitwise_xor if shares[0].boolean else np.add
        for s in shares[1:]:
            op(out, s.parts[0], out=out)
        return out

    # ---- helpers ----------------------------------------------------------------------
    def _request(self, kind, params) -> None:
        """P_0: ask the dealer for a correlation (answered by _answer, later)."""
        if self.first:
            req = _encode_request(kind, params)
            self.planner.asked.append(req)
            self.comm.send(self.dealer_rank, req)

    def _answer(self):
        """P_0: the dealer's derived pieces for the oldest open request."""
        return self.comm.recv(self.dealer_rank)

    def _exchange(self, mine: tuple) -> List[tuple]:
        """One round: send `mine` (a tuple of arrays) to every other party; return their
        tuples. Arrays sent or received are never modified afterwards (in-process links
        pass them by reference)."""
        got = self.comm.exchange({j: mine for j in self.others}, self.others)
        return [got[j] for j in self.others]

    def _open(self, mine: tuple, xor: bool = False) -> List[np.ndarray]:
        """One round; the piecewise sums (XORs) of everybody's arrays (fresh arrays)."""
        got = self._exchange(mine)
        op = np.bitwise_xor if xor else np.add
        outs = []
        for idx, m in enumerate(mine):
            acc = np.asarray(op(m, got[0][idx]))     # 0-d inputs give a scalar, not an array
            for g in got[1:]:
                op(acc, g[idx], out=acc)
            outs.append(acc)
        return outs

    def _derived(self):
        """Block source of this party's derived pieces: P_0's come from the dealer (after
        the exchange: D computes them meanwhile), P_i's from its derived stream."""
        if self.first:
            ans = self._answer()
            ans = ans if isinstance(ans, tuple) else (ans,)
            return lambda s, bufs: [a[s] for a in ans]
        prg_d = self.prg_d
        return lambda s, bufs: [_fill(prg_d, b[:s.stop - s.start]) for b in bufs]

    # ---- opening ------------------------------------------------------------------------
    def reveal(self, x: Share) -> np.ndarray:
        """x = sum_i x_i (XOR for boolean). 1 round, n-1 elements per element."""
        (v,) = self._open((x.parts[0],), xor=x.boolean)
        return v

    # ---- arithmetic, local ----------------------------------------------------------------
    def add(self, x, y):
        """[x + y]_i = x_i + y_i."""
        return Share([x.parts[0] + y.parts[0]])

    def neg(self, x):
        """[-x]_i = -x_i."""
        return Share([-x.parts[0]])

    def add_public(self, x, p):
        """[x + p]: P_0 adds p, the others keep their piece (broadcast if needed)."""
        return self._public(x, p, np.add, False)

    def xor_public(self, x, p):
        """<x ^ p>: P_0 XORs p into its piece."""
        return self._public(x, p, np.bitwise_xor, True)

    def _public(self, x, p, op, boolean):
        p = np.asarray(p, self.dt)
        s = x.parts[0]
        if self.first:
            return Share([op(s, p)], boolean)
        shape = np.broadcast_shapes(s.shape, p.shape)
        return Share([s if s.shape == shape else np.broadcast_to(s, shape)], boolean)

    # ---- products: elementwise Beaver ------------------------------------------------------
    def mul(self, x, y):
        """Beaver triple (a, b, c = ab), a, b uniform.
        Open e = x - a and d = y - b in one exchange; then, as x = a + e and y = b + d,
            xy = a y + e y = a (b + d) + e y = c + a d + e y
            z_i = c_i + a_i d + e y_i            (no public term: e, d are public)
        Cost: 1 round, 2(n-1) ring elements per element per party; P_0 <- dealer: 1.
        x is y: square pair, 1 round, n-1 elements (see _square)."""
        if x is y:
            return self._square(x)
        return self._beaver(MUL, x, y)

    def and_(self, x, y):
        """AND triple (a, b, c = a & b) over k-bit words. Open e = x ^ a, d = y ^ b;
        as x = a ^ e and y = b ^ d:
            x & y = (a & y) ^ (e & y) = c ^ (a & d) ^ (e & y)
            z_i = c_i ^ (a_i & d) ^ (e & y_i)    (no public term)
        Cost: 1 round, 2(n-1) words per element per party; P_0 <- dealer: 1 word."""
        return self._beaver(AND, x, y)

    def _beaver(self, kind, x, y):
        arith = kind == MUL
        sub = np.subtract if arith else np.bitwise_xor
        add = np.add if arith else np.bitwise_xor
        mult = np.multiply if arith else np.bitwise_and
        shape = np.broadcast_shapes(x.shape, y.shape)
        xs, ys = _flat(x.parts[0], shape), _flat(y.parts[0], shape)
        n, dt, prg = xs.size, self.dt, self.prg
        self._request(kind, (shape,))
        a, ei, di = np.empty(n, dt), np.empty(n, dt), np.empty(n, dt)
        t1, t2, t3 = (np.empty(min(n, BLOCK), dt) for _ in range(3))
        for lo, hi in _blocks(n):          # random stream, per block: a, b
            s, b = slice(lo, hi), t1[:hi - lo]
            _fill(prg, a[s])
            _fill(prg, b)
            sub(xs[s], a[s], out=ei[s])    # e_i = x_i - a_i
            sub(ys[s], b, out=di[s])       # d_i = y_i - b_i
        got = self._exchange((ei, di))
        es, ds = [ei] + [g[0] for g in got], [di] + [g[1] for g in got]
        derived = self._derived()          # c_i, per block
        z = np.empty(n, dt)
        for lo, hi in _blocks(n):
            s, u, v = slice(lo, hi), t1[:hi - lo], t2[:hi - lo]
            (c,) = derived(s, (t3,))
            _sum_into(add, ds, s, u)       # d
            mult(u, a[s], out=u)           # a_i d
            add(u, c, out=u)               # + c_i
            _sum_into(add, es, s, v)       # e
            mult(v, ys[s], out=v)          # e y_i
            add(u, v, out=z[s])
        return Share([z.reshape(shape)], not arith)

    def _square(self, x):
        """Square pair (a, c = a^2): open e = x - a; x^2 - a^2 = (x - a)(x + a), so
            z_i = c_i + e (a_i + x_i)            (no public term)
        1 round, n-1 elements per element per party; P_0 <- dealer: 1 element."""
        shape = x.shape
        xs = _flat(x.parts[0], shape)
        n, dt, prg = xs.size, self.dt, self.prg
        self._request(SQUARE, (shape,))
        a, ei = np.empty(n, dt), np.empty(n, dt)
        for lo, hi in _blocks(n):          # random stream, per block: a
            s = slice(lo, hi)
            _fill(prg, a[s])
            np.subtract(xs[s], a[s], out=ei[s])
        got = self._exchange((ei,))
        es = [ei] + [g[0] for g in got]
        derived = self._derived()
        z = np.empty(n, dt)
        t1, t2, t3 = (np.empty(min(n, BLOCK), dt) for _ in range(3))
        for lo, hi in _blocks(n):
            s, u, v = slice(lo, hi), t1[:hi - lo], t2[:hi - lo]
            (c,) = derived(s, (t3,))
            _sum_into(np.add, es, s, u)    # e
            np.add(a[s], xs[s], out=v)     # a_i + x_i
            u *= v
            np.add(u, c, out=z[s])
        return Share([z.reshape(shape)])

    # ---- truncation ------------------------------------------------------------------------------
    def trunc(self, x, bits):
        """Arithmetic shift right by m = bits of a signed x with |x| < 2^(k-2); the result
        is floor(x / 2^m) or floor(x / 2^m) + 1: error at most 1 ulp, never more.

        Dealer pair: R = sum_i r_i uniform (every r_i read from the keystreams), and with
        r = R - 2^(k-2) (unsigned k-bit, >> logical) shares of
            s = (r >> m) + 2^(k-2-m)    and    w = msb(r) 2^(k-m).
        Open c = x + R = x' + r mod 2^k, where x' = x + 2^(k-2) is in [0, 2^(k-1)):
        1 round, n-1 elements per element per party.

        Algebra. As integers x' = c - r + 2^k W with W = 1 iff x' + r >= 2^k (wrap).
        Since x' < 2^(k-1): if msb(r) = 0 there is no wrap; if msb(r) = 1, a wrap leaves
        c = x' + r - 2^k < 2^(k-1) (msb(c) = 0) and no wrap leaves c >= r >= 2^(k-1)
        (msb(c) = 1). So W = msb(r) (1 - msb(c)), exactly. Divide by 2^m:
            floor(x'/2^m) = floor((c - r)/2^m) + 2^(k-m) W,
        and floor(c/2^m) - floor(r/2^m) - floor((c - r)/2^m) is 0 or 1, so
            T = (c >> m) - (r >> m) + 2^(k-m) W   is floor(x'/2^m) or floor(x'/2^m) + 1.
        2^m divides 2^(k-2), so floor(x/2^m) = floor(x'/2^m) - 2^(k-2-m), and
            [x >> m] = (c >> m) - [s] + (1 - msb(c)) [w]        ((c >> m) added by P_0),
        c public, s and w from the dealer, all mod 2^k (|T - 2^(k-2-m)| < 2^(k-1): no
        information lost). No probabilistic wrap: unlike local share truncation it
        never fails (2^20 products of [-256, 256] in the tests: every result exact or +1).
        Secrecy: c = x + R with R uniform and unknown to every party; P_0's s_0, w_0
        are masked by the keystream pieces s_i, w_i of the others.
        Cost: 1 round, n-1 ring elements per element per party; P_0 <- dealer: 2."""
        k, m = self.ring.bits, int(bits)
        if not 1 <= m <= k - 2:
            raise ValueError(f"semi2k trunc: shift {m} outside [1, {k - 2}]")
        shape = x.shape
        xs = _flat(x.parts[0], shape)
        n, dt, prg = xs.size, self.dt, self.prg
        self._request(TRUNC, (shape, m))
        ci = np.empty(n, dt)
        t1, t2, t3, t4 = (np.empty(min(n, BLOCK), dt) for _ in range(4))
        for lo, hi in _blocks(n):          # random stream, per block: r
            s, r = slice(lo, hi), t1[:hi - lo]
            _fill(prg, r)
            np.add(xs[s], r, out=ci[s])    # c_i = x_i + r_i
        got = self._exchange((ci,))
        cs = [ci] + [g[0] for g in got]
        derived = self._derived()          # s_i, w_i per block
        top, sh = dt(k - 1), dt(m)
        z = np.empty(n, dt)
        for lo, hi in _blocks(n):
            s, u, v = slice(lo, hi), t1[:hi - lo], t2[:hi - lo]
            sp, wp = derived(s, (t3, t4))
            _sum_into(np.add, cs, s, u)    # c
            np.right_shift(u, top, out=v)
            v ^= dt(1)                     # 1 - msb(c)
            v *= wp                        # (1 - msb c) w_i
            if self.first:
                u >>= sh                   # c >> m
                u -= sp
                np.add(u, v, out=z[s])
            else:
                np.subtract(v, sp, out=z[s])
        return Share([z.reshape(shape)])

    # ---- dot ------------------------------------------------------------------------------------
    def dot(self, x, y, dims):
        """Matrix triple (A, B, C = A.B) for the same dot_general dims, A, B uniform.
        dot_general is bilinear, so with E = X - A, D = Y - B opened in one exchange:
            X.Y = A.Y + E.Y = A.(B + D) + E.Y = C + A.D + E.Y
            Z_i = C_i + A_i.D + E.Y_i            (no public term)
        Cost: 1 round, (n-1)(|X| + |Y|) ring elements per party; 2 ring matmuls per
        party, 1 at the dealer. P_0 <- dealer: |Z| elements."""
        return self.dot_many([(x, y, dims)])[0]

    def dot_many(self, items):
        """Independent dots, each with its own matrix triple (requested and drawn in
        order), their E and D opened in one exchange. Cost: 1 round for all of them."""
        prepared, mine = [], []
        for x, y, dims in items:
            xs, ys = x.parts[0], y.parts[0]
            dims = tuple(tuple(int(i) for i in d) for d in dims)
            params = (xs.shape, ys.shape, dims)
            self._request(DOT, params)
            a, b, c = _draw_dot(self.prg, self.prg_d, params, self.dt)
            np.subtract(ys, b, out=b)      # b becomes D_i
            prepared.append((a, c, ys, dims))
            mine += [xs - a, b]
        opened = self._open(tuple(mine))
        return [self._dot_combine(a, c, opened[2 * i + 1], opened[2 * i], ys, dims)
                for i, (a, c, ys, dims) in enumerate(prepared)]

    def _dot_combine(self, a, c, d, e, ys, dims) -> Share:
        """Z_i = C_i + A_i.D + E.Y_i (P_0's C_i arrives from the dealer now)."""
        bits = self.ring.bits
        if self.first:
            c = self._answer()
        z = ring_dot_general(a, d, dims, bits)
        z += ring_dot_general(e, ys, dims, bits)
        z += c
        return Share([z])

    def dot_reusing_rhs(self, x, y, dims):
        """dot for a y that the job multiplies again (a loop-invariant weight: the
        compiler marks such dots): matrix-triple reuse. The first call is a dot whose
        dealer keeps B (slot s) and whose parties keep the opened D = Y - B; later calls
        with the same y draw a fresh A only, the dealer deals C = A.B with the kept B, and
        only E = X - A is opened:  Z_i = C_i + A_i.D + E.Y_i.
        Security: B is used with one Y only, so D stays a one-time pad of Y; every A is
        fresh. Cost of a later call: 1 round, (n-1)|X| elements per party (not
        (n-1)(|X| + |Y|)). Memory: D (|Y|) per party and B at the dealer, for the job."""
        xs, ys = x.parts[0], y.parts[0]
        dims = tuple(tuple(int(i) for i in d) for d in dims)
        key = (id(y), dims)
        kept = self._kept_d.get(key)
        if kept is not None and kept[0] is y:
            _, slot, d = kept
            params = (xs.shape, ys.shape, dims, slot)
            self._request(DOT_REUSE, params)
            a, c = _draw_dot_reuse(self.prg, self.prg_d, params, self.dt)
            (e,) = self._open((xs - a,))
        else:
            slot = len(self._kept_d)
            params = (xs.shape, ys.shape, dims, slot)
            self._request(DOT_KEEP, params)
            a, b, c = _draw_dot(self.prg, self.prg_d, params[:3], self.dt)
            np.subtract(ys, b, out=b)      # b becomes D_i
            e, d = self._open((xs - a, b))
            self._kept_d[key] = (y, slot, d)
        return self._dot_combine(a, c, d, e, ys, dims)

    # ---- boolean ---------------------------------------------------------------------------------
    def boolean_addends(self, x):
        """n boolean sharings whose sum is x: addend j = (P_j holds x_j, others 0)."""
        s = x.parts[0]
        z = np.zeros(s.shape, self.dt)
        return [Share([s if j == self.rank else z], True) for j in range(self.n)]

    def b2a_bit(self, x):
        """Random bit r dealt as <r> (bits read from the keystreams, packed) and [r]
        (P_0's piece from the dealer). Open t = x ^ r (bit 0 only, sent packed):
            x = t ^ r = t + r - 2 t r = t + (1 - 2t) [r]      (t public, added by P_0).
        Cost: 1 round, (n-1)/8 bytes per element per party; P_0 <- dealer: 1 element."""
        s = x.parts[0]
        shape, dt = s.shape, self.dt
        self._request(B2A, (shape,))
        rb, ra = _draw_b2a(self.prg, self.prg_d, (shape,), dt)
        mine = np.packbits((s & dt(1)).astype(np.uint8).reshape(-1))
        mine ^= rb
        (tp,) = self._open((mine,), xor=True)
        t = np.unpackbits(tp, count=s.size).reshape(shape).astype(dt)
        if self.first:
            ra = self._answer()
        sign = np.left_shift(t, dt(1), out=np.empty(t.shape, dt))   # an array even when 0-d
        np.subtract(dt(1), sign, out=sign)  # 1 - 2t
        sign *= ra
        if self.first:
            sign += t
        return Share([sign])


from .semi2k_dealer import Semi2kDealer  # noqa: E402 (the dealer imports only the common part)

Semi2k.Dealer = Semi2kDealer
