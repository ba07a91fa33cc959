"""Point-to-point links between parties, with byte and round accounting.

A Transport moves numpy arrays between ranks (in-memory queues here; the network
transport implements the same two methods). Comm wraps it for one party: every
message is counted, and each `exchange` is one communication round. Comm also
counts the seconds a party spends waiting in recv (a round's wait, as opposed to its
compute), for the phase profile of networked jobs.

LinkModel emulates a network on any transport (`rtt=20ms,bw=100mbit`): every party
has one uplink of bandwidth `bw` (shared by its messages to all peers, like one
network interface) and every message a one-way latency of rtt/2. The sender stamps
each message with the time it arrives,

    due = max(now, uplink busy until) + bytes / bw + rtt / 2

and the receiver holds the message until then. The sender never waits. A round in
which the parties exchange messages at the same time thus costs rtt/2 + bytes/bw on
top of the real transfer; a request answered by a reply costs rtt. Stamps are
wall-clock times (the emulation is meant for parties on one machine).
"""
from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

import numpy as np

_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_UNITS_BW = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
PRESETS = {"lan": "rtt=0.2ms,bw=1gbit", "wan": "rtt=20ms,bw=100mbit",
           "wan40": "rtt=40ms,bw=100mbit", "none": ""}


@dataclass(frozen=True)
class LinkModel:
    """Emulated round-trip time (seconds) and bandwidth (bits per second, 0: unlimited)."""
    rtt: float = 0.0
    bw: float = 0.0

    @staticmethod
    def parse(spec) -> Optional["LinkModel"]:
        """'rtt=20ms,bw=100mbit' (units s/ms/us, bit/kbit/mbit/gbit; either part may
        be left out), a preset ('lan', 'wan', 'wan40'), a LinkModel, or None/'' for none."""
        if spec is None or isinstance(spec, LinkModel):
            return spec
        text = PRESETS.get(str(spec).strip().lower(), str(spec)).strip().lower()
        if not text:
            return None
        rtt = bw = 0.0
        for part in text.split(","):
            m = re.fullmatch(r"\s*(rtt|bw)\s*=\s*([0-9.]+(?:e-?[0-9]+)?)\s*([a-z]*)\s*", part)
            if not m:
                raise ValueError(f"net: cannot read {part!r} (expected e.g. rtt=20ms,bw=100mbit)")
            key, num, unit = m.group(1), float(m.group(2)), m.group(3)
            units = _UNITS_S if key == "rtt" else _UNITS_BW
            if unit not in units:
                raise ValueError(f"net: unit {unit!r} of {key} is not one of {', '.join(units)}")
            if key == "rtt":
                rtt = num * units[unit]
            else:
                bw = num * units[unit]
        return LinkModel(rtt, bw)

    def delay(self, nbytes: int) -> float:
        """Seconds one message of nbytes spends on an idle link (beyond the real one)."""
        return self.rtt / 2 + (nbytes * 8 / self.bw if self.bw else 0.0)

    def __str__(self):
        return f"rtt={self.rtt * 1e3:g}ms,bw={self.bw / 1e6:g}mbit" if self.bw else \
            f"rtt={self.rtt * 1e3:g}ms"


class Shaper:
    """One party's side of the emulated links: stamps outgoing messages, holds incoming
    ones until they are due (see LinkModel)."""

    def __init__(self, model: LinkModel, timeout: float = 60.0):
        self.model, self.timeout = model, timeout
        self.busy = 0.0                 # when this party's uplink is free again
        self.lock = threading.Lock()

    def stamp(self, to: int, nbytes: int) -> float:
        m = self.model
        with self.lock:
            self.busy = max(time.time(), self.busy) + (nbytes * 8 / m.bw if m.bw else 0.0)
            return self.busy + m.rtt / 2

    def hold(self, due: float) -> None:
        """Wait until `due`. A peer's stamp can hold a message at most for the recv
        timeout, which is no more than the peer could delay us by not sending it."""
        left = min(float(due) - time.time(), self.timeout)
        if left > 0:
            time.sleep(left)


