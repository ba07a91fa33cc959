"""Cross terms of two-party matrix triples by lattice HE (BFV), as Cheetah makes them
(Huang, Lu, Hong, Chen, Hu, Wang, USENIX Security 2022), over Z_2^64.

Triple: A = A0 + A1, B = B0 + B1, C = A0 B0 + A1 B1 + A0.B1 + A1.B0. Each party is the
encryptor of its own B_j and the evaluator for its own A_i against the peer's B_j: both
cross terms run at once (one message each way per step), party i ending with a share of
A_i.B_j (evaluator) and of A_j.B_i (decryptor).

Z_2^64 from t = 2^59 (s = 5): B_j = 2^5 Bh + Bl, A_i = 2^5 Ah + Al (Bl, Al < 2^5):
    A_i.B_j = 2^5 (A_i.Bh + Ah.Bl) + Al.Bl  (mod 2^64)
and 2^5 Y mod 2^64 depends only on Y mod 2^59, so
    Y = (A_i mod 2^59).Bh + Ah.Bl   computed mod t = 2^59,
    Z = Al.Bl                        an integer < K_CHUNK (2^5 - 1)^2 <= 2^19.
Protocol (all blocks in coefficient encoding, encoding.py):
 1. the encryptor sends Enc(Bh), Enc(Bl) per (k, n) block (symmetric key, 3 limbs);
 2. the evaluator forms, per (m, n) block and K chunk, Y and Z by plaintext products in
    NTT form summed over the k blocks, subtracts a mask r uniform mod 2^59 from Y and adds
    an integer mask r' uniform in [0, 2^59 - 2^19) to Z (so Z + r' < t never wraps: the
    shift of r' is at most 2^19 / 2^59 = 2^-40 from uniform), and sends both back;
 3. the decryptor gets y = Y - r mod t and z = Z + r': shares 2^5 y + z (decryptor) and
    2^5 r - r' (evaluator), mod 2^64.
Circuit privacy (the decryptor holds the secret key): the evaluator adds a fresh
encryption of zero under the decryptor's public key (so c1 is a fresh RLWE sample, not a
function of A_i), switches down to the two lower primes (fewer bytes), and floods: adds
to c0, at every position it sends, a value uniform in [-2^f, 2^f) from its PRG, with
2^f >= 2^40 times a bound on the noise (encoding.noise_bits, scaled by the switch, plus
the switch's rounding N/2 + 1). Only c0's used positions travel (the decryptor puts
zeros elsewhere: decryption is coefficient-wise), and c1 in full.

Cost per K chunk of at most K_CHUNK, per party (Mb = ceil(M/m_w), ...): sends
2 Kb Nb x 393 KB and 2 Mb Nb x (2 limbs x (N + m_w n_w) x 8 bytes), 2 messages,
3 Mb Kb Nb plaintext products; setup once per link: keys (~1.7 s) and the public key
(525 KB) each way.
"""
from __future__ import annotations

import math

import numpy as np

from ..link import PeerError
from .context import PLAIN_BITS, HeContext
from .slots import slot_products
from .encoding import (K_CHUNK, ROW_WORDS, a_zero_bits, block_shape, decode_c, encode_a,
                       encode_b, noise_bits, used_positions)

S_BITS = 64 - PLAIN_BITS                     # 5
STAT_BITS = 40
_LOW = np.uint64((1 << S_BITS) - 1)
_T_MASK = np.uint64((1 << PLAIN_BITS) - 1)
E2_MAX = 21
MESSAGE_BYTES = 64 << 20                     # HE ciphertexts per message, at most about
_Z_BOUND = K_CHUNK * ((1 << S_BITS) - 1) ** 2


