"""Loopback benchmark: the op cases on real node processes (CURVE-encrypted zmq over
127.0.0.1) next to the in-process cluster, with the ratio networked / in-process.

    python -m spu_lite.deploy.bench [--protocol aby3 semi2k] [--size 100000] [--repeat 3]

Per case and protocol: warm up once (compile, key setup), then --repeat end-to-end
calls of the jitted function (share, send, run, receive, reconstruct); the median is
reported. Bytes and rounds are the run's totals (max over parties), identical on both
clusters since the same party code runs. `--size` is the number of elements of the
elementwise cases; matmul multiplies two sqrt(size) x sqrt(size) matrices.
bench_rows() is what another benchmark can call.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Dict, List, Sequence

import numpy as np


def _cases(size: int, rng) -> Dict[str, tuple]:
    import jax
    k = max(2, int(round(size ** 0.5)))
    vec = lambda: rng.uniform(-4, 4, size)
    mat = lambda: rng.uniform(-1, 1, (k, k))
    return {"mul": (lambda x, y: x * y, (vec(), vec())),
            f"matmul_{k}": (lambda x, y: x @ y, (mat(), mat())),
            "less": (lambda x, y: x < y, (vec(), vec())),
            "relu": (lambda x: jax.nn.relu(x), (vec(),))}


def _time(jf, args, repeat: int):
    jf(*args)                                   # warm-up: compile, session setup
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        jf(*args)
        ts.append(time.perf_counter() - t)
    total = jf.last_profile.total
    return statistics.median(ts), total.bytes, total.rounds


def bench_rows(protocols: Sequence[str] = ("aby3", "semi2k"), size: int = 100_000,
               repeat: int = 3, timeout: float = 60.0) -> List[dict]:
    """One row per (protocol, case): seconds / bytes / rounds on the loopback cluster
    and in-process, and the ratio of the times."""
    import spu_lite as spu
    from runtime.cluster import ClusterConfig, InProcessCluster
    from .driver import NetworkCluster
    from .keygen import keygen
    from .launcher import Launcher, free_ports

    rows = []
    for protocol in protocols:
        parties, dealer = (["alice", "bob", "carol"], None) if protocol == "aby3" \
            else (["alice", "bob"], "dave")
        with tempfile.TemporaryDirectory() as d:
            path = keygen(d, parties, dealer, protocol=protocol, timeout=timeout,
                          ports=free_ports(len(parties) + (1 if dealer else 0)))
            with Launcher(path, log_dir=f"{d}/logs"):
                net = NetworkCluster(path)
                local = InProcessCluster(ClusterConfig(protocol=protocol,
                                                       nparties=len(parties)))
                try:
                    for name, (fn, args) in _cases(size, np.random.default_rng(0)).items():
                        t_net, b, r = _time(spu.jit(fn, cluster=net), args, repeat)
                        t_loc, b_loc, _ = _time(spu.jit(fn, cluster=local), args, repeat)
                        rows.append(dict(protocol=protocol, case=name, net_s=t_net,
                                         inproc_s=t_loc, bytes=b, rounds=r,
                                         ratio=t_net / t_loc, same_bytes=b == b_loc))
                finally:
                    net.close()
    return rows


def format_table(rows: List[dict]) -> str:
    lines = [f"{'protocol':<9}{'case':<12}{'net s':>9}{'in-proc s':>11}{'ratio':>8}"
             f"{'bytes':>13}{'rounds':>8}"]
    for r in rows:
        lines.append(f"{r['protocol']:<9}{r['case']:<12}{r['net_s']:>9.4f}{r['inproc_s']:>11.4f}"
                     f"{r['ratio']:>8.2f}{r['bytes']:>13}{r['rounds']:>8}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m spu_lite.deploy.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", nargs="+", default=["aby3", "semi2k"],
                   choices=["aby3", "semi2k"])
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    print(format_table(bench_rows(a.protocol, a.size, a.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
