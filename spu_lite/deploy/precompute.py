"""Correlations ahead of a job on networked semi2k_ot nodes (two parties, no dealer).

The driver sends both nodes the same correlation counts (kinds and shapes only, as
spu_lite.two_party.correlation_counts finds them for a program); the two nodes make
them with each other by oblivious transfer, over their own encrypted link, and keep them
in their protocol's pools for the next jobs, from any driver: a new session keeps the
pools when both nodes hold the same ones and the last session did not fail
(carry_pools). The driver gets back seconds, bytes and messages.

    driver:  {"k": "precompute", "session", "counts": [[kind, ..., n], ...]}
    node:    {"k": "precomputed", "offline": [requests, seconds, bytes, messages],
              "pooled_mb": ...}

Consent: counts alone, no program. A correlation is random and independent of every
input, output and program; making one reads none of the node's data and opens
nothing, and which data a job may use, and where its results go, is still decided
under the node's policy when the job itself arrives. What a precompute request costs
the node is CPU, bandwidth and memory: the pools are capped (max_pool_mb in the
cluster file), the counts are checked as hostile input, and every request is a line
of the job log (kind "precompute"). The two nodes compare a fingerprint of what they
were sent before any OT: a driver that sends them different counts is refused.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Dict, List

import numpy as np

from spu_lite.runtime.link import PeerError
from spu_lite.runtime.protocols.semi2k_common import AND, B2A, MUL, SQUARE
from spu_lite.runtime.protocols.semi2k_ot_compare import AND2, ROT
from spu_lite.runtime.protocols.semi2k_ot_mux import MUX

ELEMENTWISE = {MUL: "mul", SQUARE: "square", AND: "and", B2A: "b2a", AND2: "and2", MUX: "mux"}
KINDS = {v: k for k, v in ELEMENTWISE.items()}
#: bytes a party keeps per pooled element (mul/and: a, b, c; square: a, c; b2a: the
#: unpacked bit and [r], also what a truncation takes; rot: the sender's table and
#: share; and2: a, b, b', c, c'; mux: b, v, u). Truncation pairs are not a kind: nodes
#: truncate by the pieces' top bits (runtime/protocols/semi2k_ot_trunc.py, b2a pieces).
POOL_BYTES = {MUL: 24, AND: 24, SQUARE: 16, B2A: 9, ROT: 5, AND2: 40, MUX: 17}
MAX_DIMS = 8


class PrecomputeError(ValueError):
    """A malformed or oversized precompute request. Its text is built from the request
    and pool sizes only, so the node sends it to the driver as it is."""

    @property
    def public_reason(self) -> str:
        return str(self)


def encode_counts(counts: Dict) -> List:
    """{MUL: n, (ROT, sender): n, ("dot", xs, ys, dims): k} -> JSON-able list."""
    out = []
    for key, n in sorted(counts.items(), key=lambda kv: repr(kv[0])):
        if isinstance(key, tuple) and key[0] == "dot":
            out.append(["dot", list(key[1]), list(key[2]), [list(d) for d in key[3]], int(n)])
        elif isinstance(key, tuple) and key[0] == ROT:
            out.append(["rot", int(key[1]), int(n)])
        else:
            out.append([ELEMENTWISE[key], int(n)])
    return out


def _int(v, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise PrecomputeError(f"precompute: {what} must be an integer in [{lo}, {hi}]")
    return v


def _shape(v) -> tuple:
    if not isinstance(v, list) or len(v) > MAX_DIMS:
        raise PrecomputeError("precompute: a dot shape must be a list of at most "
                              f"{MAX_DIMS} sizes")
    return tuple(_int(s, 1, 1 << 31, "a dot dimension") for s in v)


def _dot_key(xs, ys, dims):
    xs, ys = _shape(xs), _shape(ys)
    if not isinstance(dims, list) or len(dims) != 4 or not all(isinstance(d, list) for d in dims):
        raise PrecomputeError("precompute: dot dims must be 4 lists (contracting, batch)")
    lc, rc, lb, rb = [tuple(_int(a, 0, MAX_DIMS - 1, "a dot axis") for a in d) for d in dims]
    ok = (len(lc) == len(rc) and len(lb) == len(rb)
          and all(a < len(xs) for a in lc + lb) and all(a < len(ys) for a in rc + rb)
          and len(set(lc + lb)) == len(lc + lb) and len(set(rc + rb)) == len(rc + rb)
          and all(xs[a] == ys[b] for a, b in zip(lc + lb, rc + rb)))
    if not ok:
        raise PrecomputeError("precompute: dot shapes and dims do not fit together")
    return ("dot", xs, ys, (lc, rc, lb, rb))


def decode_counts(doc, field: int) -> Dict:
    """The inverse of encode_counts, checking everything (the driver may be hostile)."""
    if not isinstance(doc, list) or len(doc) > 4096:
        raise PrecomputeError("precompute: counts must be a list of [kind, ..., n]")
    counts: Dict = {}
    for e in doc:
        if not isinstance(e, list) or not e or e[0] not in (*KINDS, "rot", "dot"):
            raise PrecomputeError("precompute: unknown correlation kind")
        if e[0] == "dot" and len(e) == 5:
            key = _dot_key(*e[1:4])
        elif e[0] == "rot" and len(e) == 3:
            key = (ROT, _int(e[1], 0, 1, "an OT sender"))
        elif e[0] in KINDS and len(e) == 2:
            key = KINDS[e[0]]
        else:
            raise PrecomputeError(f"precompute: malformed {e[0]} entry")
        n = _int(e[-1], 0, 1 << 40, "a count")
        if n:
            counts[key] = counts.get(key, 0) + n
    return counts


def pool_bytes(counts: Dict) -> int:
    """Memory the pools of `counts` take at one party."""
    total = 0
    for key, n in counts.items():
        if isinstance(key, tuple) and key[0] == "dot":
            _, xs, ys, (lc, rc, lb, rb) = key
            out = int(np.prod([s for i, s in enumerate(xs) if i not in lc], dtype=np.int64)) * \
                int(np.prod([s for i, s in enumerate(ys) if i not in rc + rb], dtype=np.int64))
            total += n * 8 * (int(np.prod(xs, dtype=np.int64)) + int(np.prod(ys, dtype=np.int64))
                              + out)
        else:
            total += n * POOL_BYTES[key[0] if isinstance(key, tuple) else key]
    return total


def pooled_now(proto) -> int:
    """Bytes held in a semi2k_ot party's pools."""
    total = 0
    for pool in proto.pools.values():
        for item in pool:
            total += sum(a.nbytes for a in item) if isinstance(item, tuple) else item.nbytes
    return total


