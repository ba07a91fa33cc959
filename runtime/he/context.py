"""BFV parameters and raw coefficient access for the HE matrix triples (matmul.py).

Parameters (Microsoft SEAL 4.x through the seal-python wheel):
    N = 8192, coefficient modulus q = three 60-bit primes (the data level) and a 38-bit
    special prime: 218 bits in all, the largest SEAL's 128-bit table (the HE security
    standard) allows at N = 8192; the context is built with that security check on.
    Plaintext modulus t = 2^59, the largest power of two SEAL accepts; with a power of two
    there is no batching, only the coefficient encoding Cheetah's matmul uses anyway.
Why these: a product ciphertext carries noise up to ~2^77 (matmul.py, noise_bound) at
q ~ 2^180; switched down to the two lower primes (q' ~ 2^120) it is ~2^17, and the
flooding on top of it (40 bits more) must stay under q' / 2t ~ 2^60 for decryption to be
exact. N = 4096 allows only 109 bits; N = 16384 would double every ciphertext.

Raw access: seal-python has no numpy setter or getter, so the byte layout of a serialized
plaintext and ciphertext (compression none) is learnt when the context is made: the
coefficients are the last 8 * count bytes, uint64, limb-major ((size, limbs, N) for a
ciphertext), after a header that depends only on the level. Every layout is checked once
by a round trip (known values in, the same values and the right decryption out); a SEAL
build with another layout raises HeLayoutError instead of computing garbage.

Randomness: keys and encryption noise come from SEAL's own CSPRNG (seeded from the OS);
masks and flooding are the caller's (the party's PRG).
"""
from __future__ import annotations

import numpy as np
import seal

from ..link import PeerError
from .ntt import NttTables
from .rns import RnsTools
from .slots import check_primes, modmatmul

POLY_DEGREE = 8192
DATA_PRIME_BITS = (60, 60, 60)
SPECIAL_PRIME_BITS = 38
PLAIN_BITS = 59
NOISE_MAX_DEVIATION = 19.2        # SEAL's clipped normal noise: 6 sigma, sigma = 3.2
_NONE = seal.compr_mode_type.none


class HeLayoutError(RuntimeError):
    """The SEAL build serializes differently from what this module reads and writes."""


