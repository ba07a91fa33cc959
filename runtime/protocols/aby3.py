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
    b2a_bit                1 round; P0 4 elements, P1, P2 1 element
    add, neg, *_public, xor, boolean_addends (3 addends): local
So less/msb (runtime/fxp/compare.py) = 1 carry-save + 7 Kogge-Stone AND rounds +
1 b2a round = 9 rounds; 17 elements sent by P0, 14 by P1 and P2.

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
from .base import Protocol, Share

_ZCHUNK = 1 << 22                       # bytes of keystream produced per AES call
_ZEROS = np.zeros(_ZCHUNK, np.uint8)    # read-only plaintext of zeros for update_into
_SCRATCH_CAP = 96 << 20                 # keep private scratch buffers up to this size


def _keystream(prg: Prg, dst: np.ndarray, src: np.ndarray = None) -> np.ndarray:
    """dst = F (or src ^ F): the next keystream bytes of prg, written in place into the
    C-contiguous dst (src: a distinct C-contiguous array of the same size). The same
    stream as prg.uniform, without its temporaries (AES-CTR encrypt of zeros / src)."""
    if not dst.flags.c_contiguous or (src is not None and not src.flags.c_contiguous):
        raise ValueError("_keystream needs C-contiguous arrays")
    db = dst.reshape(-1).view(np.uint8)
    sb = None if src is None else src.reshape(-1).view(np.uint8)
    enc = getattr(prg, "_enc", None)
    if enc is None or not hasattr(enc, "update_into"):  # pragma: no cover - other Prg
        ks = np.frombuffer(prg.bytes(db.size), np.uint8)
        np.copyto(db, ks) if sb is None else np.bitwise_xor(sb, ks, out=db)
        return dst
    for i in range(0, db.size, _ZCHUNK):
        j = min(db.size, i + _ZCHUNK)
        enc.update_into(_ZEROS[:j - i] if sb is None else sb[i:j], db[i:j])
    return dst


def _rand(prg: Prg, shape, dtype) -> np.ndarray:
    """A fresh array of uniform ring elements from prg."""
    return _keystream(prg, np.empty(shape, dtype))


