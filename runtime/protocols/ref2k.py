"""ref2k: plaintext ring arithmetic behind the protocol interface. NOT secure.

One party holds the value itself. It runs the very same fixed-point code as the
secure protocols (same encodings, truncations, approximations), so it is the
reference the secure protocols are tested against, and a fast debugging mode.
"""
from __future__ import annotations


from ..ring_linalg import ring_dot_general
from .base import Protocol, Share
from .dealing import SeededShare


class Ref2k(Protocol):
    name = "ref2k"
    default_parties = 1

    @classmethod
    def deal(cls, x, nparties, prg, ring):
        return [Share([x.copy()]) for _ in range(nparties)]

    @classmethod
    def deal_seeded(cls, x, nparties, prg, ring):
        return [SeededShare(s.parts) for s in cls.deal(x, nparties, prg, ring)]

    @classmethod
    def reconstruct(cls, shares, ring):
        return shares[0].parts[0]

    def reveal(self, x):
        return x.parts[0]

    def add(self, x, y):
        return Share([x.parts[0] + y.parts[0]])

    def neg(self, x):
        return Share([-x.parts[0]])

    def add_public(self, x, p):
        return Share([x.parts[0] + p])

    def mul(self, x, y):
        return Share([x.parts[0] * y.parts[0]])

    def dot(self, x, y, dims):
        return Share([ring_dot_general(x.parts[0], y.parts[0], dims, self.ring.bits)])

    def trunc(self, x, bits):
        return Share([self.ring.arshift(x.parts[0], bits)])

    def boolean_addends(self, x):
        return [Share([x.parts[0]], True)]

    def xor_public(self, x, p):
        return Share([x.parts[0] ^ p], True)

    def and_(self, x, y):
        return Share([x.parts[0] & y.parts[0]], True)

    def b2a_bit(self, x):
        return Share([x.parts[0] & self.ring.dtype(1)])