def fingerprint(h: dict) -> bytes:
    same = {"session": h.get("session"), "counts": h.get("counts")}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).digest()


# ---- the node's side --------------------------------------------------------------------

def serve(node, h: dict) -> dict:
    """Serve one precompute request at a node (see the module docstring)."""
    job = int(h["job"])
    node.transport.start_job(job)
    t0, outcome, why, record = time.perf_counter(), "failed", "", {}
    try:
        if node.spec.protocol != "semi2k_ot":      # no peer waits: refuse at once
            raise PrecomputeError(f"precompute: {node.spec.protocol} makes no correlations "
                                  f"at the parties (only semi2k_ot does)")
        problem = ""
        try:
            counts = decode_counts(h.get("counts"), node.spec.field)
        except PrecomputeError as e:
            problem = str(e)
        _agree(node, fingerprint(h), problem)
        node.ensure_session(str(h["session"]))
        proto = node.party.proto
        cap = node.spec.max_pool_mb * 2 ** 20
        need, have = pool_bytes(counts), pooled_now(proto)
        if need + have > cap:       # the same verdict at both parties: their pools match
            raise PrecomputeError(f"precompute: {need / 2 ** 20:.1f} MB more correlations "
                                  f"would exceed max_pool_mb ({node.spec.max_pool_mb:g} MB; "
                                  f"{have / 2 ** 20:.1f} MB pooled)")
        before = proto.offline_stats()
        proto.precompute(counts)
        after = proto.offline_stats()
        stats = [len(counts)] + [after[k] - before[k] for k in ("seconds", "bytes", "messages")]
        record = {"counts": h.get("counts"), "bytes": stats[2], "messages": stats[3]}
        outcome = "ok"
        return {"offline": stats, "pooled_mb": pooled_now(proto) / 2 ** 20}
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        raise
    finally:
        node.joblog.append(kind="precompute", job=job, seconds=round(time.perf_counter() - t0, 6),
                           outcome=outcome, reason=why, **record)


