"""Benchmark of semi2k without a dealer (semi2k_ot): offline (OT) and online cost of
mul, matmul, comparisons, relu, max, exp and softmax, next to SPU CHEETAH's figures
(shared/anchors/README.md).

    python -m spu_lite.tools.bench_two_party [--mul 16 20] [--matmul 128]
        [--less 12] [--relu 12] [--max 12] [--exp 17] [--softmax 128x1024]
        [--cluster cluster.yaml] [--select-by-triple] [--trunc-by-pair]

--cluster runs on two networked semi2k_ot nodes (started with `spu-lite cluster up`
or one `spu-lite node` per party) instead of the in-process cluster: the nodes make
the correlations over their own link (spu_lite/deploy/precompute.py).

Per case: precompute the correlations of one call (spu_lite.two_party.precompute:
timed, bytes sent by the busiest party), then one call end to end (share inputs, run,
reconstruct: timed, online bytes). The machine's load average is printed with the
table: the OT work is CPU-bound and the in-process parties share the cores.
matmul sizes whose matrix triple needs more than --max-ot-gb of offline traffic are not
run (the bytes of the construction the runtime picks: lattice HE for large products,
runtime/he/encoding.py, else OT, semi2k_ot_source.py); their bytes are printed.
--select-by-triple makes select's products by Beaver triples instead of the OT
multiplexer (the previous construction: for before/after comparisons, in-process);
--trunc-by-pair truncates by semi2k's truncation pairs (k OTs each) instead of the
pieces' top bits and a random bit product (semi2k_ot_trunc.py), likewise.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import jax

import spu_lite as spu

from spu_lite.runtime.he.encoding import he_bytes, use_he
from spu_lite.runtime.protocols.semi2k_ot import Semi2kOT

from ..two_party import precompute

CHEETAH = {"mul_1M": 6.73, "matmul_512": 18.0, "less_1M": 18.8, "relu_1M": 26.9,
           "exp_128k": 8.07, "softmax_128x1024": 49.4}      # seconds, anchors README


def _offline_bytes(f):
    if getattr(f.cluster, "networked", False):
        return getattr(f.cluster, "last_precompute", {}).get("bytes", 0)
    return max(P.proto.offline_stats()["bytes"] for P in f.cluster.parties)


def run_case(name, fn, args, cluster=None):
    f = spu.jit(fn, protocol="semi2k", dealer=None, check=False) if cluster is None else \
        spu.jit(fn, cluster=cluster)
    b0 = 0 if cluster is not None else _offline_bytes(f)
    t0 = time.perf_counter()
    precompute(f, *args)
    t_off = time.perf_counter() - t0
    b_off = _offline_bytes(f) - b0
    t0 = time.perf_counter()
    f(*args)
    t_on = time.perf_counter() - t0
    prof = f.cluster.last_profile
    assert prof.offline.bytes == 0, "the online phase made correlations"
    return {"case": name, "offline_s": t_off, "online_s": t_on, "offline_bytes": b_off,
            "online_bytes": prof.total.bytes, "rounds": prof.total.rounds}


def matmul_triple_bytes(n: int) -> int:
    """Offline bytes per party of one n x n x n matrix triple (both cross terms): by
    lattice HE when the runtime picks it (use_he), else by OT: 64 n^2 OTs at 16 bytes
    plus corrections of n elements each (43/8 bytes per element-bit on average, the
    1/2/4/8-byte classes of widths 64 .. 1)."""
    if use_he(n, n, n, 64):
        return he_bytes(n, n, n)
    return 64 * n * n * 16 + n * n * n * 344


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mul", type=int, nargs="*", default=[16], help="log2 sizes of mul")
    ap.add_argument("--matmul", type=int, nargs="*", default=[128], help="square sizes")
    for name in ("less", "relu", "max", "exp"):
        ap.add_argument(f"--{name}", type=int, nargs="*", default=[], help=f"log2 sizes of {name}")
    ap.add_argument("--softmax", nargs="*", default=[], help="shapes ROWSxCOLS (last axis)")
    ap.add_argument("--max-ot-gb", type=float, default=4.0,
                    help="skip matmuls whose triple needs more offline GiB per party")
    ap.add_argument("--cluster", help="a semi2k_ot cluster file: run on its nodes")
    ap.add_argument("--select-by-triple", action="store_true",
                    help="select's products by Beaver triples (the previous construction)")
    ap.add_argument("--trunc-by-pair", action="store_true",
                    help="truncate by truncation pairs (the previous construction)")
    a = ap.parse_args(argv)
    if a.select_by_triple:
        Semi2kOT.mux = None
    Semi2kOT.trunc_by_pair = a.trunc_by_pair
    cluster = None
    if a.cluster:
        from spu_lite.deploy.driver import NetworkCluster
        cluster = NetworkCluster(a.cluster)
    rng = np.random.default_rng(0)
    rows = []
    elementwise = [("mul", a.mul, lambda p, q: p * q, 2, "mul_1M", 1 << 20),
                   ("less", a.less, lambda p, q: p < q, 2, "less_1M", 1 << 20),
                   ("relu", a.relu, jax.nn.relu, 1, "relu_1M", 1 << 20),
                   ("max", a.max, jax.numpy.maximum, 2, None, 1),
                   ("exp", a.exp, jax.numpy.exp, 1, "exp_128k", 1 << 17)]
    for name, sizes, fn, arity, ref, ref_n in elementwise:
        for lg in sizes:
            n = 1 << lg
            args = tuple(rng.uniform(-4, 4, n) for _ in range(arity))
            rows.append((run_case(f"{name}_2^{lg}", fn, args, cluster), n, ref, ref_n))
    for shape in a.softmax:
        r, c = (int(v) for v in shape.lower().split("x"))
        x = rng.uniform(-4, 4, (r, c))
        rows.append((run_case(f"softmax_{r}x{c}", lambda p: jax.nn.softmax(p, axis=-1), (x,),
                              cluster), r * c, "softmax_128x1024", 128 * 1024))
    for n in a.matmul:
        if matmul_triple_bytes(n) > a.max_ot_gb * 2 ** 30:
            print(f"matmul_{n}: not run; one matrix triple needs "
                  f"{matmul_triple_bytes(n) / 2 ** 30:.1f} GiB per party (over --max-ot-gb)")
            continue
        x, y = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
        rows.append((run_case(f"matmul_{n}", lambda p, q: p @ q, (x, y), cluster), 1,
                     "matmul_512", 1))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{'nodes of ' + a.cluster if a.cluster else 'in-process'}"
          f"{'; select by Beaver triples' if a.select_by_triple else ''}"
          f"{'; truncation by pairs' if a.trunc_by_pair else ''}")
    print(f"{'case':<17}{'offline s':>10}{'online s':>10}{'total s':>9}{'offline MB':>12}"
          f"{'online MB':>11}{'rounds':>7}{'B/elem':>10}   CHEETAH")
    for r, count, ref, ref_n in rows:
        tot = r["offline_s"] + r["online_s"]
        per = r["offline_bytes"] / count if count > 1 else float("nan")
        scale = "" if ref is None else f"{CHEETAH[ref]:.2f} s for {ref}" + (
            f" (~{CHEETAH[ref] * count / ref_n:.2f} s pro rata)" if count > 1 else "")
        print(f"{r['case']:<17}{r['offline_s']:>10.3f}{r['online_s']:>10.3f}{tot:>9.3f}"
              f"{r['offline_bytes'] / 1e6:>12.1f}{r['online_bytes'] / 1e6:>11.2f}{r['rounds']:>7}"
              f"{per:>10.0f}   {scale}")
    return rows


if __name__ == "__main__":
    main()
