"""The driver: NetworkCluster, the networked counterpart of InProcessCluster.

Same interface (share / run / last_profile / party_profiles / ring / nparties /
config), so spu.jit runs on it unchanged: `spu.init(cluster="cluster.yaml")` makes it
the default, or `spu.jit(f, cluster=NetworkCluster("cluster.yaml"))`.

What the driver sends: the program as IR text (to the computing parties only: the
semi2k dealer gets the job id and session, nothing else), public inputs, and each
party's own shares of driver-held secret inputs, their random pieces as 16-byte PRG
keys where the protocol allows (runtime/protocols/dealing.py: aby3 sends 2 arrays per
input instead of 6, semi2k 1 instead of 2), dealt with the same PRG draws as
InProcessCluster, so a seeded cluster gives bit-identical results. Party-owned
inputs are referred to by handle; their owners share them (jobs.py). What it receives:
every party's output shares (or, with reveal_to, only a receipt), per-party profiles,
heartbeats.

Consent: every node judges each job under its own policy (policy.py); if one refuses,
the job stops at every node before any output leaves it (consent.py), and `run` raises
JobRefused naming every party that refused and why.

Sessions: protocol keys are set up on the first job and again after any failure or
any node reconnect (a new session id), so a restarted node can serve the next job.
One driver at a time per cluster.
"""
from __future__ import annotations

import threading
import time
import uuid
import weakref
from typing import List, Optional, Sequence

import numpy as np

from spu_lite.compiler.ir import Program, Value
from spu_lite.runtime.alloc import tune_allocator
from spu_lite.runtime.link import PeerError
from spu_lite.runtime.net.auth import CredentialError, load_secret
from spu_lite.runtime.net.client import DriverClient, JobError
from spu_lite.runtime.party import local_prg
from spu_lite.runtime.profile import OpStats, Profile
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.ring import Ring

from . import loaders
from .cluster_file import ClusterSpec, load
from .handles import OwnedRef, PartyInput
from .policy import JobRefused
from .program_cache import ProgramShipping


class RevealReceipt:
    """What the driver gets back for outputs revealed to one party: no values."""

    def __init__(self, job: int, party: str, path: str, outputs, tag: str):
        self.job, self.party, self.path, self.outputs, self.tag = job, party, path, outputs, tag

    def __repr__(self):
        outs = ", ".join(f"{n}{tuple(s)}" for n, s, _ in self.outputs)
        return f"<revealed to {self.party!r} only: {outs} -> {self.path} (at {self.party})>"