class HeMatmul:
    """This party's end of the HE matrix-triple cross terms (see the module docstring).

    link: .send(obj) / .recv() to the peer (OtLink: the bytes count as offline traffic);
    rand(shape, dtype): the party's PRG."""

    def __init__(self, link, rand):
        self.link, self.rand = link, rand
        self.he = None

    def setup(self) -> None:
        """Keys and the peer's public key: once per link, on the first HE triple."""
        if self.he is not None:
            return
        self.he = HeContext()
        self.link.send(np.frombuffer(self.he.public_key_bytes, np.uint8).copy())
        self.he.set_peer_public_key(self.link.recv())

    def cross(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """A (M, K), B (K, N) uint64, this party's; the peer holds the same shapes.
        Returns this party's share (M, N) uint64 of A_me.B_peer + A_peer.B_me."""
        self.setup()
        M, K = A.shape
        N = B.shape[1]
        shape = block_shape(M, K, N)
        out = np.zeros((M, N), np.uint64)
        chunks = -(-K // K_CHUNK)
        step = -(-K // chunks)
        for lo in range(0, K, step):
            hi = min(K, lo + step)
            cts = self._encrypt(B[lo:hi], shape)
            self._send_parts((cts,))
            resp, mine = self._evaluate(A[:, lo:hi], self._recv_parts(cts.shape)[0], shape,
                                        hi - lo, N)
            self._send_parts(resp)
            out += mine
            out += self._decrypt(self._recv_parts(*(r.shape for r in resp)), shape, M, N)
        return out

    def _send_parts(self, arrays) -> None:
        """Arrays with the same two leading (block) axes, in messages of at most about
        MESSAGE_BYTES (a node drops messages over its max_message_mb, 1 GB by default)."""
        for part in zip(*(np.array_split(a.reshape((-1,) + a.shape[2:]), _parts(arrays))
                          for a in arrays)):
            self.link.send(part)

    def _recv_parts(self, *shapes):
        """What _send_parts sent, for the arrays' expected shapes (the peer's are the
        same: SPMD); anything else from the peer is an error."""
        parts = _parts(None, shapes)
        got = [self.link.recv() for _ in range(parts)]
        if not all(isinstance(g, tuple) and len(g) == len(shapes) and all(
                isinstance(x, np.ndarray) and x.dtype == np.uint64 for x in g) for g in got):
            raise PeerError("HE: malformed message from the peer")
        out = []
        for i, shape in enumerate(shapes):
            pieces = [g[i] for g in got]
            if any(x.shape[1:] != tuple(shape[2:]) for x in pieces) \
                    or sum(len(x) for x in pieces) != shape[0] * shape[1]:
                raise PeerError("HE: malformed message from the peer")
            out.append(_Blocks(pieces, shape))
        return tuple(out)

    # ---- encryptor ------------------------------------------------------------------------
    def _encrypt(self, B, shape):
        """(Kb, Nb, 2, 2, 3, N) residues of Enc(Bh), Enc(Bl) per block."""
        he = self.he
        _, k_w, n_w = shape
        polys = (encode_b(B >> np.uint64(S_BITS), k_w, n_w), encode_b(B & _LOW, k_w, n_w))
        Kb, Nb = polys[0].shape[:2]
        out = np.empty((Kb, Nb, 2, 2, len(he.top_primes), he.N), np.uint64)
        for kb in range(Kb):
            for nb in range(Nb):
                for h in range(2):
                    out[kb, nb, h] = he.limbs(he.encryptor.encrypt_symmetric(
                        he.plain(polys[h][kb, nb])))
        return out

    # ---- evaluator ------------------------------------------------------------------------
    def _evaluate(self, A, cts, shape, K, N):
        """Responses (c0 at used positions, c1) for Y and Z, and this party's share."""
        he = self.he
        m_w, k_w, n_w = shape
        M = A.shape[0]
        Kb, Nb, Mb = -(-K // k_w), -(-N // n_w), -(-M // m_w)
        L, NP = len(he.top_primes), he.N
        if not isinstance(cts, _Blocks) or cts.shape != (Kb, Nb, 2, 2, L, NP):
            raise PeerError("HE: malformed ciphertexts from the peer")
        Bs = np.empty((2, Kb, Nb, 2, L, NP), np.uint64)          # NTT form
        for h in range(2):
            for kb in range(Kb):
                for nb in range(Nb):
                    Bs[h, kb, nb] = cts[kb, nb, h]
        del cts
        if not (Bs < he.top_primes[:, None]).all():
            raise PeerError("HE: malformed ciphertexts from the peer")
        he.ntt.forward(Bs)
        pos = used_positions(m_w, k_w, n_w).reshape(-1)
        P, Lo = pos.size, len(he.low_primes)
        r = self.rand((Mb, Nb, P), np.uint64) & _T_MASK
        r2 = self._integer_masks((Mb, Nb, P))
        flood_bits = self._flood_bits(shape, K)
        c0 = np.empty((Mb, Nb, 2, Lo, P), np.uint64)
        c1 = np.empty((Mb, Nb, 2, Lo, NP), np.uint64)
        planes = (A & _T_MASK, A >> np.uint64(S_BITS), A & _LOW)   # A mod t, Ah, Al
        cols = 3 * Kb + 2 * Nb                                    # A | Ah | Al | u_Y | u_Z
        rows = max(1, min(Mb, ROW_WORDS // (cols * L * NP)))
        As = np.empty((rows, cols, L, NP), np.uint64)              # NTT form
        prods = np.empty((rows, 2, Nb, 2, L, NP), np.uint64)
        zmask = a_zero_bits(m_w, k_w, n_w)
        for m0 in range(0, Mb, rows):
            mc = min(Mb, m0 + rows) - m0
            enc = np.concatenate([encode_a(x[m0 * m_w:(m0 + mc) * m_w], m_w, k_w, n_w)
                                  for x in planes], axis=1)               # (mc, 3 Kb, N)
            he.ntt.forward_plain(enc, As[:mc, :3 * Kb], he.t, zmask)
            he.ntt.forward_plain(self._ternary((mc, 2 * Nb, NP)), As[:mc, 3 * Kb:], he.t)
            slot_products(As[:mc], Bs, he.peer_pk_ntt, he.top_primes,
                          prods[:mc].transpose(1, 0, 2, 3, 4, 5))
            he.ntt.inverse(prods[:mc])
            self._finish(prods[:mc], r[m0:m0 + mc], r2[m0:m0 + mc], pos, flood_bits,
                         c0[m0:m0 + mc], c1[m0:m0 + mc])
        mine = (r << np.uint64(S_BITS)) - r2
        return (c0, c1), decode_c(mine.reshape(Mb, Nb, m_w, n_w), M, N)

    def _ternary(self, shape):
        """Uniform {-1, 0, 1} polynomials as plaintext coefficients mod t (-1 = t - 1,
        which SEAL lifts to -1): the u of the re-randomisation, from the party's PRG."""
        v = self.rand(shape, np.uint64) % np.uint64(3)            # bias 2^-64 per draw
        return np.where(v == 2, np.uint64(self.he.t - 1), v.astype(np.uint64))

    def _finish(self, prods, r, r2, pos, f, c0, c1):
        """prods (mc, 2, Nb, 2, L, N): the Y and Z product ciphertexts, coefficient form.
        c1 plus a fresh error e2 (centred binomial, 21 + 21 bits: sigma 3.2, |e2| <= 21),
        so that the c1 of u pk + e2 is an RLWE sample in u at q (then c1, a function of
        it and of the product, is pseudorandom to the key holder); both switched down
        (c0 only at the used positions); Y - r and Z + r' (rns.add_scaled, as SEAL's
        sub_plain / add_plain); c0 flooded. Writes c0 (mc, Nb, 2, L', P) and
        c1 (mc, Nb, 2, L', N)."""
        he = self.he
        mc, _, Nb = prods.shape[:3]
        he.rns.mod_switch_e2(prods[:, :, :, 1], self.rand((mc, 2, Nb, he.N), np.uint64),
                             c1.transpose(0, 2, 1, 3, 4))
        low = he.rns.mod_switch(prods[:, :, :, 0][..., pos])          # (mc, 2, Nb, L', P)
        for i, mask in enumerate((r, r2)):
            part = np.ascontiguousarray(low[:, i])
            he.rns.add_scaled(part, mask, negate=i == 0)
            c0[:, :, i] = self._flood(part, f)

    def _flood_bits(self, shape, K) -> int:
        """f with 2^f >= 2^40 x the noise bound after the switch; checked against q'/2t."""
        he = self.he
        last = float(he.top_primes[-1])
        # product noise, u pk's (u e_pk, at most N 19.2) and e2 s (at most 21 N) scaled by
        # the switch, the switch's rounding (1 + ||s||_1) / 2, the mask's 1
        bound = (2.0 ** noise_bits(shape, K) + he.N * (19.2 + E2_MAX)) / last \
            + (he.N / 2 + 1) + 1
        f = math.ceil(math.log2(bound)) + STAT_BITS
        room = sum(math.log2(float(p)) for p in he.low_primes) - PLAIN_BITS - 1
        if math.log2(2.0 ** f + bound) >= room:
            raise ValueError(f"HE: a {shape} block product of K = {K} leaves no room for "
                             "flooding (choose a smaller block)")
        return f

    def _flood(self, c0, f):
        """c0 (..., L', P) + a value uniform in [-2^f, 2^f) per position, mod each prime."""
        primes = self.he.low_primes[:, None]
        v = (self.rand(c0.shape[:-2] + c0.shape[-1:], np.uint64) >> np.uint64(63 - f)) \
            .astype(np.int64)[..., None, :] - np.int64(1 << f)
        add = np.where(v < 0, primes - (-v).astype(np.uint64), v.astype(np.uint64))
        s = c0 + add
        return np.where(s >= primes, s - primes, s)

    def _integer_masks(self, shape):
        """Uniform integers in [0, 2^59 - _Z_BOUND): 59 random bits, redrawn when too big."""
        top = np.uint64((1 << PLAIN_BITS) - _Z_BOUND)
        r = self.rand(shape, np.uint64) & _T_MASK
        bad = r >= top
        while bad.any():
            r[bad] = self.rand((int(bad.sum()),), np.uint64) & _T_MASK
            bad = r >= top
        return r

    # ---- decryptor ------------------------------------------------------------------------
    def _decrypt(self, resp, shape, M, N):
        he = self.he
        m_w, k_w, n_w = shape
        Mb, Nb = -(-M // m_w), -(-N // n_w)
        pos = used_positions(m_w, k_w, n_w).reshape(-1)
        Lo = len(he.low_primes)
        if not isinstance(resp, tuple) or len(resp) != 2 \
                or not all(isinstance(x, _Blocks) for x in resp) \
                or resp[0].shape != (Mb, Nb, 2, Lo, pos.size) \
                or resp[1].shape != (Mb, Nb, 2, Lo, he.N):
            raise PeerError("HE: malformed response from the peer")
        c0, c1 = resp
        vals = np.empty((Mb, Nb, 2, pos.size), np.uint64)
        limbs = np.zeros((2, Lo, he.N), np.uint64)
        for mb in range(Mb):
            for nb in range(Nb):
                for i in range(2):
                    limbs[0][:, pos] = c0[mb, nb, i]
                    limbs[1] = c1[mb, nb, i]
                    pt = he.decryptor.decrypt(he.cipher(limbs))
                    vals[mb, nb, i] = he.plain_coeffs(pt)[pos]
        share = (vals[:, :, 0] << np.uint64(S_BITS)) + vals[:, :, 1]
        return decode_c(share.reshape(Mb, Nb, m_w, n_w), M, N)


class _Blocks:
    """An array received in parts (its two leading axes flattened, then split), read
    block by block without joining the parts (a copy of up to 200 MB): x[a, b, ...] is
    row a * shape[1] + b of the flattened array."""

    def __init__(self, parts, shape):
        self.parts, self.shape = parts, tuple(shape)
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __getitem__(self, idx):
        f = idx[0] * self.shape[1] + idx[1]
        j = int(np.searchsorted(self.starts, f, side="right")) - 1
        return self.parts[j][(int(f - self.starts[j]),) + tuple(idx[2:])]


def _parts(arrays, shapes=None) -> int:
    """Messages for arrays (or their shapes) with two leading block axes."""
    shapes = shapes if shapes is not None else [a.shape for a in arrays]
    total = sum(8 * int(np.prod(sh)) for sh in shapes)
    lead = shapes[0][0] * shapes[0][1]
    return max(1, min(lead, -(-total // MESSAGE_BYTES)))
