"""Communication cost of a compiled program, measured by a dry run.

The protocols are data-oblivious: which messages are sent, how large, in how many
rounds depends only on shapes, types and public control flow, never on the secret
values. Running the program once on random inputs of its parameter types, on an
in-process cluster of the chosen protocol, therefore gives the bytes and rounds a run on
real data will have, per op, before any real data is involved. (Exception: where a
public input decides a while loop's trip count or a cond branch, random values may
take another path; the report says how many such ops the program has.)

    spu-lite cost mod.py:fn --arg f32[64,30] --protocol aby3
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from spu_lite.compiler.ir import Program, batches
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.profile import OpStats, Profile

DATA_DEPENDENT = ("while", "cond")     # ops whose path a public value decides


@dataclass
class CostReport:
    protocol: str
    per_op: Profile                 # per op name: max over parties (the busiest one)
    party_bytes: List[int]          # bytes sent by each computing party in total
    rounds: int                     # communication rounds of the busiest party
    public_control: int             # while / cond ops on public predicates
    batches: Dict[str, int] = None  # "trunc x6" -> how many such batches the IR has

    def table(self) -> str:
        rows = sorted(((n, s) for n, s in self.per_op.ops.items() if s.bytes or s.rounds),
                      key=lambda kv: -kv[1].bytes)
        lines = [f"{'op':<22}{'calls':>7}{'rounds':>8}{'bytes':>16}{'bytes/call':>14}"]
        for name, s in rows:
            lines.append(f"{name:<22}{s.calls:>7}{s.rounds:>8}{s.bytes:>16,}"
                         f"{s.bytes // max(s.calls, 1):>14,}")
        lines.append(f"{'total (busiest party)':<29}{self.rounds:>8}{max(self.party_bytes):>16,}")
        lines.append("bytes sent per party: " + ", ".join(
            f"P{i} {b:,}" for i, b in enumerate(self.party_bytes)))
        if self.batches:
            lines.append("batched by the compiler (each one protocol call): " + ", ".join(
                f"{n} x {sig}" if n > 1 else sig for sig, n in self.batches.items()))
        if self.public_control:
            lines.append(f"note: {self.public_control} while/cond op(s) on public values: "
                         f"their path was taken with random inputs")
        return "\n".join(lines)


def _random_input(cluster: InProcessCluster, t, rng: np.random.Generator):
    ring, shape = cluster.ring, t.shape
    if t.dtype.is_fxp:
        v = ring.encode(rng.uniform(-1.0, 1.0, shape), t.dtype.frac)
    elif t.dtype.is_int:
        v = ring.encode_int(rng.integers(0, 4, shape))
    else:
        v = ring.encode_int(rng.integers(0, 2, shape))
    return cluster.share(v) if t.secret else v


def _public_control(program: Program) -> int:
    """while (public predicate) and cond (public index) ops: a public value picks the path."""
    return sum(op.name in DATA_DEPENDENT for op in program.walk())


def _batches(program: Program) -> Dict[str, int]:
    """Each batch of the IR (ops marked `batch=n`, compiler/passes/rounds.py) by its op
    names, e.g. "eq+less x2" (loop bodies once)."""
    out: Dict[str, int] = {}

    def walk(ops):
        for start, n in batches(ops):
            sig = "+".join(sorted({o.name for o in ops[start:start + n]})) + f" x{n}"
            out[sig] = out.get(sig, 0) + 1
        for op in ops:
            for b in op.blocks:
                walk(b.ops)
    walk(program.ops)
    return out


def dry_run(program: Program, protocol: str = "aby3", seed: int = 0,
            options: Dict[str, object] = None) -> CostReport:
    """Run `program` once on random inputs on an in-process cluster of `protocol` and
    return the measured communication per op."""
    cluster = InProcessCluster(ClusterConfig(protocol=protocol, field=program.field,
                                             fxp_bits=program.fxp_bits, seed=seed,
                                             options=dict(options or {})))
    rng = np.random.default_rng(seed)
    inputs = [_random_input(cluster, p.type, rng) for p in program.params]
    cluster.run(program, inputs)
    profs = cluster.party_profiles
    totals: List[OpStats] = [p.total for p in profs]
    return CostReport(protocol, Profile.merge_max(profs), [t.bytes for t in totals],
                      max(t.rounds for t in totals), _public_control(program), _batches(program))