def _agree(node, fp: bytes, problem: str) -> None:
    """Both nodes check they were sent the same request, and both stop if either
    cannot serve it (one small message each way, before any OT)."""
    peer = 1 - node.rank
    node.transport.send(peer, (fp, json.dumps({"problem": problem[:300]}).encode()))
    got = node.transport.recv(peer)
    name = node.spec.parties[peer].name
    try:
        theirs = str(json.loads(got[1])["problem"])[:300]
        same = got[0] == fp
    except (TypeError, ValueError, KeyError, IndexError):
        raise PeerError(f"party {name!r} sent a malformed precompute message") from None
    if problem:
        raise PrecomputeError(problem)
    if theirs:
        raise PrecomputeError(f"{name}: {theirs}")
    if not same:
        raise PrecomputeError(f"the driver sent {node.name} and {name} different "
                              f"precompute requests")


def _pool_sizes(proto) -> bytes:
    """What both parties' pools must agree on to stay usable: every pool's kind and
    how many correlations it holds (pools are used front first, in the same order at
    both parties, so equal sizes mean the same correlations are left)."""
    sizes = sorted((repr(k), len(v) if isinstance(v, list) and (not v or isinstance(v[0], tuple))
                    else int(v[0].shape[0])) for k, v in proto.pools.items())
    return hashlib.sha256(repr(sizes).encode()).digest()


def carry_pools(node, old_party, clean: bool) -> None:
    """On a new session (a new driver, or after a failure): keep the previous
    session's pools if it ended cleanly at both nodes and both hold the same pools
    (one message each way). Otherwise both drop them: a pool out of step would pair
    mismatched correlations and give wrong results."""
    if node.spec.protocol != "semi2k_ot":
        return
    old = old_party.proto if (old_party is not None and clean) else None
    mine = _pool_sizes(old) if old is not None and old.pools else b""
    peer = 1 - node.rank
    node.transport.send(peer, mine)
    theirs = node.transport.recv(peer)
    if mine and isinstance(theirs, bytes) and theirs == mine:
        node.party.proto.pools = old.pools


# ---- the driver's side --------------------------------------------------------------------

def precompute_on(cluster, counts: Dict) -> Dict[str, float]:
    """Have both nodes of a networked semi2k_ot cluster make `counts` now. Returns the
    busiest party's offline seconds, bytes and messages."""
    if cluster.spec.protocol != "semi2k_ot":
        raise ValueError(f"precompute needs a semi2k_ot cluster, not {cluster.spec.protocol}")
    with cluster._lock:
        cluster.client.drain()
        if cluster.client.seen_down or cluster.session is None:     # as NetworkCluster.run
            cluster.client.seen_down = False
            cluster.session = f"{time.time_ns():x}"
        ranks = list(cluster.spec.endpoints())
        _, rep = cluster._request(ranks, {"k": "precompute", "session": cluster.session,
                                          "counts": encode_counts(counts)}, {},
                                  ("precomputed",))
    offline = [rep[r][0]["offline"] for r in ranks]
    return {"seconds": max(float(o[1]) for o in offline),
            "bytes": max(int(o[2]) for o in offline),
            "messages": max(int(o[3]) for o in offline),
            "pooled_mb": max(float(rep[r][0]["pooled_mb"]) for r in ranks)}
