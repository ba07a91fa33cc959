"""The driver's side of the network: one CURVE DEALER per node, requests out,
replies in, and liveness.

A node offers the driver a sealed link when it first hears from it over CURVE
(sealed.py, endpoint.py); before its next request to that node the driver takes it
up: a plain DEALER to the node's data port, requests sealed with the offered key,
replies opened under it. Nothing is in flight to a node between requests (the driver
waits for every reply), so no request overtakes another.

The driver never opens a port; it connects to every node. While it waits for a job,
a node it hears nothing from (no reply, no heartbeat) for `timeout` seconds, or whose
connection drops, is named in the error; failure reports of the other nodes (which
usually name the same party) are appended.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, Iterable, Optional, Tuple

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..link import PeerError
from . import wire, zio
from .auth import curve_client, require_curve
from .endpoint import WireDump, host_of, parse_offer
from .sealed import ReplyOpener, SealError, Sealer

log = logging.getLogger("spu_lite.net")


class JobError(RuntimeError):
    """A node failed a job with an error of its own (not a peer failure)."""

    def __init__(self, message: str, etype: str = "RuntimeError", reasons=None):
        super().__init__(message)
        self.etype = etype
        self.reasons = dict(reasons or {})     # node name -> its own failure reason


class DriverClient:
    def __init__(self, nodes: Dict[int, Tuple[str, str, bytes]], keys: Tuple[bytes, bytes],
                 timeout: float):
        require_curve()
        self.nodes, self.keys, self.timeout = dict(nodes), keys, timeout
        self.ctx = zmq.Context()
        self.dump = WireDump("driver")
        self.socks: Dict[int, zmq.Socket] = {}
        self.monitors: Dict[zmq.Socket, int] = {}
        self.sealed: Dict[int, Tuple[zmq.Socket, Sealer, ReplyOpener]] = {}
        self._offers: Dict[int, tuple] = {}       # rank -> (port, key, link) not yet used
        self._polled = None                       # (sockets, their Poller)
        self.seen_down = False            # some node's connection dropped since last check
        self._open()

    def _open(self) -> None:
        for r, (_, address, server_key) in self.nodes.items():
            s = self.ctx.socket(zmq.DEALER)
            curve_client(s, *self.keys, server_key)
            s.linger = 0
            s.connect(f"tcp://{address}")
            self.socks[r] = s
            self.monitors[s.get_monitor_socket(zmq.EVENT_DISCONNECTED |
                                               zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                                               zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)] = r

    def reset(self) -> None:
        """Close and reopen every connection: requests still queued are dropped."""
        self._close_socks()
        self._open()

    def send(self, r: int, header: dict, payload=None) -> None:
        frames = wire.encode(header, payload)
        self.dump.write("sent", frames)
        if r in self._offers:
            self._take_offer(r)
        if r in self.sealed:
            sock, sealer, _ = self.sealed[r]
            zio.send(sock, sealer.seal(frames))
        else:
            zio.send(self.socks[r], frames)

    def _unseal(self, r: int) -> None:
        """Node r's connection dropped (it may have restarted on a new data port): the
        next request goes over CURVE, and the node offers a link again."""
        self._offers.pop(r, None)
        old = self.sealed.pop(r, None)
        if old is not None:
            old[0].close(0)

    def _take_offer(self, r: int) -> None:
        port, key, link = self._offers[r]
        self._unseal(r)                          # drops the offer and any older link
        s = self.ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(f"tcp://{host_of(self.nodes[r][1])}:{port}")
        self.sealed[r] = (s, Sealer(key, link, 0), ReplyOpener(key, link))

    def _poller(self) -> zmq.Poller:
        """One poller over every socket, rebuilt only when the sockets change."""
        socks = (tuple(self.socks.values()) + tuple(x[0] for x in self.sealed.values()) +
                 tuple(self.monitors))
        if self._polled is None or self._polled[0] != socks:
            poller = zmq.Poller()
            for s in socks:
                poller.register(s, zmq.POLLIN)
            self._polled = (socks, poller)
        return self._polled[1]

    def _poll(self, ms: int):
        """Yield ("msg", rank, header, payload) and ("down"/"badkey", rank, None, None)."""
        for sock, _ in self._poller().poll(ms):
            if sock in self.monitors:
                r = self.monitors[sock]
                try:
                    ev = recv_monitor_message(sock, zmq.NOBLOCK)["event"]
                except zmq.Again:
                    continue
                if ev == zmq.EVENT_DISCONNECTED:
                    self.seen_down = True
                    self._unseal(r)
                    yield "down", r, None, None
                else:
                    yield "badkey", r, None, None
                continue
            r = next((rr for rr, s in self.socks.items() if s is sock), None)
            opener = None
            if r is None:
                r = next((rr for rr, x in self.sealed.items() if x[0] is sock), None)
                if r is None:
                    continue                 # its link was dropped in this poll
                opener = self.sealed[r][2]
            while not sock.closed and zio.readable(sock):
                frames = zio.recv(sock)
                try:
                    if opener is not None:
                        frames = opener.open(frames)
                    self.dump.write("recv", frames)
                    h = wire.header_of(frames)
                    payload = wire.decode(h, frames)
                    if h.get("k") == "offer" and opener is None:
                        self._offers[r] = parse_offer(h, payload)
                        continue
                    msg = "msg", r, h, payload
                except (wire.WireError, SealError) as e:   # a node's reply may be hostile
                    log.warning("driver: dropped a malformed reply from %s: %s",
                                self.name(r), e)
                    continue
                yield msg

    def drain(self) -> None:
        """Consume whatever arrived while idle (stale replies, connection events)."""
        for _ in self._poll(0):
            pass

    def name(self, r: int) -> str:
        return self.nodes[r][0]

    def collect(self, job: int, ranks: Iterable[int], kinds=("done",),
                timeout: Optional[float] = None,
                silent: str = "stopped answering") -> Dict[int, tuple]:
        """Wait for one reply of a kind in `kinds` for `job` from every rank in `ranks`.
        Raises PeerError (a node died, went silent, or reported a peer failure) or
        JobError (a node failed with an error of its own)."""
        timeout = self.timeout if timeout is None else timeout
        ranks = list(ranks)
        now = time.monotonic()
        seen = {r: now for r in ranks}
        replies, fails, culprits = {}, {}, {}
        grace_until = None
        while len(replies) + len(fails) < len(ranks):
            for what, r, h, payload in self._poll(50):
                if r not in seen or r in replies or r in fails:
                    continue
                if what == "down":
                    culprits[r] = f"party {self.name(r)!r} disconnected (process died?)"
                elif what == "badkey":
                    culprits[r] = (f"CURVE handshake with party {self.name(r)!r} failed "
                                   f"(its key does not match the cluster file)")
                elif h.get("job") == job:
                    seen[r] = time.monotonic()
                    if h.get("k") in kinds:
                        replies[r] = (h, payload)
                    elif h.get("k") == "fail":
                        fails[r] = h
                        grace_until = grace_until or time.monotonic() + min(2.0, timeout / 2)
            now = time.monotonic()
            for r in ranks:
                if r not in replies and r not in fails and now - seen[r] > timeout:
                    culprits.setdefault(r, f"party {self.name(r)!r} {silent} "
                                           f"(nothing for {timeout:g} s: dead or hung?)")
            if culprits or (grace_until and now > grace_until):
                break
        if culprits or fails:
            raise self._error(job, culprits, fails)
        return replies

    def _error(self, job, culprits, fails):
        parts = list(culprits.values())
        parts += [f"{self.name(r)}: {h.get('reason')}" for r, h in fails.items()]
        msg = f"job {job} failed: " + "; ".join(parts)
        own = [h for h in fails.values() if not h.get("peer")]
        if own and not culprits:
            return JobError(msg, str(own[0].get("etype", "RuntimeError")),
                            {self.name(r): str(h.get("reason")) for r, h in fails.items()})
        return PeerError(msg)

    def _close_socks(self) -> None:
        for s, _, _ in self.sealed.values():
            s.close(linger=500)
        self.sealed, self._offers = {}, {}
        for m in self.monitors:
            m.close(0)
        for s in self.socks.values():
            s.disable_monitor()
            s.close(linger=500)         # flush aborts to live nodes, drop the rest
        self.socks, self.monitors = {}, {}

    def close(self) -> None:
        self._close_socks()
        self.ctx.term()
