"""BLAS threads of a node from the cores it actually has.

Three node processes on a two-core machine, each with a BLAS pool of two threads,
oversubscribe the cores: a ring GEMM (runtime/ring_matmul.py, float64 limbs) then
runs several times slower than with one thread each. A node counts the cores it may
run on (os.sched_getaffinity: cgroups and taskset included) and the nodes of its
cluster on the same host, and gives each max(1, cores // local nodes) threads.
"""
from __future__ import annotations

import os
import socket
from typing import Optional

from threadpoolctl import threadpool_limits

_LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "[::1]"}


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]") if ":" in address else address


def _is_local(host: str) -> bool:
    if host in _LOCAL or host.startswith("127."):
        return True
    try:
        return host in (socket.gethostname(), socket.getfqdn())
    except OSError:
        return False


def blas_threads(spec, rank: int, cores: Optional[int] = None) -> int:
    """Threads for the node of `rank`: its cores shared among the cluster's computing
    nodes on the same host (the dealer computes little and is not counted)."""
    cores = cores or len(os.sched_getaffinity(0))
    mine = _host(spec.parties[rank].address)
    here = [p for r, p in enumerate(spec.parties[:spec.nparties])
            if _host(p.address) == mine or (_is_local(mine) and _is_local(_host(p.address)))]
    return max(1, cores // max(1, len(here)))


def limit_blas_threads(spec, rank: int):
    """Apply blas_threads for the rest of the process; returns the threadpoolctl
    handle (keep it referenced) and the number of threads."""
    n = blas_threads(spec, rank)
    return threadpool_limits(n, user_api="blas"), n
