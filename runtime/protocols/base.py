"""The protocol kernel interface.

A Protocol object belongs to ONE party: it holds that party's keys and links and
operates on that party's local pieces of secrets (Share). Everything above this
interface -- comparison, select, max, argmax, the fixed-point approximations -- is
written once in runtime/fxp and works for every protocol.

Conventions
- Ring elements are numpy uint64 (or uint32) arrays; public values are plain arrays
  that every party holds identically.
- Arithmetic shares: x = sum of the parties' pieces mod 2^k (how pieces are laid out
  is the protocol's business). Boolean shares: the same over XOR, k bits per word.
- Every method is called by all computing parties in the same order (SPMD); a method
  that communicates does so through `self.comm` and documents its rounds and bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from ..link import Comm
from ..prg import Prg
from ..ring import Ring


class Share:
    """One party's local piece of a secret: a tuple of ring arrays of equal shape."""
    __slots__ = ("parts", "boolean")

    def __init__(self, parts: Sequence[np.ndarray], boolean: bool = False):
        self.parts = tuple(p if isinstance(p, np.ndarray) else np.asarray(p) for p in parts)
        self.boolean = boolean

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.parts[0].shape

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> "Share":
        """Apply a local, linear layout function (reshape, slice, ...) to every piece."""
        return Share([fn(p) for p in self.parts], self.boolean)

    @staticmethod
    def zip(fn: Callable[..., np.ndarray], shares: Sequence["Share"]) -> "Share":
        """Combine several shares piece by piece (concatenate, stack, ...)."""
        n = len(shares[0].parts)
        return Share([fn(*[s.parts[i] for s in shares]) for i in range(n)], shares[0].boolean)

    def __repr__(self):
        kind = "bool" if self.boolean else "arith"
        return f"Share<{kind}>{self.shape}x{len(self.parts)}"


@dataclass
class PartyContext:
    """What a party knows about itself: rank, ring, links, local randomness."""
    rank: int
    nparties: int                 # computing parties (a dealer, if any, is extra)
    ring: Ring
    comm: Comm
    local_prg: Prg                # private randomness of this party
    fxp_bits: int = 18
    extra: Dict[str, object] = field(default_factory=dict)