def _small_dtype(bits: int, ring_dtype):
    """Smallest unsigned dtype with at least `bits` bits (no wider than the ring)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if bits <= 8 * np.dtype(dt).itemsize <= 8 * np.dtype(ring_dtype).itemsize:
            return dt
    return ring_dtype


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


class Aby3(Protocol):
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
    def deal(cls, x, nparties, prg, ring):
        """x0, x1 uniform, x2 = x - x0 - x1; P0 (x0,x1), P1 (x1,x2), P2 (x2,x0)."""
        if nparties != 3:
            raise ValueError("aby3 runs with exactly 3 parties")
        x = np.asarray(x)
        if x.dtype != ring.dtype:
            x = ring.cast(x)
        x0, x1 = _rand(prg, x.shape, ring.dtype), _rand(prg, x.shape, ring.dtype)
        x2 = np.subtract(x, x0)
        x2 -= x1
        return [Share((x0, x1)), Share((x1, x2)), Share((x2, x0))]

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
        xa, xb = x.parts
        ya, yb = y.parts
        shape = np.broadcast_shapes(xa.shape, xb.shape, ya.shape, yb.shape)
        dt = self.ring.dtype
        (t,) = self._tmp(shape, dt)
        z = np.empty(shape, dt)
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
        self._add_zero_share(z, t, boolean)
        return self._reshare(z, boolean)

    def mul(self, x, y):
        """Elementwise x * y: local 3-of-3 products (above) + alpha_i, then reshare.
        Cost: 1 round, 1 element per party; 2 keystream draws."""
        return self._product(x, y, np.add, np.multiply, False)

    def dot(self, x, y, dims):
        """dot_general (dims = lhs/rhs contract, lhs/rhs batch) with the same 3-of-3
        split as mul, matrix products through ring_matmul_sum (exact; the two products
        of P1 and P2 are fused into one call), + alpha_i, then reshare.
        Cost: 1 round, 1 element per OUTPUT element; 1 (P0) or 2 (P1, P2) ring matmuls."""
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
        self._add_zero_share(z, t, False)
        return self._reshare(z, False)

    # ---- P0-centred one-round conversions (trunc, b2a_bit) --------------------------------
    # P0 alone knows a value h (a bit) and G; P1 and P2 both know v (a bit). The output
    # RSS is z_0 <- A (P0, P2), z_1 <- B (P0, P1) and z_2 = G - v (h << sh) (+ a term
    # P1 and P2 add themselves), where G contains -z_0 - z_1. P1 and P2 get z_2 by an
    # "OT with a helper" in ONE round: P0 sends (g, e) = (G + w_g, h + w_e) to P1 with
    # w_g, w_e <- A, and P2, who knows w_g, w_e and v, sends q = w_g - v (w_e << sh) to
    # P1, who computes z_2 = g - v (e << sh) - q. Symmetrically P0 sends (G + w'_g,
    # h + w'_e) to P2 with masks <- B, and P1 sends q' to P2.
    # Security: P0 receives nothing. P1 sees g, e, q: e is masked by w_e, q by w_g, and
    # together they determine only z_2 = y - z_0 - z_1 (- known), uniform to P1 since z_0
    # comes from a key it lacks. The same for P2 with z_1. Keystream draw order on A and
    # B is z, w_g, w_e at both holders. e needs only as many bits as survive the shift
    # (k - sh): trunc sends it as a small word.

    def _p0_send(self, G: np.ndarray, h: np.ndarray, t: np.ndarray) -> None:
        """P0's half of the helper-OT (G fresh, overwritten; h: P0's bits, any dtype;
        t ring scratch)."""
        g2 = G.copy()
        G += _keystream(self.prg_a, t)                # A: w_g
        e1 = _rand(self.prg_a, G.shape, h.dtype)      # A: w_e
        e1 += h
        g2 += _keystream(self.prg_b, t)               # B: w'_g
        e2 = _rand(self.prg_b, G.shape, h.dtype)      # B: w'_e
        e2 += h
        self.comm.exchange({1: (G, e1), 2: (g2, e2)}, [])

    def _p12_recv(self, v: np.ndarray, sh: int, t: np.ndarray, we: np.ndarray) -> np.ndarray:
        """P1/P2's half (helper for the other, then receiver): returns z_2 = G - v (h << sh).
        v: 0/1 ring array, t: ring scratch, we: scratch of e's dtype (distinct from v)."""
        prg = self.prg_b if self.rank == 1 else self.prg_a
        dsh = self.ring.dtype(sh)
        q = _rand(prg, v.shape, self.ring.dtype)      # w_g
        _keystream(prg, we)                           # w_e
        np.left_shift(we, dsh, out=t, casting="unsafe")
        t *= v
        q -= t                                        # q = w_g - v (w_e << sh)
        other = 3 - self.rank
        got = self.comm.exchange({other: q}, [0, other])
        g, e = got[0]
        np.left_shift(e, dsh, out=t, casting="unsafe")
        t *= v
        z2 = np.subtract(g, t)
        z2 -= got[other]
        return z2

    def _p0_pair(self, shape):
        """Output components drawn first: P0 (z_0 <- A, z_1 <- B), P1 z_1, P2 z_0."""
        dt = self.ring.dtype
        if self.rank == 0:
            return _rand(self.prg_a, shape, dt), _rand(self.prg_b, shape, dt)
        return _rand(self.prg_b if self.rank == 1 else self.prg_a, shape, dt)

    def trunc(self, x, bits):
        """Arithmetic shift right by f = bits of a signed x with |x| < 2^(k-2).
        Result in {floor(x / 2^f), floor(x / 2^f) + 1}, deterministically: never more
        than 1 ulp off (no probabilistic wrap errors). Stochastic rounding: over the
        sharing, E[y] = x / 2^f + 2^-f (in ulps), i.e. unbiased up to 2^-f ulp.

        Algebra. x' = x + 2^(k-2) lies in [0, 2^(k-1)). 2-of-2 view: a = x_0 + x_1 +
        2^(k-2) (only P0 knows it), b = x_2 (P1 and P2 both know it). With u = msb(a),
        v = msb(b), the integer sum a + b = x' + w 2^k has w = u OR v, since msb(x') = 0
        (both 0: a + b < 2^k; both 1: a + b >= 2^k; exactly one: a + b >= 2^(k-1), and
        a + b < 2^k would make msb(x') = 1). Hence, with carry = [a mod 2^f + b mod 2^f
        >= 2^f] in {0, 1},
            (a >> f) + (b >> f) - (u + v - u v) 2^(k-f) = (x' >> f) - carry,
            y = [(a >> f) - u 2^(k-f) - C] + (b >> f) - v (1 - u) 2^(k-f),
        C = 2^(k-2-f) - 1 removes the offset and adds 1 (so y = floor + 1 - carry).
        Output: z_2 = G - v (h << (k-f)) + (b >> f) with G = [..] - z_0 - z_1, h = 1 - u,
        by the helper-OT above (e as an f-bit word: only h mod 2^f survives the shift).
        Nothing is opened; nobody learns u, a or x.
        Cost: 1 round. P0 sends 2 ring elements + 2 words of 8/16/32 bits >= f (24 bytes
        per element at k=64, f=18); P1 and P2 send 1 ring element each.
        Range: |x| < 2^(k-2) (x = -2^(k-2) included); 1 <= f <= k-2."""
        k, f, dt = self.ring.bits, int(bits), self.ring.dtype
        if not 1 <= f <= k - 2:
            raise ValueError(f"aby3 trunc: shift {f} outside [1, {k - 2}]")
        edt = _small_dtype(f, dt)
        xa, xb = x.parts
        shape = np.broadcast_shapes(xa.shape, xb.shape)
        if self.rank == 0:
            z0, z1 = self._p0_pair(shape)
            a, t, h = self._tmp(shape, dt, 2, extra=edt)
            np.add(xa, xb, out=a)
            a += dt(1 << (k - 2))                     # a = x_0 + x_1 + 2^(k-2)
            np.right_shift(a, dt(k - 1), out=t)       # u = msb(a)
            np.subtract(edt(1), t, out=h, casting="unsafe")   # h = 1 - u
            np.left_shift(t, dt(k - f), out=t)
            G = np.right_shift(a, dt(f))
            G -= t
            G -= dt((1 << (k - 2 - f)) - 1)
            G -= z0
            G -= z1
            self._p0_send(G, h, t)
            return Share((z0, z1))
        b = xb if self.rank == 1 else xa              # x_2: P1's parts[1], P2's parts[0]
        zmine = self._p0_pair(shape)
        v, t, we = self._tmp(shape, dt, 2, extra=edt)
        np.right_shift(b, dt(k - 1), out=v)           # v = msb(b)
        z2 = self._p12_recv(v, k - f, t, we)
        z2 += np.right_shift(b, dt(f), out=t)
        return Share((zmine, z2)) if self.rank == 1 else Share((z2, zmine))

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

    def b2a_bit(self, x):
        """Arithmetic share of b = b_0 ^ b_1 ^ b_2 (bit 0 of the boolean share x).
        P0 knows c = b_0 ^ b_1, P1 and P2 know v = b_2, b = c + v - 2 c v: the helper-OT
        above with G = c - z_0 - z_1, h = c, shift 1, and P1, P2 adding v to z_2.
        Cost: 1 round; P0 sends 4 ring elements, P1 and P2 1 each. (Textbook
        alternative: a ^ c = a + c - 2ac twice: 2 rounds, 2 elements each.)"""
        dt = self.ring.dtype
        one = dt(1)
        xa, xb = x.parts
        shape = np.broadcast_shapes(xa.shape, xb.shape)
        if self.rank == 0:
            z0, z1 = self._p0_pair(shape)
            c, t = self._tmp(shape, dt, 2)
            np.bitwise_xor(xa, xb, out=c)
            c &= one                                  # c = b_0 ^ b_1
            G = np.subtract(c, z0)
            G -= z1
            self._p0_send(G, c, t)
            return Share((z0, z1))
        zmine = self._p0_pair(shape)
        v, t, we = self._tmp(shape, dt, 3)
        np.bitwise_and(xb if self.rank == 1 else xa, one, out=v)   # v = b_2
        z2 = self._p12_recv(v, 1, t, we)
        z2 += v
        return Share((zmine, z2)) if self.rank == 1 else Share((z2, zmine))
