"""What a node does for one job.

1. Make the job current (messages of other jobs are kept apart).
2. Consent (policy.py, consent.py): judge the job as this party sees it under its own
   policy, then send every other computing party the verdict together with a
   fingerprint of the job, ahead of any protocol message. A node that refuses runs
   nothing. A node that allows starts at once: a peer's verdict is read in front of
   that peer's first message, and every verdict before anything leaves the
   computation (step 6), so a party that refuses, or a driver that sent the parties
   different jobs, stops every party and no subset of parties can open a secret to
   the driver on its own. A program with `reveal` ops waits for every verdict before
   it runs. Refused programs are recorded as pending for the operator.
3. On a new session, set up fresh protocol state with the peers.
4. Inputs: public arrays and this party's shares come with the job from the driver,
   random pieces as 16-byte keys (runtime/protocols/dealing.py), expanded here and
   checked against the program's inputs. Party-owned inputs: their owner encodes
   each one, deals shares with its own PRG (Protocol.deal_seeded, keys again) and
   sends every computing party its share in one message; the others receive them.
   The plaintext stays at the owner.
5. Run the program (runtime.party.Party, the same code as in-process).
6. Outputs: by default every party returns its shares to the driver (party 0 also
   the public outputs), which reconstructs them. Outputs the driver asked to keep
   (keep_secret) stay at the parties under an id (`node.kept`, with their origin in
   `node.kept_origin`: the digest of the job that made them and whose data went in);
   later jobs name them as inputs ["k", id], and the driver's releases (ids of handles
   it dropped) ride on the next job. With `reveal_to`, the parties send
   their output shares to that party only; it reconstructs and decodes them, keeps
   them in `node.results`, writes OUTPUT_DIR/TAG-JOB.npz, and the driver receives
   only a receipt (names, shapes, dtypes, path).
7. Every job, served, refused or failed, is one line of the node's job log (joblog.py).

The semi2k dealer gets only the job id and session (the driver sends it no program):
it answers P_0's requests, which carry kinds and shapes only.
"""
from __future__ import annotations

import os
import re
import time
from types import SimpleNamespace
from typing import List, Optional

import numpy as np

from spu_lite.runtime.executor import ExecutionError
from spu_lite.runtime.link import PeerError
from spu_lite.runtime.net.auth import open_private
from spu_lite.runtime.net.wire import WireError
from spu_lite.runtime.protocols.base import Share
from spu_lite.runtime.protocols.dealing import SeededShare, SeedError
from spu_lite.codec import decode, encode

from .consent import fingerprint
from .policy import JobRefused, decide, owners_of, view_of_job


def run_job(node, h: dict, payload, arrived: Optional[float] = None):
    """Serve one job; `arrived`: when the io thread received it (wall clock)."""
    t0 = time.perf_counter()
    queued = max(0.0, time.time() - arrived) if arrived else 0.0
    job = int(h["job"])
    node.transport.start_job(job)
    if node.is_dealer:
        return _serve_as_dealer(node, h, job)
    view, outcome, why = None, "failed", ""
    record = {}
    gate = node.transport
    try:
        for kid in h.get("release") or ():
            node.kept.pop(str(kid), None)
            node.kept_origin.pop(str(kid), None)
        t1 = time.perf_counter()
        program, ir_hash = node.programs.resolve(h)     # by digest; the IR text on a miss
        t2 = time.perf_counter()
        view = view_of_job(node, h, h["program"], program, ir_hash)
        why = _judge(node, h, view, ir_hash)
        if not gate.allowed or view.opens:
            gate.settle()             # refused here, or it opens values: all must agree
        ta = time.perf_counter()
        vals, deferred = _local_inputs(node, h["inputs"], payload, program)
        tb = time.perf_counter()
        if deferred is not None:
            gate.settle()             # a refusal reads the same at every party
            raise deferred
        node.ensure_session(str(h["session"]))
        t3 = time.perf_counter()
        try:
            reply, out, record = _run(node, job, h, vals, program, view)
        except ExecutionError as e:   # a verdict read during an op (consent.py)
            if isinstance(e.__cause__, JobRefused):
                raise e.__cause__ from None
            raise
        t4 = time.perf_counter()
        reply["phases"]["inputs"] += tb - ta
        reply["phases"].update(queue=queued, program=t2 - t1, setup=t3 - t2 - (tb - ta),
                               consent_wait=gate.consent_wait, node=t4 - t0,
                               wall_start=time.time() - (t4 - t0), wall_end=time.time())
        outcome = "ok"
        return reply, out
    except JobRefused as e:
        outcome, why = "refused", str(e)
        raise
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        raise
    finally:
        node.joblog.append(
            kind="job", job=job, digest=view.digest if view else None,
            program=view.name if view else None, inputs=view.inputs if view else None,
            outputs=[{"name": o[0], "to": to} for o, to in zip(h.get("outputs") or (),
                                                                 view.outputs)]
            if view else None, seconds=round(time.perf_counter() - t0, 6),
            outcome=outcome, reason=why, **record)


