"""What a node does for one job.

1. Make the job current (messages of other jobs are kept apart) and, on a new
   session, set up fresh protocol state with the peers.
2. Inputs: public arrays and this party's shares come with the job from the driver.
   Party-owned inputs: their owner encodes each one, deals shares with its own PRG
   (Protocol.deal) and sends every computing party its share in one message; the
   others receive them. The plaintext stays at the owner.
3. Run the program (runtime.party.Party, the same code as in-process).
4. Outputs: by default every party returns its shares to the driver (party 0 also
   the public outputs), which reconstructs them. Outputs the driver asked to keep
   (keep_secret) stay at the parties under an id (`node.kept`); later jobs name them
   as inputs ["k", id], and the driver's releases (ids of handles it dropped) ride
   on the next job. With `reveal_to`, the parties send
   their output shares to that party only; it reconstructs and decodes them, keeps
   them in `node.results`, writes OUTPUT_DIR/TAG-JOB.npz, and the driver receives
   only a receipt (names, shapes, dtypes, path).
"""
from __future__ import annotations

import os
import re
import time
from types import SimpleNamespace
from typing import List

import numpy as np

from runtime.link import PeerError
from runtime.protocols.base import Share


def run_job(node, h: dict, payload):
    t0 = time.perf_counter()
    job = int(h["job"])
    node.ep.mailbox.start_job(job)
    node.transport.job = job
    node.ensure_session(str(h["session"]))
    if node.is_dealer:
        node.party.serve_job()
        return {}, None
    for kid in h.get("release") or ():
        node.kept.pop(str(kid), None)
    t1 = time.perf_counter()
    program = node.programs.resolve(h)          # by digest; the IR text on a miss
    t2 = time.perf_counter()
    inputs = _inputs(node, h["inputs"], payload, program)
    t3, wait0 = time.perf_counter(), node.party.comm.wait
    node.party.options = dict(h.get("options") or {})
    outs, prof = node.party.run(program, inputs)
    t4 = time.perf_counter()
    reply = {"profile": {k: [s.calls, s.seconds, s.bytes, s.rounds] for k, s in prof.ops.items()},
             "phases": {"setup": t1 - t0, "program": t2 - t1, "inputs": t3 - t2,
                        "run": t4 - t3, "run_wait": node.party.comm.wait - wait0,
                        "node": t4 - t0, "wall_start": time.time() - (t4 - t0),
                        "wall_end": time.time()}}
    keep = h.get("keep") or [None] * len(outs)
    for i, kid in enumerate(keep):
        if kid is not None and isinstance(outs[i], Share):
            node.kept[str(kid)] = outs[i]          # stays here; the driver gets nothing
            outs[i] = None
    if h.get("reveal_to") is None:
        return reply, [_for_driver(node, o) for o in outs]
    reply.update(_reveal(node, job, h, program, outs, int(h["reveal_to"])))
    return reply, None


def _for_driver(node, o):
    """What the driver needs of an output: public values from party 0 only, of a
    Share only the parts its reconstruct reads (aby3: half the bytes back)."""
    if not isinstance(o, Share):
        return o if node.rank == 0 else None
    need = set(node.proto_cls.reconstruct_parts(node.rank))
    return Share([p if i in need else p.reshape(-1)[:0] for i, p in enumerate(o.parts)],
                 o.boolean)


def _inputs(node, descs: List, payload, program) -> List:
    """descs[i]: "p" public array, "s" this party's Share (both in payload[i]),
    ["o", owner rank, handle, leaf] for a party-owned input, or ["k", id] for a secret
    kept at the parties by an earlier job."""
    from spu_lite.api import _encode
    vals = list(payload or [None] * len(descs))
    for i, d in enumerate(descs):
        if isinstance(d, list) and d[0] == "k":
            if str(d[1]) not in node.kept:
                raise RuntimeError(f"{node.name} holds no kept secret {str(d[1])[:8]} "
                                   f"(restarted, or released?)")
            vals[i] = node.kept[str(d[1])]
    owned = [(i, d) for i, d in enumerate(descs) if isinstance(d, list) and d[0] == "o"]
    n, rank, ring = node.spec.nparties, node.rank, node.party.ctx.ring
    mine = [(i, d) for i, d in owned if int(d[1]) == rank]
    if mine:
        out = {r: [] for r in range(n) if r != rank}
        for i, (_, _, handle, leaf) in mine:
            leaves = node.loaded.get(handle)
            if leaves is None:
                raise RuntimeError(f"{node.name} holds no input {handle[:8]} (restarted?)")
            frac = program.params[i].type.dtype.frac      # the program's input format
            x = _encode(ring, leaves[int(leaf)], frac, f"input owned by {node.name}")
            shares = node.proto_cls.deal(x, n, node.owner_prg, ring)
            vals[i] = shares[rank]
            for r in out:
                out[r].append(shares[r])
        for r, lst in out.items():
            node.transport.send(r, tuple(lst))
    for o in sorted({int(d[1]) for _, d in owned} - {rank}):
        idx = [i for i, d in owned if int(d[1]) == o]
        got = node.transport.recv(o)
        if not isinstance(got, tuple) or len(got) != len(idx) or \
                not all(isinstance(s, Share) for s in got):
            raise PeerError(f"party {node.spec.parties[o].name!r} sent malformed input shares")
        for i, s in zip(idx, got):
            vals[i] = s
    return vals


def _reveal(node, job: int, h: dict, program, outs: List, target: int) -> dict:
    """Send output shares to `target` only; there, reconstruct, decode and store."""
    from spu_lite.api import _decode
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
        values[name] = _decode(ring, o, res.type, aval)
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{h.get('tag') or 'job'}-{job}")
    out_dir = node.me.output_dir or os.path.join("spu-out", node.name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.abspath(os.path.join(out_dir, f"{tag}.npz"))
    np.savez(path, **values)
    node.results[tag] = values
    if node.on_result is not None:
        node.on_result(tag, values)
    return {"revealed_to": node.name, "path": path, "tag": tag,
            "outputs": [[k, list(v.shape), v.dtype.str] for k, v in values.items()]
            if names else []}
