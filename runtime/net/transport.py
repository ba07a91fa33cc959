"""NetTransport: the Transport interface of runtime.link over an Endpoint.

Party code calls send(to, payload) / recv(frm) exactly as with the in-memory links.
Each message is tagged with the current job id (set by the node before a job), so
messages of an aborted job can never be mistaken for the next job's; recv waits at
most `timeout` seconds and raises PeerError naming the silent peer.

With a LinkModel (`net:` in the cluster file), every message travels as
(due time, payload) and is held at the receiver until due (runtime.link.Shaper).
Array frames go to zmq as buffers (no copy; wire.py), so sending costs no copy of
the data on this side.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ..link import LinkModel, PeerError, Shaper, nbytes
from . import wire
from .endpoint import Endpoint


class NetTransport:
    def __init__(self, endpoint: Endpoint, timeout: float, net: Optional[LinkModel] = None):
        self.ep = endpoint
        self.timeout = timeout
        self.job = 0
        self.waited = 0.0          # seconds spent in recv (all of it, Comm's or not)
        self.shaper = Shaper(net, timeout) if net else None

    def start_job(self, job: int) -> None:
        """Make `job` current: the mailbox drops older messages, and the peers' latest
        offers of sealed links are taken up (endpoint.py) before the job sends."""
        self.ep.mailbox.start_job(job)
        self.ep.use_offers()
        self.job = job

    def send(self, to: int, payload) -> None:
        if self.shaper is not None:
            payload = (np.array([self.shaper.stamp(to, nbytes(payload))]), payload)
        self.ep.send_peer(to, wire.encode({"k": "d", "job": self.job}, payload))

    def stop(self, to: int, reason: str) -> None:
        """Stop the current job at peer `to` after the messages sent so far (its recv
        raises PeerStopped when it gets there; mailbox.py). Best effort, unshaped."""
        self.ep.send_peer(to, wire.encode({"k": "stop", "job": self.job,
                                           "reason": reason[:1000]}), nowait=True)

    def pending(self, frm: int) -> bool:
        return self.ep.mailbox.pending(frm)

    def recv(self, frm: int):
        t = time.perf_counter()
        got = self.ep.mailbox.recv(frm, self.timeout)
        self.waited += time.perf_counter() - t
        if self.shaper is None:
            return got
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], np.ndarray)
                and got[0].dtype == np.float64 and got[0].shape == (1,)):
            raise PeerError(f"party {self.ep.peers[frm][0]!r} sent a message without a link "
                            f"stamp (is `net:` the same in every copy of the cluster file?)")
        self.shaper.hold(got[0][0])
        return got[1]