def _run(node, job: int, h: dict, vals: List, program, view):
    t0 = time.perf_counter()
    inputs = _owned_inputs(node, h["inputs"], vals, program)
    comm, dealer = node.party.comm, node.spec.nparties      # the semi2k dealer's rank
    t1, wait0, dealer0 = time.perf_counter(), comm.wait, comm.wait_from.get(dealer, 0.0)
    node.party.options = dict(h.get("options") or {})
    outs, prof = node.party.run(program, inputs)
    node.transport.settle()            # every verdict, before anything leaves the run
    o = prof.offline                   # semi2k_ot: correlations made during the job
    reply = {"profile": {k: [s.calls, s.seconds, s.bytes, s.rounds] for k, s in prof.ops.items()},
             "offline": [o.calls, o.seconds, o.bytes, o.rounds],
             "phases": {"inputs": t1 - t0, "run": time.perf_counter() - t1,
                        "run_wait": comm.wait - wait0,
                        "wait_dealer": comm.wait_from.get(dealer, 0.0) - dealer0}}
    record = {"bytes": prof.total.bytes, "rounds": prof.total.rounds}
    keep = h.get("keep") or [None] * len(outs)
    owners = owners_of(node, h)
    for i, kid in enumerate(keep):
        if kid is not None and isinstance(outs[i], Share):
            node.kept[str(kid)] = outs[i]          # stays here; the driver gets nothing
            node.kept_origin[str(kid)] = {"digest": view.digest, "index": i, "owners": owners}
            outs[i] = None
    if h.get("reveal_to") is None:
        return reply, [_for_driver(node, o) for o in outs], record
    reply.update(_reveal(node, job, h, program, outs, int(h["reveal_to"])))
    return reply, None, record


def _serve_as_dealer(node, h: dict, job: int):
    t0, before, outcome, why = time.perf_counter(), None, "failed", ""
    try:
        node.ensure_session(str(h["session"]))
        before = node.party.dealer.requests_served
        node.party.serve_job()
        outcome = "ok"
        return {}, None
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        raise
    finally:
        served = node.party.dealer.requests_served - before if before is not None else 0
        node.joblog.append(kind="dealer", job=job, requests=served,
                           seconds=round(time.perf_counter() - t0, 6), outcome=outcome,
                           reason=why)


def _judge(node, h: dict, view, ir_hash: str) -> str:
    """Judge the job under this party's policy (a refusal is recorded as pending for
    the operator) and send the verdict to the other computing parties (consent.py);
    returns why."""
    decisions = node.approvals.decisions()
    ok, why = decide(node.me.policy, view, decisions)
    if not ok and decisions.get(view.digest) != "deny":
        node.approvals.add_pending(view, int(h["job"]), why)
        why += f"; its operator can review it with `spu-lite approve --party {node.name}`"
    node.transport.open(fingerprint(h, ir_hash), ok, why)
    return why


def _for_driver(node, o):
    """What the driver needs of an output: public values from party 0 only, of a
    Share what reconstruct_replies reads (aby3: P0 x0 + x1, P1 x2, P2 nothing)."""
    if not isinstance(o, Share):
        return o if node.rank == 0 else None
    return node.proto_cls.reply_share(o, node.rank)


def _local_inputs(node, descs: List, payload, program):
    """The inputs this party has without its peers: descs[i] is "p" (a public array),
    "s" (this party's share: a SeededShare, or a Share; both in payload[i]; keys are
    expanded here), ["k", id] (a secret kept at the parties by an earlier job) or
    ["o", owner rank, handle, leaf] (party-owned: left for _owned_inputs). Runs
    before this party judged the job's verdicts, so it sends nothing, and an error is
    returned to be raised once they are (a refusal still reads the same at every
    party)."""
    vals = list(payload or [None] * len(descs))
    if len(vals) != len(descs):
        return vals, WireError(f"{len(vals)} input payloads for {len(descs)} inputs")
    dtype = node.ring.dtype
    for i, d in enumerate(descs):
        if isinstance(d, list) and d[0] == "k":
            if str(d[1]) not in node.kept:
                return vals, RuntimeError(f"{node.name} holds no kept secret "
                                          f"{str(d[1])[:8]} (restarted, or released?)")
            vals[i] = node.kept[str(d[1])]
        elif d == "s":
            try:
                vals[i] = _own_share(node, vals[i], program.params[i], dtype)
            except SeedError as e:
                return vals, WireError(f"input {i}: {e}")
    return vals, None


