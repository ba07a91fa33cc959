"""NetTransport: the Transport interface of runtime.link over an Endpoint.

Party code calls send(to, payload) / recv(frm) exactly as with the in-memory links.
Each message is tagged with the current job id (set by the node before a job), so
messages of an aborted job can never be mistaken for the next job's; recv waits at
most `timeout` seconds and raises PeerError naming the silent peer.
"""
from __future__ import annotations

from . import wire
from .endpoint import Endpoint


class NetTransport:
    def __init__(self, endpoint: Endpoint, timeout: float):
        self.ep = endpoint
        self.timeout = timeout
        self.job = 0

    def send(self, to: int, payload) -> None:
        self.ep.send_peer(to, wire.encode({"k": "d", "job": self.job}, payload))

    def recv(self, frm: int):
        return self.ep.mailbox.recv(frm, self.timeout)
