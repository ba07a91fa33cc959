"""One party's sockets and its io thread.

    ROUTER  bound at the party's address, CURVE server; receives from every peer and
            from the driver. The ZAP handler (auth.py) admits only the cluster's keys
            and stamps each message with the sender's name (`User-Id`).
    DEALER  one per peer, CURVE client (this party's key pair, the peer's public key
            as server key): outbound data to that peer. Used only under `send_lock`.
    sealed  (unless `sealed=False`) a plain ROUTER on a second, ephemeral port for data
            sealed with AES-256-GCM (sealed.py): CURVE costs ~15x more per byte. At
            start this party offers every peer a key for it over the CURVE DEALER; a
            peer that restarts offers anew and gets a fresh offer back. A node offers
            the driver a key when the driver first writes to it; the driver then sends
            requests sealed and gets the replies sealed back on the same connection.
            Offers are taken up at a job's start (`use_offers`), so the messages of one
            job to one party travel on one connection, in order.

Anything received may be hostile, even from an authenticated peer or the driver: a
message larger than `max_message_bytes` (libzmq's ZMQ_MAXMSGSIZE also caps each
frame, disconnecting a sender that exceeds it), one that does not follow the wire
format (wire.WireError), or one whose handling raises anything at all is dropped and
logged with its sender; the io thread never dies of a message. The mailbox bounds
what is kept for later jobs.

The io thread owns the ROUTER and the DEALERs' monitor sockets: it files peer data
into the Mailbox, hands driver requests to `on_control`, sends replies queued with
`reply` (woken through a pipe), calls `tick` about every 50 ms, and reports a peer
whose connection dropped to `on_peer_down`. Sending data never goes through the io
thread: the job thread writes to the peer's DEALER directly (zero-copy frames).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Callable, Dict, List, Optional, Tuple

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..link import PeerError
from . import wire, zio
from .auth import (ClusterAuthenticator, curve_client, curve_server, open_private,
                   require_curve)
from .mailbox import Mailbox
from .sealed import KEY_BYTES, LINK_BYTES, TAG_BYTES, Openers, Sealer

log = logging.getLogger("spu_lite.net")
DUMP_ENV = "SPU_LITE_WIRE_DUMP"
DEFAULT_MAX_MESSAGE = 1024 << 20
LOG_FIRST, LOG_EVERY = 100, 1000
MAX_DRIVER_LINKS = 64          # driver connections this node keeps a sealed link for


def host_of(address: str) -> str:
    """'host:port' -> 'host' (also '[::1]:port' -> '[::1]')."""
    return address.rsplit(":", 1)[0]


def parse_offer(header: dict, payload) -> tuple:
    """(port, key, link) of an offer message, or WireError."""
    port = header.get("port")
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 and
            isinstance(payload, tuple) and len(payload) == 2 and
            all(isinstance(x, bytes) for x in payload) and
            len(payload[0]) == KEY_BYTES and len(payload[1]) == LINK_BYTES):
        raise wire.WireError("bad offer")
    return port, payload[0], payload[1]


class WireDump:
    """Debug hook: with SPU_LITE_WIRE_DUMP=DIR set, append the plaintext of every frame
    this party sends / receives (i.e. before CURVE encryption / after decryption) to
    DIR/NAME.sent / DIR/NAME.recv (mode 0600: they hold plaintext shares). For tests
    that check what a party gets to see."""

    def __init__(self, name: str):
        d = os.environ.get(DUMP_ENV)
        self.files = None
        if d:
            os.makedirs(d, exist_ok=True)
            self.files = {k: open_private(os.path.join(d, f"{name}.{k}"), append=True)
                          for k in ("sent", "recv")}
            self.lock = threading.Lock()

    def write(self, kind: str, frames) -> None:
        if self.files:
            with self.lock:
                f = self.files[kind]
                for fr in frames:
                    f.write(fr.tobytes() if hasattr(fr, "tobytes") else
                            fr.bytes if hasattr(fr, "bytes") else bytes(fr))
                f.flush()


class Endpoint:
    def __init__(self, name: str, bind: str, keys: Tuple[bytes, bytes],
                 peers: Dict[int, Tuple[str, str, bytes]], allowed: Dict[bytes, str],
                 timeout: float, max_message_bytes: int = DEFAULT_MAX_MESSAGE,
                 sealed: bool = True):
        require_curve()
        self.name, self.bind, self.keys, self.timeout = name, bind, keys, timeout
        self.max_message = int(max_message_bytes)
        self.dropped = 0                               # malformed or oversized messages
        self._dropped_from: Dict[str, int] = {}
        self.peers = dict(peers)                       # rank -> (name, address, public key)
        self.rank_of = {n: r for r, (n, _, _) in self.peers.items()}
        self.allowed = dict(allowed)                   # public key -> name
        self.mailbox = Mailbox({r: n for r, (n, _, _) in self.peers.items()},
                               max_future_bytes=2 * self.max_message)
        self.send_lock = threading.Lock()
        self.dump = WireDump(name)
        self.on_control: Callable = lambda route, header, frames: None
        self.on_peer_down: Callable[[int], None] = lambda rank: None
        self.tick: Callable[[], None] = lambda: None
        self._outbox: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self.ctx = zmq.Context()
        self.auth = ClusterAuthenticator(self.ctx, self.allowed, name).begin()
        self.router = self.ctx.socket(zmq.ROUTER)
        curve_server(self.router, *keys)
        self.router.linger = 0
        self.router.maxmsgsize = self.max_message
        try:
            self.router.bind(f"tcp://{bind}")
        except zmq.ZMQError as e:
            self.router.close(0)
            self.auth.stop()
            self.ctx.term()
            raise zmq.ZMQError(e.errno, f"{name} cannot listen on {bind}: {e}") from None
        self.dealers: Dict[int, zmq.Socket] = {}
        self.monitors: Dict[zmq.Socket, int] = {}
        # sealed data: links this party offered (inbound), and per peer the offer it
        # took up (outbound): a plain DEALER and its Sealer; offers not yet taken up
        self.openers = Openers(max_links=4 * len(self.peers) + 4 * MAX_DRIVER_LINKS)
        self.bulk: Optional[zmq.Socket] = None
        self.bulk_out: Dict[int, Tuple[int, zmq.Socket, Sealer]] = {}
        self._offers_in: Dict[int, tuple] = {}
        self._driver_links: Dict[bytes, bytes] = {}     # CURVE route -> link offered
        if sealed:
            self.bulk = self.ctx.socket(zmq.ROUTER)
            self.bulk.linger = 0
            self.bulk.maxmsgsize = self.max_message + TAG_BYTES
            self.bulk.bind(f"tcp://{host_of(bind)}:0")
            self.bulk_port = int(self.bulk.last_endpoint.rsplit(b":", 1)[1])
        for r in self.peers:
            self._connect(r)
            self._offer(r, reply=False)
        self._wake_r, self._wake_w = os.pipe()
        self.thread = threading.Thread(target=self._loop, name=f"{name}-io", daemon=True)
        self.thread.start()

    # -- outbound ----------------------------------------------------------------------
    def _connect(self, r: int) -> None:
        _, address, server_key = self.peers[r]
        s = self.ctx.socket(zmq.DEALER)
        curve_client(s, *self.keys, server_key)
        s.linger = 0
        s.sndhwm = 100_000
        s.sndtimeo = int(self.timeout * 1000)
        s.connect(f"tcp://{address}")
        self.monitors[s.get_monitor_socket(zmq.EVENT_DISCONNECTED |
                                           zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                                           zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)] = r
        self.dealers[r] = s

    def _offer(self, r: int, reply: bool) -> None:
        """Offer peer r a fresh key for sealed data to this party (over CURVE)."""
        if self.bulk is None:
            return
        key, link = self.openers.offer(("peer", r))
        msg = wire.encode({"k": "offer", "port": self.bulk_port, "reply": reply}, (key, link))
        with self.send_lock:
            try:
                self.dealers[r].send_multipart(msg, zmq.NOBLOCK)
            except zmq.Again:
                log.warning("%s: could not offer %s a sealed link (queue full)", self.name,
                            self.peers[r][0])

    def _unseal(self, r: int) -> None:
        """Peer r's connection dropped (it may have restarted on a new data port): send
        it data over CURVE again, and offer anew so both sides renegotiate once it is
        back (the offer waits in the DEALER's queue until then)."""
        with self.send_lock:
            out = self.bulk_out.pop(r, None)
            self._offers_in.pop(r, None)
            if out is not None:
                out[1].close(0)
        self._offer(r, reply=False)

    def use_offers(self) -> None:
        """Take up the peers' latest offers (called by the job thread at a job's start:
        the job's messages to a peer then all go one way)."""
        with self.send_lock:
            offers, self._offers_in = self._offers_in, {}
            for r, (port, key, link) in offers.items():
                old = self.bulk_out.get(r)
                if old is not None and old[0] == port:
                    sock = old[1]
                else:
                    if old is not None:
                        old[1].close(0)
                    sock = self._plain_dealer(f"{host_of(self.peers[r][1])}:{port}")
                self.bulk_out[r] = (port, sock, Sealer(key, link, 0))

    def _plain_dealer(self, address: str) -> zmq.Socket:
        s = self.ctx.socket(zmq.DEALER)
        s.linger = 0
        s.sndhwm = 100_000
        s.sndtimeo = int(self.timeout * 1000)
        s.connect(f"tcp://{address}")
        return s

    def send_peer(self, r: int, frames: List, nowait: bool = False) -> None:
        """Send one message to peer r (zero-copy for large frames; sealed if r took
        up an offer). nowait: drop it rather than wait if the peer's queue is full (for
        best-effort aborts)."""
        self.dump.write("sent", frames)
        with self.send_lock:
            sock = self.dealers[r]
            out = self.bulk_out.get(r)
            if out is not None:
                sock, frames = out[1], out[2].seal(frames)
            try:
                zio.send(sock, frames, zio.NOBLOCK if nowait else 0)
            except zmq.Again:
                if nowait:
                    return
                raise PeerError(f"party {self.peers[r][0]!r} accepts no data for "
                                f"{self.timeout:g} s (dead or hung?)") from None

    def reset_peer_links(self) -> None:
        """Drop all queued outbound data (after a failed job) by reconnecting."""
        self.reply(None, "reset")

    def reply(self, route: Optional[bytes], frames) -> None:
        """Queue frames for the driver connection `route` (sent by the io thread)."""
        self._outbox.put((route, frames))
        os.write(self._wake_w, b"x")

    # -- io thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if self.bulk is not None:
            poller.register(self.bulk, zmq.POLLIN)
        for m in self.monitors:
            poller.register(m, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                events = dict(poller.poll(50))
            except zmq.ZMQError:
                break
            if self.router in events:
                self._drain_router()
            if self.bulk is not None and self.bulk in events:
                self._drain_bulk()
            if self._wake_r in events:
                os.read(self._wake_r, 4096)
                self._flush_outbox(poller)
            for m in list(self.monitors):
                if m in events:
                    self._monitor_event(m)
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - never kill the io thread
                log.exception("%s: tick failed", self.name)

    def _drain_router(self) -> None:
        for _ in range(1000):
            if not zio.readable(self.router):             # cheaper than zmq.Again
                return
            frames = zio.recv(self.router)
            if len(frames) < 2:
                continue
            sender = frames[1].get("User-Id")
            self.dump.write("recv", frames[1:])
            try:
                size = sum(len(f) for f in frames[1:])
                if size > self.max_message:       # always logged: costs the sender the bytes
                    self._drop(sender, f"a message of {size} bytes, which exceeds the cap of "
                                       f"{self.max_message} (max_message_mb)", always=True)
                    continue
                self._dispatch(sender, frames[0].bytes, frames[1:], size)
            except Exception as e:  # noqa: BLE001 - anything received may be hostile
                self._drop(sender, f"a malformed message ({type(e).__name__}: {str(e)[:200]})")

    def _drain_bulk(self) -> None:
        """Sealed messages: open, then handle exactly as if they came over CURVE from
        the party the link was offered to."""
        for _ in range(1000):
            if not zio.readable(self.bulk):
                return
            frames = zio.recv(self.bulk)
            sender = "a plain connection"
            try:
                size = sum(len(f) for f in frames[1:])
                if size > self.max_message + 64 * len(frames):
                    self._drop(sender, f"a message of {size} bytes, which exceeds the cap "
                                       f"of {self.max_message} (max_message_mb)", always=True)
                    continue
                (kind, who), link, plain = self.openers.open(frames[1:])
                if kind == "peer":
                    sender = self.peers[who][0]
                    self.dump.write("recv", plain)
                    self._dispatch(sender, None, plain, size, sealed=True)
                else:
                    sender = "driver"
                    self.dump.write("recv", plain)
                    self._dispatch(sender, ("sealed", frames[0].bytes, link), plain, size,
                                   sealed=True)
            except Exception as e:  # noqa: BLE001 - anything received may be hostile
                self._drop(sender, f"a message that does not open or is malformed "
                                   f"({type(e).__name__}: {str(e)[:200]})")

    def _drop(self, sender: str, what: str, always: bool = False) -> None:
        """Count and log a dropped message: the first LOG_FIRST per sender, then every
        LOG_EVERY-th (a hostile sender cannot flood the log)."""
        self.dropped += 1
        n = self._dropped_from[sender] = self._dropped_from.get(sender, 0) + 1
        if always or n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning("%s: dropped %s from %s (%d dropped from it so far)", self.name, what,
                        sender, n)

    def _dispatch(self, sender: str, route, frames, size: int, sealed: bool = False) -> None:
        header = wire.header_of(frames)
        kind = header.get("k")
        if not isinstance(kind, str):
            raise wire.WireError("header has no kind")
        if kind == "offer" and not sealed and sender in self.rank_of:
            r = self.rank_of[sender]
            self._offers_in[r] = parse_offer(header, wire.decode(header, frames))
            if not header.get("reply"):       # the peer (re)started: it lost our offer
                self._offer(r, reply=True)
        elif sender in self.rank_of:
            r = self.rank_of[sender]
            if kind == "d":
                job = wire.job_id(header)
                if not self.mailbox.put(r, job, wire.decode(header, frames), size):
                    if job > self.mailbox.job:
                        self._drop(sender, "data for a later job (over the mailbox bound, "
                                           "or too far ahead)")
            elif kind == "stop":
                self.mailbox.stop(r, wire.job_id(header), str(header.get("reason"))[:1000])
            elif kind == "abort":
                self.mailbox.abort(wire.job_id(header), str(header.get("reason"))[:1000])
        elif sender == "driver":
            if kind != "ping":
                wire.job_id(header)
            if not sealed:
                self._offer_driver(route)
            self.on_control(route, header, frames)

    def _offer_driver(self, route: bytes) -> None:
        """Offer a driver connection that wrote over CURVE a sealed link (once per
        connection; the driver takes it up before its next request)."""
        if self.bulk is None or route in self._driver_links:
            return
        while len(self._driver_links) >= MAX_DRIVER_LINKS:     # the oldest connection
            self.openers.forget(("driver", next(iter(self._driver_links))))
            del self._driver_links[next(iter(self._driver_links))]
        key, link = self.openers.offer(("driver", route))
        self._driver_links[route] = link
        self.reply(route, wire.encode({"k": "offer", "port": self.bulk_port}, (key, link)))

    def _flush_outbox(self, poller) -> None:
        while True:
            try:
                route, frames = self._outbox.get_nowait()
            except queue.Empty:
                return
            if frames == "reset":
                with self.send_lock:
                    for r, s in list(self.dealers.items()):
                        mon = next(m for m, rr in self.monitors.items() if rr == r)
                        poller.unregister(mon)
                        del self.monitors[mon]
                        s.disable_monitor()
                        mon.close(0)
                        s.close(linger=500)     # flush aborts to live peers, drop the rest
                        self._connect(r)
                        out = self.bulk_out.get(r)
                        if out is not None:
                            out[1].close(linger=500)
                            self.bulk_out[r] = (out[0], self._plain_dealer(
                                f"{host_of(self.peers[r][1])}:{out[0]}"), out[2])
                    for m in self.monitors:
                        poller.register(m, zmq.POLLIN)
                continue
            try:
                if isinstance(route, tuple):          # ("sealed", route, link): seal back
                    sealer = self.openers.replies(route[2])
                    if sealer is None:
                        log.warning("%s: reply to the driver lost: its link was dropped",
                                    self.name)
                        continue
                    zio.send(self.bulk, [route[1]] + sealer.seal(list(frames)), zio.NOBLOCK)
                else:
                    zio.send(self.router, [route] + list(frames), zio.NOBLOCK)
            except zmq.ZMQError as e:
                log.warning("%s: reply to the driver lost: %s", self.name, e)

    def _monitor_event(self, m) -> None:
        try:
            ev = recv_monitor_message(m, zmq.NOBLOCK)
        except zmq.Again:
            return
        r = self.monitors.get(m)
        if r is None:
            return
        if ev["event"] == zmq.EVENT_DISCONNECTED:
            self._unseal(r)
            self.on_peer_down(r)
        else:
            log.error("%s: CURVE handshake with %s failed (wrong keys in the cluster file?)",
                      self.name, self.peers[r][0])

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.thread.join(2)
        for m in self.monitors:
            m.close(0)
        for s in self.dealers.values():
            s.close(0)
        for out in self.bulk_out.values():
            out[1].close(0)
        if self.bulk is not None:
            self.bulk.close(0)
        self.router.close(0)
        self.auth.stop()
        self.ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)
