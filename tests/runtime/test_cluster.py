"""In-process cluster: failures surface as clear errors, nothing hangs."""
import time

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.link import PeerError


def _jit(cluster, fn):
    return spu.jit(fn, protocol=cluster.config.protocol, cluster=cluster)


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_a_failing_party_fails_the_job_for_everyone(protocol, monkeypatch):
    c = InProcessCluster(ClusterConfig(protocol=protocol, seed=1, timeout=30))
    victim = c.parties[1].proto

    def boom(*a, **k):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(victim, "mul", boom)
    monkeypatch.setattr(victim, "mul_trunc", boom)         # x * y runs fused (aby3)
    t0 = time.perf_counter()
    with pytest.raises(Exception, match="disk on fire"):
        _jit(c, lambda x, y: x * y)(np.ones(4), np.ones(4))
    assert time.perf_counter() - t0 < 5          # the others were woken, not timed out


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_a_hung_party_times_out_with_its_name(protocol, monkeypatch):
    c = InProcessCluster(ClusterConfig(protocol=protocol, seed=1, timeout=1.0))
    victim = c.parties[0].proto
    real_mul, real_mul_trunc = victim.mul, victim.mul_trunc
    slept = []

    def hang(*a, **k):                  # x * y runs fused; semi2k's fused call uses mul
        if not slept:
            slept.append(time.sleep(3))
        return real_mul(*a, **k)

    def hang_fused(*a, **k):
        if not slept:
            slept.append(time.sleep(3))
        return real_mul_trunc(*a, **k)
    monkeypatch.setattr(victim, "mul", hang)
    monkeypatch.setattr(victim, "mul_trunc", hang_fused)
    t0 = time.perf_counter()
    with pytest.raises(PeerError, match="P0"):
        _jit(c, lambda x, y: x * y)(np.ones(4), np.ones(4))
    assert time.perf_counter() - t0 < 4.5


def test_a_broken_cluster_refuses_new_jobs_and_default_clusters_are_rebuilt():
    c = InProcessCluster(ClusterConfig(protocol="ref2k", seed=1))
    c.hub.fail("test")
    with pytest.raises(PeerError, match="broken"):
        _jit(c, lambda x: x + 1)(np.ones(2))


def test_same_seed_same_shares():
    a = InProcessCluster(ClusterConfig(protocol="aby3", seed=5))
    b = InProcessCluster(ClusterConfig(protocol="aby3", seed=5))
    x = a.ring.encode(np.arange(4.0), 18)
    for sa, sb in zip(a.share(x), b.share(x)):
        for pa, pb in zip(sa.parts, sb.parts):
            np.testing.assert_array_equal(pa, pb)
