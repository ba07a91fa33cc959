"""ABY3's P0-centred one-round conversions: truncation, bit-to-arithmetic, and the
fused multiply-truncate, plus the keystream helpers they share with runtime/protocols/aby3.py.

A mixin of Aby3: it uses the party's keys (prg_own, prg_next, prg_a, prg_b), comm and
scratch buffers set up there. See aby3.py for the layout of the replicated shares.
"""
from __future__ import annotations

import numpy as np

from ..prg import Prg
from .base import Share

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


class P0Centred:
    """trunc, b2a_bit and mul_trunc for Aby3 (one helper-OT round each)."""

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
        g2 = np.add(G, _keystream(self.prg_a, t))     # A: w_g (g2 is P1's message)
        e1 = _rand(self.prg_a, G.shape, h.dtype)      # A: w_e
        e1 += h
        G += _keystream(self.prg_b, t)                # B: w'_g
        e2 = _rand(self.prg_b, G.shape, h.dtype)      # B: w'_e
        e2 += h
        self.comm.exchange({1: (g2, e1), 2: (G, e2)}, [])

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
        k, f = self.ring.bits, int(bits)
        if not 1 <= f <= k - 2:
            raise ValueError(f"aby3 trunc: shift {f} outside [1, {k - 2}]")
        xa, xb = x.parts
        if self.rank == 0:
            return self._trunc_view(np.add(xa, xb), f)        # a = x_0 + x_1
        return self._trunc_view(xb if self.rank == 1 else xa, f)   # b = x_2

    def _trunc_view(self, v: np.ndarray, f: int) -> Share:
        """trunc on the 2-of-2 view: v is a (P0, a fresh array, consumed) or b (P1, P2,
        read only) with a + b = x mod 2^k."""
        k, dt = self.ring.bits, self.ring.dtype
        edt = _small_dtype(f, dt)
        shape = v.shape
        if self.rank == 0:
            z0, z1 = self._p0_pair(shape)
            a = v
            t, h = self._tmp(shape, dt, 1, extra=edt)
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
        b = v
        zmine = self._p0_pair(shape)
        vb, t, we = self._tmp(shape, dt, 2, extra=edt)
        np.right_shift(b, dt(k - 1), out=vb)          # v = msb(b)
        z2 = self._p12_recv(vb, k - f, t, we)
        z2 += np.right_shift(b, dt(f), out=t)
        return Share((zmine, z2)) if self.rank == 1 else Share((z2, zmine))

    def mul_trunc(self, x, y, bits):
        """trunc(x * y, bits) without the reshare in between: the 3-of-3 terms z_i of
        the product (Aby3._local_product) become the 2-of-2 view of trunc directly.
        P1 sends z_1 + F(k_1) to P2, P2 sends z_2 + F(k_0) to P1 (each masked by a key
        the receiver lacks), so both hold b = z_1 + z_2 + F(k_0) + F(k_1), and P0 holds
        a = z_0 - F(k_0) - F(k_1) alone; a + b = x y. Then trunc's one round.
        Cost: 2 rounds (as mul + trunc); P0 sends only trunc's message, P1 and P2 one
        element each before it; one reshare (and P0's add) less than mul, then trunc.
        Range and error as trunc."""
        z, t = self._local_product(x, y, np.add, np.multiply)
        return self._trunc_3of3(z, t, bits)

    def dot_trunc(self, x, y, dims, bits, reuse_rhs=False):
        """trunc(dot(x, y), bits), fused like mul_trunc (the 3-of-3 terms of the ring
        matmul feed trunc's view). Cost: 2 rounds; per OUTPUT element as mul_trunc.
        reuse_rhs is ignored: aby3 sends no per-operand masks to reuse."""
        z, t = self._local_dot(x, y, dims)
        return self._trunc_3of3(z, t, bits)

    def _trunc_3of3(self, z: np.ndarray, t: np.ndarray, bits) -> Share:
        """trunc of z_0 + z_1 + z_2 (z: this party's fresh term, t: scratch of its shape)."""
        k, f = self.ring.bits, int(bits)
        if not 1 <= f <= k - 2:
            raise ValueError(f"aby3 trunc: shift {f} outside [1, {k - 2}]")
        if self.rank == 0:
            z -= _keystream(self.prg_own, t)          # F(k_0)
            z -= _keystream(self.prg_next, t)         # F(k_1)
            return self._trunc_view(z, f)
        if self.rank == 1:
            z += _keystream(self.prg_own, t)          # + F(k_1), to P2
        else:
            z += _keystream(self.prg_next, t)         # + F(k_0), to P1
        other = 3 - self.rank
        got = self.comm.exchange({other: z}, [other])[other]
        return self._trunc_view(np.add(z, got), f)

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
