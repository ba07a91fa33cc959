"""Correlations ahead of a job, for semi2k without a dealer (protocol="semi2k",
dealer=None, i.e. semi2k_ot): the offline phase on its own.

    f = spu.jit(fn, protocol="semi2k", dealer=None)
    spu_lite.two_party.precompute(f, x, y)     # OT work now: pools on both parties
    f(x, y)                                    # the online phase takes from the pools

How many: the online protocol is semi2k's, with comparisons by the millionaires'
protocol (runtime/protocols/semi2k_ot_compare.py), select's products by an OT
multiplexer (semi2k_ot_mux.py) and truncations by the pieces' top bits
(semi2k_ot_trunc.py); its requests (kind and shape, never data) depend only on the
program. correlation_counts runs the program once on random inputs under semi2k with
a dealer and semi2k_ot's comparisons, multiplexers and truncations (cheap: no OT, as
`spu-lite cost` does) and counts what the dealer was asked for, plus the comparisons'
1-out-of-16 OTs and AND pairs, the multiplexers' correlations and the truncations'
random bit products (B2A, counted with the bit injections' random bits). Elementwise
correlations pool by kind (and shift); dot triples by shape.
Dots that reuse a kept operand (loop-invariant weights) are made during the job.
On networked nodes the driver sends both nodes the counts (never the program, never
data) and they make them over their own link: spu_lite/deploy/precompute.py.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Dict

import numpy as np

from spu_lite.compiler.ir import Program
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.profile import Profile
from spu_lite.runtime.he.encoding import he_bytes, use_he
from spu_lite.runtime.ot.cot_mul import correction_bytes
from spu_lite.runtime.protocols.semi2k_ot import Semi2kOT
from spu_lite.runtime.protocols.semi2k_ot_compare import AND2, ROT, empty_pieces, sign_bit
from spu_lite.runtime.protocols.semi2k_ot_mux import MUX, empty_mux_pieces, mux
from spu_lite.runtime.protocols.semi2k_ot_source import _canonical
from spu_lite.runtime.protocols.semi2k_ot_trunc import trunc_by_msb
from spu_lite.runtime.protocols.semi2k_common import (AND, B2A, DOT, DOT_KEEP, MUL, SQUARE, TRUNC,
                                             _decode_request, _size)

from .deploy.precompute import precompute_on
from .tools.cost import CostReport, _batches, _public_control, _random_input


def _dry_run(program: Program, seed: int):
    """One run of `program` on random inputs under semi2k with a dealer (cheap: no OT),
    with semi2k_ot's comparison and multiplexer protocols (dry_run_comparisons). Returns
    the cluster, the requests the dealer got and the correlations of those counted."""
    cluster = InProcessCluster(ClusterConfig(protocol="semi2k", field=program.field,
                                             fxp_bits=program.fxp_bits, seed=seed))
    transport = cluster.dealer.comm.transport
    inner, log = transport.recv, []

    def recording_recv(frm):
        msg = inner(frm)
        log.append(_decode_request(msg))
        return msg

    transport.recv = recording_recv
    ots: Counter = Counter()            # the comparisons' 1-out-of-16 OTs (P0's count)
    for party in cluster.parties:
        dry_run_comparisons(party.proto, ots if party.proto.rank == 0 else Counter())
    rng = np.random.default_rng(seed)
    cluster.run(program, [_random_input(cluster, p.type, rng) for p in program.params])
    return cluster, log, ots


def correlation_counts(program: Program, seed: int = 0) -> Dict:
    """{MUL: n, SQUARE: n, AND: n, B2A: n, (ROT, sender): n, AND2: n, MUX: n,
    ("dot", xs, ys, dims): count} that one run of `program` asks for ((TRUNC, m): n
    instead of the truncations' B2A only with Semi2kOT.trunc_by_pair)."""
    _, log, ots = _dry_run(program, seed)
    counts: Counter = Counter()
    for kind, params in log:
        if kind in (MUL, SQUARE, AND, B2A):
            counts[kind] += _size(params[0])
        elif kind == TRUNC:
            counts[(TRUNC, params[1])] += _size(params[0])
        elif kind in (DOT, DOT_KEEP):
            counts[("dot",) + tuple(params[:3])] += 1
    counts.update({key: ots[key] for key in sorted(ots, key=repr)})
    return dict(counts)


def online_cost(program: Program, seed: int = 0) -> CostReport:
    """The online communication of `program` under semi2k_ot, per op (what `spu-lite
    cost --protocol semi2k_ot` prints): the dry run of correlation_counts, whose
    messages between the parties are semi2k_ot's (P0's bytes also count its requests
    to the dealer, a few bytes per op that semi2k_ot does not send)."""
    cluster, _, _ = _dry_run(program, seed)
    profs = cluster.party_profiles
    return CostReport("semi2k_ot", Profile.merge_max(profs), [p.total.bytes for p in profs],
                      max(p.total.rounds for p in profs), _public_control(program),
                      _batches(program))


def dry_run_comparisons(proto, counts: Counter) -> None:
    """Give a semi2k party of a dry run semi2k_ot's comparison protocol
    (semi2k_ot_compare.py), multiplexer (semi2k_ot_mux.py, unless Semi2kOT.mux is
    switched off) and truncation (semi2k_ot_trunc.py, unless Semi2kOT.trunc_by_pair),
    with zero pieces for their own correlations, counted in `counts`: its bit
    injections then go to the dealer as requests, and its messages have the sizes and
    rounds of semi2k_ot's."""
    dt = proto.ring.dtype

    def take(key, n):
        if key == ROT:                  # n = (sent by party 0, sent by party 1)
            return tuple(take((ROT, sender), k) for sender, k in enumerate(n))
        counts[key] += n
        if key in (MUX, MUL):
            return empty_mux_pieces(key, n, dt)
        if key == B2A:                  # beta_i packed, [beta_0 ^ beta_1]_i: zeros
            return np.zeros((n + 7) // 8, np.uint8), np.zeros(n, dt)
        return empty_pieces(key, proto.rank, n, dt)
    proto.sign_bit = lambda x, width, shift=0: sign_bit(proto, x, width, shift, take)
    if Semi2kOT.mux is not None:
        proto.mux = lambda c, x, products=None: mux(proto, c, x, take, products)
    if not Semi2kOT.trunc_by_pair:
        proto.trunc = lambda x, bits: trunc_by_msb(proto, x, bits, take)


def precompute(f, *args, times: int = 1) -> Dict:
    """Make the correlations of `times` calls of f(*args) now, on f's two-party cluster:
    in-process, or two networked semi2k_ot nodes (spu.jit(f, cluster=NetworkCluster(..))),
    where the nodes make them over their own link (spu_lite.deploy.precompute).
    Returns the counts made."""
    cluster = f.cluster
    if cluster.config.protocol != "semi2k_ot" or not (
            isinstance(cluster, InProcessCluster) or getattr(cluster, "networked", False)):
        raise ValueError('precompute needs spu.jit(..., protocol="semi2k", dealer=None) '
                         "or a networked semi2k_ot cluster")
    counts = {k: v * times for k, v in correlation_counts(f.lower(*args).program).items()}
    if getattr(cluster, "networked", False):
        cluster.last_precompute = precompute_on(cluster, counts)
        return counts
    errors = []

    def run(party):
        try:
            party.proto.precompute(counts)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
            cluster.hub.fail(type(e).__name__)

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in cluster.parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return counts


def _correction_bytes(widths) -> int:
    """Bytes of Gilboa corrections per element for one OT per bit position of `widths`
    (each position travels in the narrowest of 1, 2, 4, 8 bytes; cot_mul.py)."""
    return correction_bytes(widths)


def offline_bytes(key, n: int, k: int = 64) -> int:
    """About the bytes the busier party sends to make n correlations of `key`
    (semi2k_ot_source.py's constructions: IKNP 16 bytes per OT from the receiver,
    corrections from the sender; one-way kinds split half and half). Low by IKNP's
    padding of every batch to a multiple of 8 OTs (at most 128 bytes per batch) and,
    for one-way kinds, the rounding of odd halves."""
    j = np.arange(k)
    kind = key[0] if isinstance(key, tuple) else key
    if kind == MUL:
        return n * (16 * k + _correction_bytes(k - j))
    if kind == AND:
        return n * (16 * k + k)
    if kind == SQUARE:
        return -(-n * (16 * k + _correction_bytes(k - j)) // 2)
    if kind == B2A:
        return -(-n * (16 + _correction_bytes([k])) // 2)
    if kind == TRUNC:
        m = key[1]
        widths = np.minimum(k, np.where(j >= m, k - j + m, k - j))
        return -(-n * (16 * k + _correction_bytes(widths)) // 2)
    if kind == AND2:
        return n * (16 * k + 2 * k)
    if kind == MUX:                     # one OT each way, a k-bit correction
        return n * (16 + _correction_bytes([k]))
    if kind == ROT:                     # 4 IKNP OTs from the receiver; both directions
        return -(-n * 4 * 16 // 2)      # come in equal halves: charged half each
    if kind == "dot":
        _, _, (bt, rows, inner, cols) = _canonical(*key[1:])
        if use_he(rows, inner, cols, k):   # lattice HE (runtime/he), keys aside
            return n * bt * he_bytes(rows, inner, cols)
        return n * bt * rows * inner * (16 * k + cols * _correction_bytes(k - j))
    raise ValueError(f"unknown correlation kind {key!r}")


def correlation_table(counts: Dict, k: int = 64) -> str:
    """The correlations of one call and their offline bytes, for `spu-lite cost`."""
    names = {MUL: "mul (Beaver triple)", SQUARE: "square pair", AND: "and (64-bit word)",
             B2A: "random bit (b2a, trunc)", AND2: "and pair (64-bit words)",
             MUX: "multiplexer (select, logic)"}
    lines = [f"{'correlation':<34}{'count':>12}{'offline bytes (busier party)':>30}"]
    total = 0
    for key, n in sorted(counts.items(), key=lambda kv: -offline_bytes(kv[0], kv[1], k)):
        b = offline_bytes(key, n, k)
        total += b
        name = (names[key] if not isinstance(key, tuple) else
                f"truncation pair >> {key[1]}" if key[0] == TRUNC else
                f"1-of-16 OT, P{key[1]} sends" if key[0] == ROT else
                f"dot triple {list(key[1])} . {list(key[2])}")
        lines.append(f"{name:<34}{n:>12,}{b:>30,}")
    lines.append(f"{'total':<34}{'':>12}{total:>30,}")
    return "\n".join(lines)
