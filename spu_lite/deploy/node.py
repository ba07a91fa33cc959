"""`spu-lite node --cluster cluster.yaml --party alice`: one party's process.

The node listens at its address, connects to its peers (every link CURVE
authenticated and encrypted, bulk data sealed with AES-256-GCM; see runtime/net), and serves the driver's requests one
at a time:

    ping  -> pong                      (liveness; answered by the io thread)
    load  -> loaded {metadata}         run a loader for a party-owned input (loaders.py)
    job   -> done {profile, outputs} | fail {reason}   (jobs.py; only if the node's
                                       policy and every other party's allow it)
    abort                              fail the named job at once
    free                               forget a loaded input
    precompute -> precomputed {offline}   semi2k_ot: make correlations ahead (precompute.py)

While busy it sends the driver a heartbeat about every timeout/5 seconds, so a hung
node is told apart from a slow job. A failed job leaves the node serving: it tells
its peers (abort), drops queued outbound data, and sets up fresh protocol state for
the next job (the driver starts a new session after any failure).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional

from spu_lite.runtime.link import LinkModel, PeerError
from spu_lite.runtime.net import wire
from spu_lite.runtime.net.auth import CredentialError, load_secret
from spu_lite.runtime.net.endpoint import Endpoint
from spu_lite.runtime.net.transport import NetTransport
from spu_lite.runtime.party import DealerParty, Party, local_prg
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.ring import Ring

from . import handles, jobs, loaders, precompute
from .approvals import ApprovalStore
from .consent import ConsentGate
from .errors import public_reason
from .cluster_file import ClusterSpec
from .joblog import JobLog
from .policy import JobRefused
from .program_cache import ProgramCache
from .threads import limit_blas_threads

log = logging.getLogger("spu_lite.node")
MAX_LOADED = 64


class Node:
    def __init__(self, spec: ClusterSpec, name: str, loaders_extra: Optional[Dict[str, str]] = None,
                 on_result: Optional[Callable[[str, dict], None]] = None,
                 insecure_test_seed: bool = False, log_path: Optional[str] = None):
        _startup_checks(spec, name, insecure_test_seed)
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
                           spec.allowed_keys(), spec.timeout, spec.max_message_bytes,
                           sealed=spec.sealed_data)
        self.transport = ConsentGate(NetTransport(self.ep, spec.timeout,
                                                  LinkModel.parse(spec.net)),
                                     self.rank, spec.nparties, spec.names)
        self.proto_cls = get_protocol(spec.protocol)
        self.ring = Ring(spec.field)
        self.party = None
        self.session = None
        self.owner_prg = None
        self.loaded: "OrderedDict[str, list]" = OrderedDict()
        self.kept: Dict[str, object] = {}       # id -> this party's Share of a kept secret
        self.kept_origin: Dict[str, dict] = {}  # id -> {digest, index, owners} (policy.py)
        self.load_origin: Dict[str, str] = {}   # handle -> the loader that made it
        state = self.me.state_dir or os.path.join("spu-state", name)
        self.approvals = ApprovalStore(state)
        self.joblog = JobLog(log_path or os.path.join(state, "jobs.jsonl"), name)
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
        elif kind in ("job", "load", "free", "precompute"):
            self.control.put((route, header, wire.decode(header, frames), time.time()))

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
                route, header, payload, arrived = self.control.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(route, header, payload, arrived)

    def handle(self, route, header: dict, payload, arrived: Optional[float] = None) -> None:
        kind, job = header.get("k"), int(header.get("job", 0))
        # the first heartbeat after one interval: a job that ends sooner needs none
        self._last_hb = time.monotonic()
        self.busy = (route, job)
        try:
            if kind == "job":
                reply, out = jobs.run_job(self, header, payload, arrived)
            elif kind == "load":
                reply, out = self._load(header, payload), None
            elif kind == "precompute":
                reply, out = precompute.serve(self, header), None
            else:
                self.loaded.pop(str(header.get("handle")), None)
                return
            done = {"job": "done", "load": "loaded", "precompute": "precomputed"}[kind]
            self.ep.reply(route, wire.encode(dict(reply, k=done, job=job), out))
        except Exception as e:  # noqa: BLE001 - every failure is reported to the driver
            self._failed(route, job, e, kind in ("job", "precompute"))
            return
        finally:
            self.busy = None
        if kind == "job" and self.is_dealer:     # until the next request comes
            try:
                self.party.idle(lambda: not self.control.empty() or self._stop.is_set())
            except Exception:  # noqa: BLE001 - the next job starts afresh
                log.exception("%s: work ahead failed; starting a new session", self.name)
                self.session = None

    def _failed(self, route, job: int, e: Exception, in_job: bool) -> None:
        peer = isinstance(e, PeerError)
        reason = public_reason(e, self.name)      # the full text stays in this log
        refused = isinstance(e, JobRefused)
        log.warning("%s: job %d %s: %s: %s", self.name, job, "refused" if refused else "failed",
                    type(e).__name__, e, exc_info=not (peer or refused))
        if in_job and refused:          # peers waiting for this node read why (consent.py)
            self.transport.stop_peers(f"{self.name}: {reason}")
            if self.transport.allowed:  # it had started: state may be out of step
                self.session = None
        elif in_job:
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
        old, clean = self.party, self.session is not None     # None: the last job failed
        if self.is_dealer:
            self.party = DealerParty(self.rank, s.protocol, n, self.transport, s.field,
                                     s.fxp_bits, s.seed)
        else:
            self.party = Party(self.rank, s.protocol, n, self.transport, s.field, s.fxp_bits,
                               s.seed)
            self.owner_prg = local_prg(s.seed, f"owner{self.rank}")
        self.session = None
        self.party.setup()
        if not self.is_dealer:
            precompute.carry_pools(self, old, clean)     # semi2k_ot: correlations made ahead
        self.session = session

    def _load(self, header: dict, payload) -> dict:
        source = "driver code" if header.get("pickled") else str(header.get("name"))
        try:
            value = loaders.run(header, payload, self.loaders, self.me.trust_driver_code,
                                self.name)
        except Exception as e:
            self.joblog.append(kind="load", job=header.get("job"), loader=source,
                               outcome="failed", reason=f"{type(e).__name__}: {e}")
            raise
        meta, leaves = handles.describe(value)
        handle = str(header["handle"])
        self.loaded[handle], self.load_origin[handle] = leaves, source
        while len(self.loaded) > MAX_LOADED:
            self.load_origin.pop(self.loaded.popitem(last=False)[0], None)
        self.joblog.append(kind="load", job=header.get("job"), loader=source,
                           leaves=len(leaves), outcome="ok")
        return {"meta": meta}

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self.ep.close()
        self.joblog.close()


def _startup_checks(spec: ClusterSpec, name: str, insecure_test_seed: bool) -> None:
    """A seeded cluster file makes every key and share predictable: refused unless the
    operator asked for it explicitly. Running driver code is allowed but said loudly."""
    if spec.seed is not None and not insecure_test_seed:
        raise CredentialError(f"{name}: the cluster file sets `seed: {spec.seed}`, which makes "
                              f"every key and share predictable (tests only); remove it, or "
                              f"start the node with --insecure-test-seed")
    if spec.seed is not None:
        log.warning("%s: INSECURE: seeded keys and shares (--insecure-test-seed); never use "
                    "this with real data", name)
    me = spec.parties[spec.rank(name)]
    if me.trust_driver_code:
        log.warning("%s: trust_driver_code is on: this node runs loader code the driver "
                    "sends (arbitrary code with this node's rights)", name)


def run_node(cluster_path: str, name: str, loaders_extra=None,
             insecure_test_seed: bool = False, log_path: Optional[str] = None) -> None:
    """Start a node and serve until SIGINT/SIGTERM."""
    import signal
    from .cluster_file import load
    node = Node(load(cluster_path), name, loaders_extra, insecure_test_seed=insecure_test_seed,
                log_path=log_path)
    stop = lambda *_: node.stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        node.serve_forever()
    finally:
        node.close()
