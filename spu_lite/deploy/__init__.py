"""Deployment: every party a separate process on its own machine, over authenticated,
encrypted ZeroMQ links (runtime/net). See docs/deployment.md.

    cluster_file.py  the cluster YAML: parties, protocol, keys (ClusterSpec)
    keygen.py        key pairs and a cluster file for trying it out on one machine
    node.py          `spu-lite node`: one party process serving jobs
    jobs.py          what a node does for one job (consent, inputs, run, outputs)
    policy.py        program digests and node policies: which jobs a node runs
    approvals.py     pending programs and the operator's decisions (`spu-lite approve`)
    joblog.py        the append-only job log of every node
    loaders.py       party-owned inputs: loaders by name, or driver code if trusted
    handles.py       spu.party(name)(loader)(*args): handles to party-owned inputs
    driver.py        NetworkCluster and spu.init(cluster=...)
    launcher.py      `spu-lite cluster up`: all parties of a file as subprocesses
    cli.py           the `node`, `cluster` and `approve` subcommands
    bench.py         loopback benchmark against the in-process cluster

Importing this package is cheap: zmq is imported by the modules that need it.
"""
from .handles import PartyInput, party

__all__ = ["party", "PartyInput", "init"]


def init(cluster, as_: str = "driver", **kw):
    """spu.init(cluster="cluster.yaml", as_="driver"): route spu.jit to the cluster."""
    from .driver import init as _init
    return _init(cluster, as_=as_, **kw)
