"""One party: its protocol instance, and running a program on its inputs.

The in-process cluster and a networked node run exactly this code; only the
transport under `Comm` differs.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from spu_lite.compiler.ir import Program

from .alloc import tune_allocator
from .executor import run_program
from .kernels import KernelContext
from .link import Comm
from .prg import Prg, derive_key, new_key
from .profile import Profile
from .protocols import get_protocol
from .protocols.base import PartyContext
from .ring import Ring


def local_prg(seed: Optional[int], label: str) -> Prg:
    if seed is None:
        return Prg(new_key())
    return Prg(derive_key(str(seed).encode(), label))


class Party:
    def __init__(self, rank: int, protocol: str, nparties: int, transport, field: int = 64,
                 fxp_bits: int = 18, seed: Optional[int] = None,
                 options: Optional[Dict[str, object]] = None):
        tune_allocator()                  # keep ~MB temporaries off fresh mmap pages
        self.rank = rank
        self.comm = Comm(rank, transport)
        self.ctx = PartyContext(rank, nparties, Ring(field), self.comm,
                                local_prg(seed, f"party{rank}"), fxp_bits)
        self.proto = get_protocol(protocol)(self.ctx)
        self.options = dict(options or {})

    def setup(self) -> None:
        self.proto.setup()

    def run(self, program: Program, inputs: Sequence) -> Tuple[List, Profile]:
        """Execute `program`; inputs are public ring arrays or this party's Shares."""
        profile = Profile()
        K = KernelContext(self.proto, program.fxp_bits, self.options)
        stats = getattr(self.proto, "offline_stats", None)   # protocols that make correlations
        before = stats() if stats else None
        self.proto.job_key = (id(program), repr(sorted(self.options.items())))
        self.proto.begin_job()
        outs = run_program(K, program, inputs, profile)
        self.proto.end_job()
        if stats:
            after = stats()
            o = profile.offline
            o.seconds, o.bytes = after["seconds"] - before["seconds"], after["bytes"] - before["bytes"]
            o.rounds = after["messages"] - before["messages"]
            o.calls = after["requests"] - before["requests"]
        return outs, profile


class DealerParty:
    """The dealer role of protocols that have one (semi2k): serves correlated
    randomness to the computing parties; sees no shares of any input."""

    def __init__(self, rank: int, protocol: str, nparties: int, transport, field: int = 64,
                 fxp_bits: int = 18, seed: Optional[int] = None):
        tune_allocator()
        self.comm = Comm(rank, transport)
        ctx = PartyContext(rank, nparties, Ring(field), self.comm,
                           local_prg(seed, f"dealer{rank}"), fxp_bits)
        self.dealer = get_protocol(protocol).Dealer(ctx)

    def setup(self) -> None:
        self.dealer.setup()

    def serve_job(self) -> None:
        self.dealer.serve()

    def idle(self, stop) -> None:
        """Between jobs: work the dealer can do ahead, until stop() is true."""
        idle = getattr(self.dealer, "idle", None)
        if idle is not None:
            idle(stop)