class PeerError(RuntimeError):
    """A peer died, hung past the timeout, or sent something unexpected."""


class PeerStopped(PeerError):
    """A peer stopped the job in order: everything it sent before was received."""


class InMemoryHub:
    """Queues between every ordered pair of ranks of an in-process cluster."""

    def __init__(self, ranks: Iterable[int], net: Optional[LinkModel] = None):
        ranks = list(ranks)
        self.queues = {(a, b): queue.Queue() for a in ranks for b in ranks if a != b}
        self.failed = threading.Event()
        self.failure: Optional[str] = None
        self.net = net

    def fail(self, why: str):
        """Wake every waiting party: a peer has failed."""
        self.failure = self.failure or why
        self.failed.set()

    def transport(self, rank: int, names: Dict[int, str], timeout: float) -> "InMemoryTransport":
        return InMemoryTransport(self, rank, names, timeout)


class InMemoryTransport:
    def __init__(self, hub: InMemoryHub, rank: int, names: Dict[int, str], timeout: float):
        self.hub, self.rank, self.names, self.timeout = hub, rank, names, timeout
        self.shaper = Shaper(hub.net, timeout) if hub.net else None

    def send(self, to: int, payload) -> None:
        if self.shaper is not None:
            payload = (self.shaper.stamp(to, nbytes(payload)), payload)
        self.hub.queues[(self.rank, to)].put(payload)

    def pending(self, frm: int) -> bool:
        return not self.hub.queues[(frm, self.rank)].empty()

    def recv(self, frm: int):
        q = self.hub.queues[(frm, self.rank)]
        waited, step = 0.0, 0.05
        while True:
            try:
                got = q.get(timeout=step)
                if self.shaper is None:
                    return got
                due, payload = got
                self.shaper.hold(due)
                return payload
            except queue.Empty:
                waited += step
                if self.hub.failed.is_set():
                    raise PeerError(f"party {self.names.get(frm, frm)!r} cannot continue: "
                                    f"{self.hub.failure}")
                if waited >= self.timeout:
                    raise PeerError(f"no message from party {self.names.get(frm, frm)!r} "
                                    f"within {self.timeout:g} s (dead or hung?)")


def nbytes(payload) -> int:
    if hasattr(payload, "parts"):                  # a Share (protocols.base)
        return nbytes(payload.parts)
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
        self.wait = 0.0                 # seconds spent in recv (waiting for peers)
        self.wait_from: Dict[int, float] = {}   # the same, per peer

    def exchange(self, sends: Dict[int, object], recv_from: Iterable[int]) -> Dict[int, object]:
        """One round: send every payload in `sends`, then receive one from each peer
        in `recv_from`. Payloads are arrays or tuples of arrays."""
        for to, payload in sends.items():
            self.bytes_sent += nbytes(payload)
            self.transport.send(to, payload)
        t0 = t = time.perf_counter()
        got = {}
        for frm in recv_from:
            got[frm] = self.transport.recv(frm)
            t, t1 = time.perf_counter(), t
            self.wait_from[frm] = self.wait_from.get(frm, 0.0) + t - t1
        self.wait += t - t0
        if sends or got:
            self.rounds += 1
        return got

    def send(self, to: int, payload) -> None:
        """A one-way message that is off the critical path of the receiver's round count
        (e.g. data-independent correlated randomness)."""
        self.bytes_sent += nbytes(payload)
        self.transport.send(to, payload)

    def pending(self, frm: int) -> bool:
        """Whether a message from `frm` is waiting (False if the transport cannot tell)."""
        pending = getattr(self.transport, "pending", None)
        return bool(pending and pending(frm))

    def recv(self, frm: int):
        t = time.perf_counter()
        try:
            return self.transport.recv(frm)
        finally:
            t = time.perf_counter() - t
            self.wait += t
            self.wait_from[frm] = self.wait_from.get(frm, 0.0) + t
