"""Base oblivious transfers: the "simplest OT" of Chou and Orlandi (Latincrypt 2015),
random-OT form, over secp256k1 through `coincurve` (libsecp256k1 bindings).

Roles: the sender learns two keys (k0_i, k1_i) per OT; the receiver, with a choice bit
c_i, learns k_{c_i}_i and nothing about the other key; the sender learns nothing of c_i.

Algebra (G the generator, q the group order, H = SHA-256 over the transcript):
    sender:    a <- Z_q,  A = aG,  T = aA;                              sends A
    receiver:  b_i <- Z_q,  B_i = b_i G + c_i A;                        sends B_i
               k_{c_i} = H(i, A, B_i, b_i A)
    sender:    k0_i = H(i, A, B_i, a B_i),   k1_i = H(i, A, B_i, a B_i - T)
c = 0: a B_i = a b_i G = b_i A.  c = 1: a B_i - T = a b_i G + aA - aA = b_i A.
B_i is uniform whatever c_i is (b_i G is), so the sender's view does not depend on c;
the receiver would need a(B_i - A) = CDH(A, B_i - A) for the other key (semi-honest
security in the random-oracle model; Chou-Orlandi's UC claim has a known gap against
malicious receivers, which semi-honest IKNP does not need).

Cost: 2 messages (1 round trip); the sender sends one point (33 bytes), the receiver
33 bytes per OT; ~3 scalar multiplications per OT (about 0.3 ms each here). IKNP needs
128 base OTs per direction, once per pair of parties.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, List, Sequence, Tuple

from coincurve import PrivateKey, PublicKey

from ..link import PeerError

KEY_BYTES = 16
POINT_BYTES = 33


def _neg(p: PublicKey) -> PublicKey:
    """-P: the compressed encoding with the parity byte flipped."""
    raw = bytearray(p.format(compressed=True))
    raw[0] ^= 1                         # 0x02 <-> 0x03
    return PublicKey(bytes(raw))


def _point(raw) -> PublicKey:
    try:
        return PublicKey(bytes(raw))
    except Exception as e:              # a hostile or broken peer: no secrets in the text
        raise PeerError("base OT: the peer sent an invalid curve point") from e


def _scalar(rand: Callable[[int], bytes]) -> PrivateKey:
    """A uniform nonzero scalar mod q from 32 random bytes (rejection: a draw >= q, or
    zero, has probability ~2^-128)."""
    while True:
        try:
            return PrivateKey(bytes(rand(32)))
        except ValueError:
            continue


def _kdf(i: int, a: bytes, b: bytes, shared: PublicKey) -> bytes:
    h = hashlib.sha256(b"spu-lite/base-ot" + i.to_bytes(4, "little") + a + b
                       + shared.format(compressed=True))
    return h.digest()[:KEY_BYTES]


class BaseOtSender:
    def __init__(self, rand: Callable[[int], bytes] = os.urandom):
        self._a = _scalar(rand)         # rand: os.urandom or the party's cryptographic PRG
        self.A = self._a.public_key.format(compressed=True)

    def keys(self, points: Sequence[bytes]) -> List[Tuple[bytes, bytes]]:
        """The receiver's points B_i -> (k0_i, k1_i)."""
        a = self._a.secret
        negT = _neg(_point(self.A).multiply(a))
        out = []
        for i, raw in enumerate(points):
            B = _point(raw)
            aB = B.multiply(a)
            out.append((_kdf(i, self.A, B.format(), aB),
                        _kdf(i, self.A, B.format(), PublicKey.combine_keys([aB, negT]))))
        return out


class BaseOtReceiver:
    def __init__(self, choices: Sequence[int], rand: Callable[[int], bytes] = os.urandom):
        self.choices = [int(c) & 1 for c in choices]
        self._b = [_scalar(rand) for _ in self.choices]

    def points(self, A_raw: bytes) -> List[bytes]:
        """B_i = b_i G + c_i A, to send."""
        A = _point(A_raw)
        self._A = A_raw
        pts = []
        for c, b in zip(self.choices, self._b):
            B = b.public_key if c == 0 else PublicKey.combine_keys([b.public_key, A])
            pts.append(B.format(compressed=True))
        self._B = pts
        return pts

    def keys(self) -> List[bytes]:
        A = _point(self._A)
        return [_kdf(i, self._A, B, A.multiply(b.secret))
                for i, (B, b) in enumerate(zip(self._B, self._b))]
