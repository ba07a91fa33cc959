"""`spu-lite node --cluster cluster.yaml --party alice`: one party's process.

The node listens at its address, connects to its peers (every link CURVE
authenticated and encrypted, see runtime/net), and serves the driver's requests one
at a time:

    ping  -> pong                      (liveness; answered by the io thread)
    load  -> loaded {metadata}         run a loader for a party-owned input (loaders.py)
    job   -> done {profile, outputs} | fail {reason}   (jobs.py)
    abort                              fail the named job at once
    free                               forget a loaded input

While busy it sends the driver a heartbeat about every timeout/5 seconds, so a hung
node is told apart from a slow job. A failed job leaves the node serving: it tells
its peers (abort), drops queued outbound data, and sets up fresh protocol state for
the next job (the driver starts a new session after any failure).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional

from runtime.link import LinkModel, PeerError
from runtime.net import wire
from runtime.net.auth import CredentialError, load_secret
from runtime.net.endpoint import Endpoint
from runtime.net.transport import NetTransport
from runtime.party import DealerParty, Party, local_prg
from runtime.protocols import get_protocol

from . import handles, jobs, loaders
from .cluster_file import ClusterSpec
from .program_cache import ProgramCache
from .threads import limit_blas_threads

log = logging.getLogger("spu_lite.node")
MAX_LOADED = 64


class Node:
    def __init__(self, spec: ClusterSpec, name: str, loaders_extra: Optional[Dict[str, str]] = None,
                 on_result: Optional[Callable[[str, dict], None]] = None):
        self.spec = spec
        self.rank = spec.rank(name)
        self.me = spec.parties[self.rank]
        self.name = name
        self.is_dealer = name == spec.dealer
        self.loaders = dict(self.me.loaders, **(loaders_extra or {}))
        self.on_result = on_result
        if not self.me.secret_key_file:
            raise CredentialError(f"{name}: no secret_key_file in the cluster file")
        keys = load_secret(self.me.secret_key_file)
        if keys[0] != self.me.public_key:
            raise CredentialError(f"{self.me.secret_key_file} does not hold {name}'s key "
                                  f"(its public key differs from the cluster file's)")
        peers = {r: e for r, e in spec.endpoints().items() if r != self.rank}
        self._blas = limit_blas_threads(spec, self.rank)    # its share of this host's cores
        self.ep = Endpoint(name, self.me.listen or self.me.address, keys, peers,
                           spec.allowed_keys(), spec.timeout)
        self.transport = NetTransport(self.ep, spec.timeout, LinkModel.parse(spec.net))
        self.proto_cls = get_protocol(spec.protocol)
        self.party = None
        self.session = None
        self.owner_prg = None
        self.loaded: "OrderedDict[str, list]" = OrderedDict()
        self.kept: Dict[str, object] = {}       # id -> this party's Share of a kept secret
        self.results: Dict[str, dict] = {}
        self.programs = ProgramCache()         # parsed programs by sha256 of the IR text
        self.control: "queue.Queue" = queue.Queue()
        self.busy = None                       # (driver route, job id) while working
        self._last_hb = 0.0
        self._stop = threading.Event()
        self.ep.on_control = self._on_control
        self.ep.on_peer_down = self._on_peer_down
        self.ep.tick = self._tick

    # -- io thread callbacks -------------------------------------------------------------
    def _on_control(self, route, header, frames) -> None:
        kind = header.get("k")
        if kind == "ping":
            self.ep.reply(route, wire.encode({"k": "pong", "job": header.get("job"),
                                              "name": self.name}))
        elif kind == "abort":
            self.ep.mailbox.abort(int(header["job"]), f"driver: {header.get('reason')}")
        elif kind in ("job", "load", "free"):
            self.control.put((route, header, wire.decode(header, frames)))

    def _on_peer_down(self, r: int) -> None:
        if self.busy is not None:
            self.ep.mailbox.abort(None, f"party {self.spec.parties[r].name!r} disconnected "
                                        f"(process died?)")

    def _tick(self) -> None:
        busy = self.busy
        hb = min(1.0, self.spec.timeout / 5)
        if busy is not None and time.monotonic() - self._last_hb > hb:
            self._last_hb = time.monotonic()
            self.ep.reply(busy[0], wire.encode({"k": "hb", "job": busy[1]}))

    # -- the worker loop -------------------------------------------------------------------
    def serve_forever(self) -> None:
        log.info("%s (rank %d) listening on %s", self.name, self.rank,
                 self.me.listen or self.me.address)
        while not self._stop.is_set():
            try:
                route, header, payload = self.control.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(route, header, payload)

    def handle(self, route, header: dict, payload) -> None:
        kind, job = header.get("k"), int(header.get("job", 0))
        self.busy, self._last_hb = (route, job), 0.0
        try:
            if kind == "job":
                reply, out = jobs.run_job(self, header, payload)
            elif kind == "load":
                reply, out = self._load(header, payload), None
            else:
                self.loaded.pop(str(header.get("handle")), None)
                return
            self.ep.reply(route, wire.encode(dict(reply, k="done" if kind == "job" else "loaded",
                                                  job=job), out))
        except Exception as e:  # noqa: BLE001 - every failure is reported to the driver
            self._failed(route, job, e, kind == "job")
        finally:
            self.busy = None

    def _failed(self, route, job: int, e: Exception, in_job: bool) -> None:
        peer = isinstance(e, PeerError)
        reason = str(e) if peer else f"{type(e).__name__}: {e}"
        log.warning("%s: job %d failed: %s", self.name, job, reason, exc_info=not peer)
        if in_job:
            msg = wire.encode({"k": "abort", "job": job, "reason": f"{self.name}: {reason}"})
            for r in self.ep.peers:
                self.ep.send_peer(r, msg, nowait=True)
            self.session = None                 # protocol state may be out of step
            self.ep.reset_peer_links()
        self.ep.reply(route, wire.encode({"k": "fail", "job": job, "reason": reason,
                                          "peer": peer, "etype": type(e).__name__}))

    # -- protocol state ----------------------------------------------------------------------
    def ensure_session(self, session: str) -> None:
        """New Party objects and a fresh key setup with the peers when the driver starts
        a new session (first job of a driver, or after a failure)."""
        if session == self.session and self.party is not None:
            return
        s, n = self.spec, self.spec.nparties
        if self.is_dealer:
            self.party = DealerParty(self.rank, s.protocol, n, self.transport, s.field,
                                     s.fxp_bits, s.seed)
        else:
            self.party = Party(self.rank, s.protocol, n, self.transport, s.field, s.fxp_bits,
                               s.seed)
            self.owner_prg = local_prg(s.seed, f"owner{self.rank}")
        self.session = None
        self.party.setup()
        self.session = session

    def _load(self, header: dict, payload) -> dict:
        value = loaders.run(header, payload, self.loaders, self.me.trust_driver_code, self.name)
        meta, leaves = handles.describe(value)
        self.loaded[str(header["handle"])] = leaves
        while len(self.loaded) > MAX_LOADED:
            self.loaded.popitem(last=False)
        return {"meta": meta}

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self.ep.close()


def run_node(cluster_path: str, name: str, loaders_extra=None) -> None:
    """Start a node and serve until SIGINT/SIGTERM."""
    import signal
    from .cluster_file import load
    node = Node(load(cluster_path), name, loaders_extra)
    stop = lambda *_: node.stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        node.serve_forever()
    finally:
        node.close()
