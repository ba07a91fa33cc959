"""Network emulation (runtime.link.LinkModel): an emulated round trip and bandwidth
show up in the time of a job, on the in-process cluster and on real node processes.

Only lower bounds are asserted (the machine may be busy, which only makes runs
slower): a round of simultaneous exchanges costs at least one one-way latency rtt/2,
and the busiest party's bytes need at least bytes / bandwidth on its uplink.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.link import LinkModel
from spu_lite.deploy import cluster_file
from spu_lite.deploy.driver import NetworkCluster

from .netcluster import make_cluster_file, running

RTT = 0.04


def _timed(jf, *args):
    jf(*args)                                  # compile, key setup
    t = time.perf_counter()
    out = jf(*args)
    return time.perf_counter() - t, out


@pytest.mark.parametrize("spec, rtt, bw", [
    ("rtt=20ms,bw=100mbit", 0.02, 100e6), ("bw=1gbit, rtt=0.2ms", 0.0002, 1e9),
    ("rtt=1s", 1.0, 0.0), ("lan", 0.0002, 1e9), ("WAN", 0.02, 100e6), ("rtt=150us", 1.5e-4, 0)])
def test_link_model_reads_rtt_and_bandwidth(spec, rtt, bw):
    m = LinkModel.parse(spec)
    assert m.rtt == pytest.approx(rtt) and m.bw == pytest.approx(bw)
    assert LinkModel.parse(str(m)) == m


@pytest.mark.parametrize("spec", ["rtt=20", "rtt=20mb", "latency=2ms", "bw=fast", "rtt=2ms;bw=1gbit"])
def test_link_model_rejects_what_it_cannot_read(spec):
    with pytest.raises(ValueError, match="net:"):
        LinkModel.parse(spec)
    assert LinkModel.parse(None) is None and LinkModel.parse("none") is None


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_in_process_links_take_at_least_rounds_times_half_the_rtt(protocol):
    x, y = np.linspace(-2, 2, 64), np.linspace(1, 3, 64)
    jf = spu.jit(lambda a, b: (a * b < 2.0) * a, protocol=protocol, net=f"rtt={RTT * 1e3:g}ms")
    t, out = _timed(jf, x, y)
    np.testing.assert_allclose(out, (x * y < 2.0) * x, atol=1e-4)
    rounds = jf.last_profile.total.rounds
    assert rounds >= 5 and t >= rounds * RTT / 2


def test_in_process_bandwidth_bounds_a_large_message():
    x = np.linspace(-2, 2, 20_000)
    jf = spu.jit(lambda a: a * a, net="bw=20mbit")       # ~320 KB of shares per party
    t, out = _timed(jf, x)
    np.testing.assert_allclose(out, x * x, atol=1e-3)
    nbytes = max(p.total.bytes for p in jf.cluster.party_profiles)   # the busiest uplink
    assert nbytes >= 160_000 and t >= nbytes * 8 / 20e6


def test_real_nodes_take_at_least_rounds_times_half_the_rtt(tmp_path):
    def emulate(doc):
        doc["net"] = f"rtt={RTT * 1e3:g}ms"
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], timeout=20, edit=emulate)
    assert cluster_file.load(path).config().net == f"rtt={RTT * 1e3:g}ms"
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            x, y = np.linspace(-2, 2, 64), np.linspace(1, 3, 64)
            jf = spu.jit(lambda a, b: (a * b < 2.0) * a, cluster=net)
            t, out = _timed(jf, x, y)
            np.testing.assert_allclose(out, (x * y < 2.0) * x, atol=1e-4)
            rounds = net.last_profile.total.rounds
            assert rounds >= 5 and t >= rounds * RTT / 2
        finally:
            net.close()


def test_cluster_file_with_an_unreadable_net_is_refused(tmp_path):
    def bad(doc):
        doc["net"] = "rtt=fast"
    with pytest.raises(cluster_file.ClusterFileError, match="net:"):
        cluster_file.load(make_cluster_file(tmp_path, ["alice", "bob", "carol"], edit=bad))