class HeContext:
    """One party's BFV context: parameters, its own key pair, evaluator, byte layouts."""

    def __init__(self):
        N = self.N = POLY_DEGREE
        parms = seal.EncryptionParameters(seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(N)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(
            N, list(DATA_PRIME_BITS) + [SPECIAL_PRIME_BITS]))
        parms.set_plain_modulus(1 << PLAIN_BITS)
        self.ctx = seal.SEALContext(parms, True, seal.sec_level_type.tc128)
        if not self.ctx.parameters_set():
            raise HeLayoutError("SEAL rejected the BFV parameters: "
                                + self.ctx.parameter_error_message())
        self.t = 1 << PLAIN_BITS
        top = self.ctx.first_context_data()
        low = top.next_context_data()
        self.top_id, self.low_id = top.parms_id(), low.parms_id()
        self.top_primes = np.array([m.value() for m in top.parms().coeff_modulus()], np.uint64)
        self.low_primes = np.array([m.value() for m in low.parms().coeff_modulus()], np.uint64)
        self.ev = seal.Evaluator(self.ctx)
        keygen = seal.KeyGenerator(self.ctx)
        self._sk = keygen.secret_key()
        self.public_key_bytes = keygen.create_public_key().to_string()
        self.encryptor = seal.Encryptor(self.ctx, self._sk)
        self.decryptor = seal.Decryptor(self.ctx, self._sk)
        self.peer_encryptor = None
        self._learn_layouts()

    # ---- keys ---------------------------------------------------------------------------
    def set_peer_public_key(self, raw) -> None:
        """The peer's public key (uint8 array), for re-randomising the responses."""
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1 \
                or raw.size > 1 << 22:
            raise PeerError("HE: malformed public key from the peer")
        try:
            pk = self.ctx.from_public_str(raw.tobytes())
        except Exception:                                 # noqa: BLE001 - SEAL's own checks
            raise PeerError("HE: the peer's public key does not load") from None
        self.peer_encryptor = seal.Encryptor(self.ctx, pk)
        self.peer_pk_ntt = self._pk_limbs(pk)

    def _pk_limbs(self, pk) -> np.ndarray:
        """(2, L, N) NTT-form residues of a public key at the top data level: the key
        level's limbs without the special prime (pk0 + pk1 s = -e mod every prime)."""
        L, N = self.top_primes.size, self.N
        raw = pk.to_string()
        size = 8 * 2 * (L + 1) * N
        if len(raw) <= size:
            raise PeerError("HE: malformed public key from the peer")
        limbs = np.frombuffer(raw, np.uint64, count=2 * (L + 1) * N, offset=len(raw) - size)
        return limbs.reshape(2, L + 1, N)[:, :L].copy()

    # ---- layouts --------------------------------------------------------------------------
    def _learn_layouts(self) -> None:
        N = self.N
        self._pt_prefix = seal.Plaintext(N).to_bytes(_NONE)[:-8 * N]
        probe = np.arange(N, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15 % self.t) \
            % np.uint64(self.t)
        pt = self.plain(probe)
        if pt.coeff_count() != N or not np.array_equal(self.plain_coeffs(pt), probe):
            raise HeLayoutError("SEAL plaintext layout is not the one expected")
        ct = self.encryptor.encrypt_symmetric(pt)
        self._ct_prefix = {}
        for level_id, primes in ((self.top_id, self.top_primes), (self.low_id, self.low_primes)):
            if level_id == self.low_id:
                self.ev.mod_switch_to_next_inplace(ct)
            raw = ct.to_string(_NONE)
            size = 8 * 2 * primes.size * N
            if ct.size() != 2 or ct.coeff_modulus_size() != primes.size or len(raw) <= size:
                raise HeLayoutError("SEAL ciphertext layout is not the one expected")
            self._ct_prefix[primes.size] = raw[:-size]
            limbs = self.limbs(ct)
            if (limbs >= primes[None, :, None]).any():
                raise HeLayoutError("SEAL ciphertext limbs are not reduced coefficients")
            back = self.cipher(limbs.copy())
            if back.to_string(_NONE) != raw or \
                    not np.array_equal(self.plain_coeffs(self.decryptor.decrypt(back)), probe):
                raise HeLayoutError("SEAL ciphertext round trip failed")
            neg = np.where(limbs == 0, limbs, primes[None, :, None] - limbs)   # -ct
            minus = self.plain_coeffs(self.decryptor.decrypt(self.cipher(neg)))
            if not np.array_equal(minus, (np.uint64(self.t) - probe) % np.uint64(self.t)):
                raise HeLayoutError("SEAL ciphertext limbs are not where expected")
            if level_id == self.top_id:
                self._learn_ntt(ct, pt)
        self._learn_own_ntt()

    def _learn_ntt(self, ct, pt) -> None:
        """NTT-form layouts: a plaintext's L x N residues, a ciphertext's prefix; checked
        by SEAL's own multiply_plain against modmatmul slot by slot."""
        check_primes(self.top_primes)
        ctn = self.ev.transform_to_ntt(ct)
        self._ntt_prefix = ctn.to_string(_NONE)[:-8 * 2 * self.top_primes.size * self.N]
        ptn = self.ev.transform_to_ntt(pt, self.top_id)
        want = self.limbs(self.ev.multiply_plain(ctn, ptn))
        x, y = self.ntt_plain_limbs(ptn), self.limbs(ctn)
        for l, p in enumerate(self.top_primes):
            got = modmatmul(x[l][:, None, None], y[:, l].T[:, None, :], int(p))[:, 0, :]
            if not np.array_equal(got.T, want[:, l]):
                raise HeLayoutError("SEAL NTT-form layout is not the one expected")
        if not np.array_equal(self.limbs(self.cipher_ntt(y.copy())), y):
            raise HeLayoutError("SEAL NTT-form ciphertext round trip failed")
        own = self._pk_limbs(self.ctx.from_public_str(self.public_key_bytes))
        zero = self.ev.transform_from_ntt(self.cipher_ntt(own))     # pk: an encryption of 0
        if self.plain_coeffs(self.decryptor.decrypt(zero)).any() or (own[1] == 0).all():
            raise HeLayoutError("SEAL public key layout is not the one expected")

    def _learn_own_ntt(self) -> None:
        """ntt.py's transform at the top level (psi from SEAL's NTT of X; a dense
        polynomial and a sparse one, an A block's pattern, checked against SEAL's) and
        rns.py's switch and plaintext scaling (checked against SEAL's on a ciphertext)."""
        N, t = self.N, self.t
        x = np.zeros(N, np.uint64)
        x[1] = 1
        self.ntt = NttTables(self.top_primes, self.ntt_plain_limbs(
            self.ev.transform_to_ntt(self.plain(x), self.top_id))[:, 0], N)
        rng = np.random.default_rng(0)                   # test data, not secrets
        dense = rng.integers(0, t, N, dtype=np.uint64)
        sparse = np.zeros(N, np.uint64)
        sparse[np.arange(N) % 1024 < 16] = dense[:N // 64]
        for coeffs, zmask in ((dense, 0), (sparse, 0x3f0)):
            want = self.ntt_plain_limbs(self.ev.transform_to_ntt(self.plain(coeffs),
                                                                 self.top_id))
            got = self.ntt.forward(self.lift(coeffs), zmask)
            back = self.ntt.inverse(got.copy())
            if not np.array_equal(got, want) or not np.array_equal(back, self.lift(coeffs)):
                raise HeLayoutError("SEAL's NTT is not the one ntt.py computes")
        self.rns = RnsTools(self.top_primes, t)
        if not np.array_equal(self.rns.low, self.low_primes):
            raise HeLayoutError("SEAL's next level is not the top one less its last prime")
        ct = self.encryptor.encrypt_symmetric(self.plain(dense))
        top = self.limbs(ct).copy()
        self.ev.mod_switch_to_next_inplace(ct)
        want = self.limbs(ct).copy()
        got = self.rns.mod_switch(top)
        for negate in (False, True):
            moved = self.cipher(want.copy())
            (self.ev.sub_plain_inplace if negate else self.ev.add_plain_inplace)(
                moved, self.plain(dense[::-1].copy()))
            scaled = self.rns.add_scaled(got[0].copy(), dense[::-1], negate)
            if not np.array_equal(scaled, self.limbs(moved)[0]):
                raise HeLayoutError("SEAL's plaintext scaling is not the one rns.py computes")
        if not np.array_equal(got, want):
            raise HeLayoutError("SEAL's modulus switch is not the one rns.py computes")

    def lift(self, coeffs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(..., N) plaintext coefficients in [0, t) -> (..., L, N) residues at the top
        level, lifted to (-t/2, t/2] as SEAL lifts them for a plaintext product."""
        P = self.top_primes[:, None]
        c = coeffs[..., None, :]
        if out is None:
            out = np.empty(coeffs.shape[:-1] + P.shape[:1] + coeffs.shape[-1:], np.uint64)
        np.copyto(out, c)
        np.add(out, P - np.uint64(self.t), out=out, where=c >= np.uint64(self.t >> 1))
        return out

    def ntt_plain_limbs(self, pt: seal.Plaintext) -> np.ndarray:
        """(L, N) residues of a plaintext in NTT form at the top level."""
        n = self.top_primes.size * self.N
        if pt.coeff_count() != n:
            raise HeLayoutError("SEAL NTT plaintext has an unexpected size")
        return np.frombuffer(pt.to_bytes(_NONE)[-8 * n:], np.uint64).reshape(-1, self.N)

    def cipher_ntt(self, limbs: np.ndarray) -> seal.Ciphertext:
        """Ciphertext in NTT form at the top level from our own (2, L, N) residues."""
        ct = seal.Ciphertext()
        ct.load_bytes(self.ctx, self._ntt_prefix + np.ascontiguousarray(limbs).tobytes())
        return ct

    def plain(self, coeffs: np.ndarray) -> seal.Plaintext:
        """Plaintext with these N coefficients (uint64 in [0, t))."""
        pt = seal.Plaintext()
        pt.load_bytes(self.ctx, self._pt_prefix + np.ascontiguousarray(coeffs, np.uint64).tobytes())
        return pt

    def plain_coeffs(self, pt: seal.Plaintext) -> np.ndarray:
        """(N,) uint64 coefficients of a (non-NTT) plaintext, zero-padded."""
        n = pt.coeff_count()
        out = np.zeros(self.N, np.uint64)
        if n:
            out[:n] = np.frombuffer(pt.to_bytes(_NONE)[-8 * n:], np.uint64)
        return out

    def limbs(self, ct: seal.Ciphertext) -> np.ndarray:
        """(2, L, N) uint64 residues of a size-2 ciphertext (L limbs of its level)."""
        L = ct.coeff_modulus_size()
        raw = ct.to_string(_NONE)
        return np.frombuffer(raw, np.uint64, count=2 * L * self.N,
                             offset=len(raw) - 8 * 2 * L * self.N).reshape(2, L, self.N)

    def cipher(self, limbs: np.ndarray) -> seal.Ciphertext:
        """Ciphertext (non-NTT) from (2, L, N) residues; SEAL checks they are reduced."""
        if not isinstance(limbs, np.ndarray) or limbs.dtype != np.uint64 or limbs.ndim != 3 \
                or limbs.shape[0] != 2 or limbs.shape[2] != self.N \
                or limbs.shape[1] not in self._ct_prefix:
            raise PeerError("HE: malformed ciphertext from the peer")
        ct = seal.Ciphertext()
        try:
            ct.load_bytes(self.ctx, self._ct_prefix[limbs.shape[1]]
                          + np.ascontiguousarray(limbs).tobytes())
        except Exception:                                 # noqa: BLE001 - SEAL's own checks
            raise PeerError("HE: a ciphertext from the peer does not load") from None
        return ct
