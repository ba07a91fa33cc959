"""Point-to-point links between parties, with byte and round accounting.

A Transport moves numpy arrays between ranks (in-memory queues here; the network
transport implements the same two methods). Comm wraps it for one party: every
message is counted, and each `exchange` is one communication round.
"""
from __future__ import annotations

import queue
import threading
from typing import Dict, Iterable, Optional

import numpy as np


class PeerError(RuntimeError):
    """A peer died, hung past the timeout, or sent something unexpected."""


class InMemoryHub:
    """Queues between every ordered pair of ranks of an in-process cluster."""

    def __init__(self, ranks: Iterable[int]):
        ranks = list(ranks)
        self.queues = {(a, b): queue.Queue() for a in ranks for b in ranks if a != b}
        self.failed = threading.Event()
        self.failure: Optional[str] = None

    def fail(self, why: str):
        """Wake every waiting party: a peer has failed."""
        self.failure = self.failure or why
        self.failed.set()

    def transport(self, rank: int, names: Dict[int, str], timeout: float) -> "InMemoryTransport":
        return InMemoryTransport(self, rank, names, timeout)


class InMemoryTransport:
    def __init__(self, hub: InMemoryHub, rank: int, names: Dict[int, str], timeout: float):
        self.hub, self.rank, self.names, self.timeout = hub, rank, names, timeout

    def send(self, to: int, payload) -> None:
        self.hub.queues[(self.rank, to)].put(payload)

    def recv(self, frm: int):
        q = self.hub.queues[(frm, self.rank)]
        waited, step = 0.0, 0.05
        while True:
            try:
                return q.get(timeout=step)
            except queue.Empty:
                waited += step
                if self.hub.failed.is_set():
                    raise PeerError(f"party {self.names.get(frm, frm)!r} cannot continue: "
                                    f"{self.hub.failure}")
                if waited >= self.timeout:
                    raise PeerError(f"no message from party {self.names.get(frm, frm)!r} "
                                    f"within {self.timeout:g} s (dead or hung?)")


def nbytes(payload) -> int:
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    if isinstance(payload, (tuple, list)):
        return sum(nbytes(p) for p in payload)
    if isinstance(payload, (bytes, bytearray)):
        return len(payload)
    return 0


class Comm:
    """One party's view of the links: counted sends, receives and rounds."""

    def __init__(self, rank: int, transport):
        self.rank = rank
        self.transport = transport
        self.bytes_sent = 0
        self.rounds = 0

    def exchange(self, sends: Dict[int, object], recv_from: Iterable[int]) -> Dict[int, object]:
        """One round: send every payload in `sends`, then receive one from each peer
        in `recv_from`. Payloads are arrays or tuples of arrays."""
        for to, payload in sends.items():
            self.bytes_sent += nbytes(payload)
            self.transport.send(to, payload)
        got = {frm: self.transport.recv(frm) for frm in recv_from}
        if sends or got:
            self.rounds += 1
        return got

    def send(self, to: int, payload) -> None:
        """A one-way message that is off the critical path of the receiver's round count
        (e.g. data-independent correlated randomness)."""
        self.bytes_sent += nbytes(payload)
        self.transport.send(to, payload)

    def recv(self, frm: int):
        return self.transport.recv(frm)
