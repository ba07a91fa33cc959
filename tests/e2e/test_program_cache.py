"""Programs cached at the nodes by the sha256 of their IR text, BLAS threads per node."""
from __future__ import annotations

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler.ir import parse_program
from spu_lite.deploy import program_cache
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.deploy.program_cache import (ProgramCache, ProgramNotCached, ProgramShipping,
                                           ir_digest)
from spu_lite.deploy.threads import blas_threads

from .netcluster import make_cluster_file, running


def _text(fn=lambda x: x * x):
    return spu.compile(fn, np.ones(3)).text


def test_cache_parses_once_and_answers_by_digest_alone():
    text = _text()
    cache = ProgramCache()
    first, canonical = cache.resolve({"program": text, "program_sha": ir_digest(text)})
    header = {"program_sha": ir_digest(text)}
    assert cache.resolve(header) == (first, canonical) and header["program"] == text
    assert parse_program(text).text == first.text


def test_cache_refuses_text_under_another_digest_and_names_a_missing_one():
    cache = ProgramCache()
    with pytest.raises(ValueError, match="digest"):
        cache.resolve({"program": _text(), "program_sha": ir_digest(_text(lambda x: x + 1))})
    with pytest.raises(ProgramNotCached):
        cache.resolve({"program_sha": "ab" * 32})


def test_cache_keeps_the_most_recently_used_programs():
    cache = ProgramCache(size=2)
    texts = [_text(f) for f in (lambda x: x * x, lambda x: x + 1, lambda x: x - 1)]
    for t in texts:
        cache.resolve({"program": t})
    with pytest.raises(ProgramNotCached):
        cache.resolve({"program_sha": ir_digest(texts[0])})
    assert cache.resolve({"program_sha": ir_digest(texts[2])})


def test_driver_ships_the_text_once_per_session_and_node():
    ship, text = ProgramShipping(), _text()
    d = ir_digest(text)
    assert ship.header("s1", 0, text, d)["program"] == text
    ship.acknowledge([0], d)
    assert "program" not in ship.header("s1", 0, text, d)
    assert ship.header("s1", 1, text, d)["program"] == text      # node 1 never got it
    assert ship.header("s2", 0, text, d)["program"] == text      # a new session


@pytest.mark.parametrize("addresses, cores, want", [
    (["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], 2, 1),
    (["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], 8, 2),
    (["localhost:1", "10.0.0.2:2", "10.0.0.3:3"], 8, 8),
    (["10.0.0.1:1", "10.0.0.1:2", "10.0.0.3:3"], 8, 4),
])
def test_blas_threads_share_the_cores_among_the_nodes_of_one_host(addresses, cores, want):
    class P:
        def __init__(self, a):
            self.address = a

    class Spec:
        parties = [P(a) for a in addresses]
        nparties = len(addresses)
    assert blas_threads(Spec, 0, cores) == want


@pytest.mark.slow
def test_node_that_lost_a_program_gets_its_text_again(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], timeout=20)
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            x = np.linspace(-1, 1, 5)
            fns = [spu.jit(lambda a, k=k: a * float(k + 2), cluster=net)
                   for k in range(program_cache.MAX_PROGRAMS + 1)]
            for f in fns:
                f(x)
            session = net.session
            assert len(net._shipping.acked[0]) == len(fns)   # the driver thinks all cached
            np.testing.assert_allclose(fns[0](x), x * 2.0, atol=1e-4)   # evicted at the nodes
            assert net.session != session                   # failed once, shipped again
            np.testing.assert_allclose(fns[-1](x), x * float(len(fns) + 1), atol=1e-4)
        finally:
            net.close()