class NetworkCluster:
    networked = True

    def __init__(self, cluster, secret_key_file: Optional[str] = None, check: bool = True,
                 connect_timeout: Optional[float] = None):
        """cluster: a cluster file path or ClusterSpec. With check, wait until every node
        answers (at most connect_timeout s, default max(timeout, 30))."""
        self.spec: ClusterSpec = load(cluster) if isinstance(cluster, str) else cluster
        key_file = secret_key_file or self.spec.driver_secret_file
        if not key_file:
            raise CredentialError("no driver secret_key_file in the cluster file")
        keys = load_secret(key_file)
        if keys[0] != self.spec.driver_key:
            raise CredentialError(f"{key_file} is not the driver key of the cluster file")
        self.config = self.spec.config()
        tune_allocator()      # the driver's arrays too: no fresh pages every job (alloc.py)
        self.ring = Ring(self.spec.field)
        self.proto_cls = get_protocol(self.spec.protocol)
        self.client = DriverClient(self.spec.endpoints(), keys, self.spec.timeout)
        self._driver_prg = local_prg(self.spec.seed, "driver")
        self.session: Optional[str] = None
        self.epoch = 0                         # bumped after every failure
        self._job = 0
        self._lock = threading.Lock()
        self._released: List[str] = []          # ids of kept secrets the driver dropped
        self.last_profile: Optional[Profile] = None
        self.party_profiles: List[Profile] = []
        self.last_phases: dict = {}            # seconds per phase of the last run (phases())
        self._shipping = ProgramShipping()     # programs the nodes hold by digest
        if check:
            self.ping(connect_timeout or max(self.spec.timeout, 30.0))

    @property
    def nparties(self) -> int:
        return self.spec.nparties

    def _next_job(self) -> int:
        self._job = max(self._job + 1, time.time_ns() // 1000)   # grows across drivers
        return self._job

    def _fail(self, job: int, e: Exception):
        """After a failure: abort the job everywhere, drop queued requests, new session."""
        for r in self.spec.endpoints():
            try:
                self.client.send(r, {"k": "abort", "job": job, "reason": str(e)[:500]})
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.client.reset()
        self.session, self.epoch = None, self.epoch + 1
        why = refusal(e.reasons.values() if isinstance(e, JobError) else ())
        if why is not None:
            return JobRefused(f"job {job}: {why}")
        if isinstance(e, JobError) and e.etype in ("InputError", "RangeError"):
            from spu_lite.frontend import InputError
            return InputError(str(e))
        return e

    def _request(self, ranks, header, payloads, kinds, only=None, per_rank=None, **kw):
        """Send `header` (or only[r] to rank r; per_rank(r) adds to the header) to every
        rank and collect the replies."""
        job = self._next_job()
        for r in ranks:
            h = (only or {}).get(r)
            if h is None:
                h = dict(header, **(per_rank(r) if per_rank else {}))
            self.client.send(r, dict(h, job=job), payloads.get(r))
        try:
            return job, self.client.collect(job, ranks, kinds, **kw)
        except (PeerError, JobError) as e:
            raise self._fail(job, e) from None

    def ping(self, timeout: Optional[float] = None) -> None:
        """Check every node answers (raises PeerError naming those that do not). The
        ping is repeated every 2 s: one that reaches a node still starting is lost."""
        deadline = time.monotonic() + (timeout or self.spec.timeout)
        with self._lock:
            while True:
                wait = max(0.1, min(2.0, deadline - time.monotonic()))
                try:
                    self._request(list(self.spec.endpoints()), {"k": "ping"}, {}, ("pong",),
                                  timeout=wait, silent="does not answer (not started, wrong "
                                  "address, or its keys do not match the cluster file?)")
                    return
                except PeerError:
                    if time.monotonic() >= deadline:
                        raise

    # -- data in --------------------------------------------------------------------------
    def share(self, ring_value: np.ndarray):
        """Deal shares of a driver-held ring array: one SeededShare per party (random
        pieces as 16-byte keys, protocols/dealing.py; the same draws as
        InProcessCluster.share, whose shares are these expanded)."""
        return self.proto_cls.deal_seeded(ring_value, self.nparties, self._driver_prg,
                                          self.ring)

    def load(self, handle: PartyInput):
        """Run a party-owned input's loader at its owner (once per handle and session
        epoch); returns the metadata tree (structure, shapes, dtypes) only."""
        got = handle.meta.get(id(self))
        if got is not None and got[0] == self.epoch:
            return got[1]
        r = self._owner_rank(handle.party)
        header, payload = loaders.request_for(handle.loader, handle.args, handle.kwargs)
        with self._lock:
            _, rep = self._request([r], dict(header, k="load", handle=handle.id),
                                   {r: payload}, ("loaded",))
        meta = rep[r][0]["meta"]
        handle.meta[id(self)] = (self.epoch, meta)
        return meta

    def _owner_rank(self, name: str) -> int:
        r = self.spec.rank(name)
        if r >= self.nparties:
            raise ValueError(f"{name!r} is the dealer: it computes nothing and owns no inputs")
        return r

    # -- run --------------------------------------------------------------------------------
    def run(self, program, inputs: Sequence, keep=None, options=None,
            reveal_to: Optional[str] = None, outputs=None):
        """Like InProcessCluster.run; inputs may also hold OwnedRef (party-owned).
        With reveal_to, returns a RevealReceipt instead of values."""
        t_start = time.perf_counter()
        n = self.nparties
        keep = list(keep or [False] * len(program.results))
        if reveal_to is not None and any(keep):
            raise ValueError("keep_secret and reveal_to do not go together")
        kept = [uuid.uuid4().hex if k and program.results[i].type.secret else None
                for i, k in enumerate(keep)]
        target = None if reveal_to is None else self._owner_rank(reveal_to)
        descs, payloads = [], {r: [] for r in range(n)}
        for x in inputs:
            if isinstance(x, OwnedRef):
                descs.append(["o", self._owner_rank(x.party), x.handle, x.leaf])
            elif isinstance(x, KeptShares):
                if x.cluster is not self:
                    raise ValueError("a secret kept on another cluster")
                descs.append(["k", x.id])
            else:
                descs.append("p" if isinstance(x, np.ndarray) else "s")
            for r in range(n):
                payloads[r].append(None if isinstance(x, (OwnedRef, KeptShares)) else
                                   x if isinstance(x, np.ndarray) else x[r])
        text, digest = self._shipping.text_of(program)
        header = {"k": "job", "inputs": descs,
                  "options": dict(options or {}), "reveal_to": target,
                  "outputs": _output_names(program, outputs), "tag": program.name,
                  "keep": kept}
        with self._lock:
            header["release"], self._released = self._released, []
            self.client.drain()
            if self.client.seen_down or self.session is None:
                self.client.seen_down = False
                self.session = f"{time.time_ns():x}"
            # the dealer (rank n) gets no program: the job id and session are all it needs;
            # it is sent first (a few bytes) so that it is ready when party 0 first asks
            ranks = sorted(self.spec.endpoints(), key=lambda r: r < n)
            t_send, w_send = time.perf_counter(), time.time()
            try:
                job, rep = self._request(ranks, dict(header, session=self.session), payloads,
                                         ("done",), only={n: {"k": "job", "session": self.session}},
                                         per_rank=lambda r: self._shipping.header(
                                             self.session, r, text, digest))
            except JobError as e:
                if e.etype != "ProgramNotCached":
                    raise
                self._shipping.forget()         # a node lost it: ship the text again
                self.session = f"{time.time_ns():x}"
                job, rep = self._request(ranks, dict(header, session=self.session, program=text,
                                                     program_sha=digest), payloads, ("done",),
                                         only={n: {"k": "job", "session": self.session}})
            self._shipping.acknowledge(range(n), digest)
            t_back, w_back = time.perf_counter(), time.time()
        self.party_profiles = [_profile(rep[r][0].get("profile", {}), rep[r][0].get("offline"))
                               for r in range(n)]
        self.last_profile = Profile.merge_max(self.party_profiles)
        if target is not None:
            h = rep[target][0]
            return RevealReceipt(job, h["revealed_to"], h["path"], h["outputs"], h["tag"])
        outs = []
        for i in range(len(program.results)):
            if kept[i] is not None:
                outs.append(KeptShares(self, kept[i]))
                continue
            vals = [rep[r][1][i] for r in range(n)]
            outs.append(vals[0] if isinstance(vals[0], np.ndarray)
                        else self.proto_cls.reconstruct_replies(vals, self.ring))
        self.last_phases = _phases(rep, n, (t_start, t_send, t_back, time.perf_counter()),
                                   (w_send, w_back))
        return outs

    def reveal_kept(self, kept: "KeptShares", ir_type) -> np.ndarray:
        """Open a kept secret to the driver (a one-value identity program)."""
        v = Value("0", ir_type)
        program = Program("reveal", [v], [], [v], self.ring.bits, self.spec.fxp_bits)
        return self.run(program, [kept])[0]

    def _release(self, kid: str) -> None:
        self._released.append(kid)        # sent with the next job (best effort)

    def close(self) -> None:
        self.client.close()


class KeptShares:
    """The parties' shares of a secret that stayed at the nodes (keep_secret); the
    driver holds only this id. Dropping the last reference releases them."""

    def __init__(self, cluster: NetworkCluster, kid: str):
        self.cluster, self.id = cluster, kid
        weakref.finalize(self, cluster._release, kid)

    def reveal(self, ir_type) -> np.ndarray:
        return self.cluster.reveal_kept(self, ir_type)


def refusal(reasons) -> Optional[str]:
    """The fullest of the parties' refusals, or None. Every party that refused says so
    (consent.py) and names every refusal it read, the same text for the same party;
    one whose link failed before it read the others names fewer, so the longest names
    them all."""
    found = [w[len("JobRefused: "):] for w in reasons if w.startswith("JobRefused: ")]
    return max(found, key=len) if found else None


def _profile(d, offline=None) -> Profile:
    p = Profile()
    for name, (calls, secs, nbytes, rounds) in d.items():
        p.ops[name] = OpStats(int(calls), float(secs), int(nbytes), int(rounds))
    if offline:                         # correlations made by the parties (semi2k_ot)
        calls, secs, nbytes, msgs = offline
        p.offline = OpStats(int(calls), float(secs), int(nbytes), int(msgs))
    return p


def _phases(rep, n, ticks, walls) -> dict:
    """Where a run's time went, in seconds: driver-side preparation, the nodes' phases
    (max over computing parties: setup, program load, input sharing, the run and the
    part of it spent waiting for peers), transit (the rest of the round trip: requests
    out and replies back, encoding, encryption, hand-offs), split by wall clocks into
    dispatch (until the last node started) and return (from the last node's end; both
    meaningful only with the nodes on this machine), then reconstruction."""
    t_start, t_send, t_back, t_end = ticks
    node, starts, ends = {}, [], []
    for r in range(n):
        ph = dict(rep[r][0].get("phases") or {})
        starts.append(float(ph.pop("wall_start", walls[0])))
        ends.append(float(ph.pop("wall_end", walls[1])))
        for k, v in ph.items():
            node[k] = max(node.get(k, 0.0), float(v))
    return dict({"prepare": t_send - t_start}, **node,
                transit=max(0.0, t_back - t_send - node.get("node", 0.0)),
                dispatch=max(starts) - walls[0], back=walls[1] - max(ends),
                reconstruct=t_end - t_back, total=t_end - t_start)


def _output_names(program, compiled) -> List:
    """[[name, dtype, shape]] of the outputs, names from the output pytree ("out",
    "out[0]", "out['loss']", ...)."""
    if compiled is None:
        return [[f"out{i}", "<f8", list(r.type.shape)] for i, r in enumerate(program.results)]
    import jax
    k = len(compiled.out_avals)
    tree = jax.tree_util.tree_unflatten(compiled.out_tree, list(range(k)))
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return [["out" + jax.tree_util.keystr(p), np.dtype(a.dtype).str, list(a.shape)]
            for p, a in zip(paths, compiled.out_avals)]


_default: Optional[NetworkCluster] = None


def init(cluster, as_: str = "driver", **kw):
    """spu.init(cluster="cluster.yaml", as_="driver"): spu.jit now runs on the cluster.
    as_=PARTY instead starts that party's node in this process (background thread)
    and returns the Node (its `.results` hold outputs revealed to it)."""
    global _default
    from spu_lite import api
    if as_ == "driver":
        _default = NetworkCluster(cluster, **kw)
        api.set_default_cluster(_default)
        return _default
    from .node import Node
    node = Node(load(cluster) if isinstance(cluster, str) else cluster, as_, **kw)
    threading.Thread(target=node.serve_forever, name=f"node-{as_}", daemon=True).start()
    return node
