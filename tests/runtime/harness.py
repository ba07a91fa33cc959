"""Run protocol kernels directly on the parties of an in-process cluster (tests only)."""
import threading

import numpy as np

from spu_lite.runtime.link import PeerError


def run_parties(cluster, fn, timeout=60):
    """Run fn(proto, rank) on every computing party (one thread each) while the dealer,
    if the protocol has one, serves -- as InProcessCluster.run does for programs.
    Returns the per-party results; re-raises the first real error."""
    n = cluster.nparties
    results, errors = [None] * n, []

    def guard(body):
        try:
            body()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            cluster.hub.fail(repr(e))

    def party(r):
        P = cluster.parties[r].proto
        P.begin_job()
        results[r] = fn(P, r)
        P.end_job()

    threads = [threading.Thread(target=guard, args=(lambda r=r: party(r),)) for r in range(n)]
    if cluster.dealer is not None:
        threads.append(threading.Thread(target=guard, args=(cluster.dealer.serve_job,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    real = [e for e in errors if not isinstance(e, PeerError)]
    if errors:
        raise (real or errors)[0]
    return results


def share(cluster, x):
    return cluster.share(np.asarray(x, cluster.ring.dtype))