class Protocol:
    name = "base"
    #: computing parties by default, and whether a separate dealer role exists
    default_parties = 1
    needs_dealer = False

    def __init__(self, ctx: PartyContext):
        self.ctx = ctx
        self.ring = ctx.ring
        self.comm = ctx.comm
        self.rank = ctx.rank
        self.n = ctx.nparties

    # ---- setup and dealing ------------------------------------------------------
    def setup(self) -> None:
        """Exchange keys for correlated randomness (once per cluster)."""

    #: what identifies the program of the current job (set by Party.run: protocols
    #: may remember per program what a job did, e.g. semi2k's requests to its dealer)
    job_key = None

    def begin_job(self) -> None:
        """Called by every party before a program runs."""

    def end_job(self) -> None:
        """Called by every party after a program ran (e.g. release the dealer)."""

    @classmethod
    def deal(cls, x: np.ndarray, nparties: int, prg: Prg, ring: Ring) -> List[Share]:
        """Split ring array x into one Share per party (used by data owners)."""
        raise NotImplementedError

    @classmethod
    def deal_seeded(cls, x: np.ndarray, nparties: int, prg: Prg, ring: Ring) -> List:
        """deal, as it travels: one dealing.SeededShare per party, random pieces as
        16-byte keys where the protocol allows (deal is this, expanded)."""
        raise NotImplementedError

    @classmethod
    def reconstruct(cls, shares: Sequence[Share], ring: Ring) -> np.ndarray:
        """Inverse of deal, from every party's Share."""
        raise NotImplementedError

    @classmethod
    def reply_share(cls, share: Share, rank: int) -> Share:
        """What party `rank` returns of an output for reconstruct_replies (a networked
        party sends this; parts it need not send travel as empty arrays)."""
        return share

    @classmethod
    def reconstruct_replies(cls, replies: Sequence[Share], ring: Ring) -> np.ndarray:
        """reconstruct, from every party's reply_share."""
        return cls.reconstruct(replies, ring)

    def reveal(self, x: Share) -> np.ndarray:
        """Open x to every computing party."""
        raise NotImplementedError

    #: number of ring arrays in one party's Share (aby3: 2, others: 1)
    share_parts = 1

    def public_share(self, p: np.ndarray, boolean: bool = False) -> Share:
        """A valid sharing of public p made locally: zero pieces plus p where the
        protocol places public constants."""
        zero = Share([np.zeros(p.shape, self.ring.dtype) for _ in range(self.share_parts)], boolean)
        return self.xor_public(zero, p) if boolean else self.add_public(zero, p)

    # ---- arithmetic shares -------------------------------------------------------
    def add(self, x: Share, y: Share) -> Share: raise NotImplementedError
    def neg(self, x: Share) -> Share: raise NotImplementedError
    def add_public(self, x: Share, p: np.ndarray) -> Share: raise NotImplementedError

    def mul_public(self, x: Share, p: np.ndarray) -> Share:
        """x * p for public p: local on every piece."""
        return x.map(lambda s: s * p)

    def mul(self, x: Share, y: Share) -> Share: raise NotImplementedError

    def dot(self, x: Share, y: Share, dims) -> Share:
        """dot_general of two secrets; dims = (lhs_contract, rhs_contract, lhs_batch, rhs_batch)."""
        raise NotImplementedError

    def dot_many(self, items: Sequence[tuple]) -> List[Share]:
        """dot of each independent (x, y, dims); protocols may share one round among
        them (aby3 and semi2k do)."""
        return [self.dot(x, y, dims) for x, y, dims in items]

    def dot_public(self, x, y, dims) -> Share:
        """dot_general where exactly one of x, y is a public array: local."""
        from ..ring_linalg import ring_dot_general
        bits = self.ring.bits
        if isinstance(x, Share):
            return x.map(lambda s: ring_dot_general(s, y, dims, bits))
        return y.map(lambda s: ring_dot_general(x, s, dims, bits))

    def trunc(self, x: Share, bits: int) -> Share:
        """Arithmetic shift right by `bits` of a signed value with |x| < 2^(k-2);
        error at most 1 in the last place."""
        raise NotImplementedError

    def mul_trunc(self, x: Share, y: Share, bits: int) -> Share:
        """trunc(mul(x, y), bits); protocols may fuse the two (aby3 does)."""
        return self.trunc(self.mul(x, y), bits)

    def dot_trunc(self, x: Share, y: Share, dims, bits: int, reuse_rhs: bool = False) -> Share:
        """trunc(dot(x, y, dims), bits); protocols may fuse the two (aby3 does)."""
        d = self.dot_reusing_rhs(x, y, dims) if reuse_rhs else self.dot(x, y, dims)
        return self.trunc(d, bits)

    def dot_reusing_rhs(self, x: Share, y: Share, dims) -> Share:
        """dot where y is multiplied again later in the job (a loop-invariant operand);
        protocols whose dot masks y afresh each time may reuse its mask (semi2k does)."""
        return self.dot(x, y, dims)

    # ---- boolean shares (XOR over k-bit words) -------------------------------------
    def boolean_addends(self, x: Share) -> List[Share]:
        """Boolean shares b_0..b_m, made locally, with sum_j b_j = x mod 2^k."""
        raise NotImplementedError

    def xor(self, x: Share, y: Share) -> Share:
        return Share([a ^ b for a, b in zip(x.parts, y.parts)], True)

    def xor_public(self, x: Share, p: np.ndarray) -> Share: raise NotImplementedError

    def and_public(self, x: Share, p: np.ndarray) -> Share:
        return x.map(lambda s: s & p)

    def and_(self, x: Share, y: Share) -> Share:
        """Bitwise AND of two boolean shares (1 round)."""
        raise NotImplementedError

    def b2a_bit(self, x: Share) -> Share:
        """Arithmetic share of bit 0 of boolean share x (other bits must be 0)."""
        raise NotImplementedError

    def sign_bit(self, x: Share, width: int, shift: int = 0):
        """Optional: arithmetic 0/1 share of bit width-1 of sum_j (b_j >> shift) mod
        2^width, the b_j being boolean_addends(x), by the protocol's own comparison
        protocol. None (this default): fxp/compare.py and fxp/narrow.py build it from
        the boolean adder of fxp/bits.py. Which algorithm a protocol uses is its own
        decision (semi2k_ot: the millionaires' protocol, semi2k_ot_compare.py)."""
        return None

    #: Optional: a method mux(c, x, products=None) -> Share of c * x for secret c holding
    #: a 0/1 value and secret x (select's product, fxp/compare.py bit_product), by the
    #: protocol's own multiplexer; products = (y, w), 1-D secrets of one size: also y * w,
    #: in the same round, returned second (kernels/batches.py). None (this default): a
    #: ring product, P.mul. semi2k_ot: an OT multiplexer (semi2k_ot_mux.py).
    mux = None