def _owned_inputs(node, descs: List, vals: List, program) -> List:
    """Party-owned inputs: their owner encodes each one, deals shares with its own PRG
    (keys travel) and sends every computing party its share in one message; the
    others receive theirs. After this party's own verdict: a party that refused gets
    at most its share, uniformly random on its own."""
    owned = [(i, d) for i, d in enumerate(descs) if isinstance(d, list) and d[0] == "o"]
    if not owned:
        return vals
    n, rank, ring = node.spec.nparties, node.rank, node.party.ctx.ring
    mine = [(i, d) for i, d in owned if int(d[1]) == rank]
    if mine:
        out = {r: [] for r in range(n) if r != rank}
        for i, (_, _, handle, leaf) in mine:
            leaves = node.loaded.get(handle)
            if leaves is None:
                raise RuntimeError(f"{node.name} holds no input {handle[:8]} (restarted?)")
            frac = program.params[i].type.dtype.frac      # the program's input format
            x = encode(ring, leaves[int(leaf)], frac, f"owned by {node.name}")
            shares = node.proto_cls.deal_seeded(x, n, node.owner_prg, ring)   # keys travel
            vals[i] = _own_share(node, shares[rank], program.params[i], ring.dtype)
            for r in out:
                out[r].append(shares[r])
        for r, lst in out.items():
            node.transport.send(r, tuple(lst))
    for o in sorted({int(d[1]) for _, d in owned} - {rank}):
        idx = [i for i, d in owned if int(d[1]) == o]
        got = node.transport.recv(o)
        who = node.spec.parties[o].name
        if not isinstance(got, tuple) or len(got) != len(idx):
            raise PeerError(f"party {who!r} sent malformed input shares")
        for i, s in zip(idx, got):
            try:
                vals[i] = _own_share(node, s, program.params[i], ring.dtype)
            except SeedError as e:
                raise PeerError(f"party {who!r} sent malformed input shares ({e})") from None
    return vals


def _own_share(node, s, param, dtype) -> Share:
    """This party's Share of an input from what was sent (SeededShare: keys expanded),
    checked against the program's input: part count, shape, ring dtype."""
    if isinstance(s, Share):
        s = SeededShare(s.parts, s.boolean)
    if not isinstance(s, SeededShare):
        raise SeedError(f"a {type(s).__name__} where a share was expected")
    return s.expand(param.type.shape, dtype, node.proto_cls.share_parts)


def _reveal(node, job: int, h: dict, program, outs: List, target: int) -> dict:
    """Send output shares to `target` only; there, reconstruct, decode and store."""
    secret = [i for i, o in enumerate(outs) if isinstance(o, Share)]
    n, ring = node.spec.nparties, node.party.ctx.ring
    if node.rank != target:
        node.transport.send(target, tuple(outs[i] for i in secret))
        return {}
    got = {r: node.transport.recv(r) for r in range(n) if r != target}
    for j, i in enumerate(secret):
        shares = [outs[i] if r == target else got[r][j] for r in range(n)]
        outs[i] = node.proto_cls.reconstruct(shares, ring)
    names = [o[0] for o in h["outputs"]]
    values = {}
    for (name, dt, shape), o, res in zip(h["outputs"], outs, program.results):
        aval = SimpleNamespace(dtype=np.dtype(dt), shape=tuple(shape))
        values[name] = decode(ring, o, res.type, aval)
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{h.get('tag') or 'job'}-{job}")
    out_dir = node.me.output_dir or os.path.join("spu-out", node.name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.abspath(os.path.join(out_dir, f"{tag}.npz"))
    with open_private(path) as f:          # mode 0600: the revealed values are private
        np.savez(f, **values)
    node.results[tag] = values
    if node.on_result is not None:
        node.on_result(tag, values)
    return {"revealed_to": node.name, "path": path, "tag": tag,
            "outputs": [[k, list(v.shape), v.dtype.str] for k, v in values.items()]
            if names else []}
