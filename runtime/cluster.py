"""In-process cluster: every party runs in its own thread with its own state and
talks to the others only through in-memory links, exactly as networked parties do.

The driver (the caller) deals shares of its inputs, hands each party only that
party's shares, and reconstructs the revealed outputs from the parties' shares.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field as dc_field
from typing import Dict, List, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from spu_lite.compiler.ir import Program
from spu_lite.compiler.ir.fields import default_fxp_bits, ring_problem

from .link import InMemoryHub, LinkModel, PeerError
from .party import DealerParty, Party, local_prg
from .profile import Profile
from .protocols import get_protocol
from .ring import Ring


@dataclass(frozen=True)
class ClusterConfig:
    protocol: str = "aby3"
    nparties: Optional[int] = None        # default: the protocol's own (ref2k 1, semi2k 2, aby3 3)
    field: int = 64
    fxp_bits: Optional[int] = None         # default: the ring's (18 at 64 bits, 9 at 32)
    seed: Optional[int] = None             # None: fresh OS randomness for every key
    timeout: float = 60.0                  # seconds a party waits for a peer's message
    options: Dict[str, object] = dc_field(default_factory=dict)
    net: Optional[str] = None              # emulated links, e.g. "rtt=20ms,bw=100mbit" (link.py)

    def __post_init__(self):
        if self.fxp_bits is None:
            object.__setattr__(self, "fxp_bits", default_fxp_bits(self.field))
        problem = ring_problem(self.field, self.fxp_bits)
        if problem:
            raise ValueError(problem)

    @property
    def parties(self) -> int:
        cls = get_protocol(self.protocol)
        n = self.nparties or cls.default_parties
        if self.protocol == "aby3" and n != 3:
            raise ValueError("aby3 runs with exactly 3 parties")
        if self.protocol == "semi2k" and n < 2:
            raise ValueError("semi2k needs at least 2 parties")
        if self.protocol == "semi2k_ot" and n != 2:
            raise ValueError("semi2k without a dealer (semi2k_ot) runs with exactly 2 parties")
        return n


def _run_threads(targets) -> List:
    """Run callables in threads; return their results or raise the first real error."""
    results, errors = [None] * len(targets), [None] * len(targets)

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the driver below
            errors[i] = e
            hub_fail(str(e))

    hub_fail = targets.hub_fail
    threads = [threading.Thread(target=wrap, args=(i, fn), daemon=True) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    real = [e for e in errors if e is not None and not isinstance(e, PeerError)]
    if real:
        raise real[0]
    peer = [e for e in errors if e is not None]
    if peer:
        raise peer[0]
    return results


class _Targets(list):
    hub_fail = None


class InProcessCluster:
    def __init__(self, config: ClusterConfig = ClusterConfig()):
        self.config = config
        self.ring = Ring(config.field)
        self.proto_cls = get_protocol(config.protocol)
        n = config.parties
        ranks = list(range(n + (1 if self.proto_cls.needs_dealer else 0)))
        self.names = {r: (f"P{r}" if r < n else "dealer") for r in ranks}
        self.hub = InMemoryHub(ranks, LinkModel.parse(config.net))
        tr = lambda r: self.hub.transport(r, self.names, config.timeout)
        self.parties = [Party(r, config.protocol, n, tr(r), config.field, config.fxp_bits,
                              config.seed, config.options) for r in range(n)]
        self.dealer = (DealerParty(n, config.protocol, n, tr(n), config.field, config.fxp_bits,
                                   config.seed) if self.proto_cls.needs_dealer else None)
        self._driver_prg = local_prg(config.seed, "driver")
        self.last_profile: Optional[Profile] = None
        self.party_profiles: List[Profile] = []
        self._lock = threading.Lock()
        self._threads(lambda p: p.setup, with_dealer=True)

    @property
    def nparties(self) -> int:
        return len(self.parties)

    def _threads(self, make, with_dealer=False):
        t = _Targets(make(p) for p in self.parties)
        if with_dealer and self.dealer is not None:
            t.append(make(self.dealer))
        t.hub_fail = self.hub.fail
        return _run_threads(t)

    # -- data in and out ----------------------------------------------------------
    def share(self, ring_value: np.ndarray):
        """Deal shares of a driver-held ring array: one Share per party."""
        return self.proto_cls.deal(ring_value, self.nparties, self._driver_prg, self.ring)

    def run(self, program: Program, inputs: Sequence, keep: Optional[Sequence[bool]] = None) -> List:
        """inputs[i]: a public ring array, or a list with one Share per party.
        Returns every output as a ring array (secret outputs are reconstructed), except
        outputs with keep[i] set, which come back as the list of the parties' Shares."""
        with self._lock:
            if self.hub.failed.is_set():
                raise PeerError(f"cluster is broken after an earlier failure: {self.hub.failure}")
            per_party = [[x if isinstance(x, np.ndarray) else x[r] for x in inputs]
                         for r in range(self.nparties)]
            t = _Targets(lambda r=r: self.parties[r].run(program, per_party[r])
                         for r in range(self.nparties))
            if self.dealer is not None:
                t.append(self.dealer.serve_job)
            t.hub_fail = self.hub.fail
            # One BLAS thread per party thread: 3 parties on 2 cores would otherwise
            # oversubscribe OpenBLAS (a GEMM then runs ~20x slower).
            with threadpool_limits(1, user_api="blas"):
                results = _run_threads(t)[: self.nparties]
            self.party_profiles = [prof for _, prof in results]
            self.last_profile = Profile.merge_max(self.party_profiles)
            outs = []
            keep = keep or [False] * len(program.results)
            for i in range(len(program.results)):
                vals = [res[i] for res, _ in results]
                if isinstance(vals[0], np.ndarray):
                    outs.append(vals[0])
                elif keep[i]:
                    outs.append(vals)
                else:
                    outs.append(self.proto_cls.reconstruct(vals, self.ring))
            return outs
