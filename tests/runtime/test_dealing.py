"""Seeded dealing (runtime/protocols/dealing.py): random pieces of an input's shares
travel as 16-byte keys, each only to the parties that hold that piece; the shares
they expand to reconstruct the input and are what the in-process cluster deals."""
import numpy as np
import pytest

from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.net import wire
from spu_lite.runtime.party import local_prg
from spu_lite.runtime.prg import Prg
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.protocols.dealing import SeededShare, SeedError
from spu_lite.runtime.ring import Ring

RING = Ring(64)


def _x(shape=(5, 3), seed=0):
    return RING.encode(np.random.default_rng(seed).normal(size=shape), 18)


def _keys(share):
    return [p for p in share.parts if isinstance(p, bytes)]


@pytest.mark.parametrize("protocol,n,arrays", [("aby3", 3, 2), ("semi2k", 2, 1),
                                                ("semi2k", 4, 1)])
def test_only_the_correction_travels_as_an_array(protocol, n, arrays):
    cls = get_protocol(protocol)
    x = _x()
    seeded = cls.deal_seeded(x, n, Prg(b"k" * 16), RING)
    assert sum(not isinstance(p, bytes) for s in seeded for p in s.parts) == arrays
    shares = [s.expand(x.shape, RING.dtype, cls.share_parts) for s in seeded]
    np.testing.assert_array_equal(cls.reconstruct(shares, RING), x)


def test_aby3_keys_reach_only_the_holders_of_their_piece():
    cls = get_protocol("aby3")
    p0, p1, p2 = cls.deal_seeded(_x(), 3, Prg(b"k" * 16), RING)
    k0, k1 = p0.parts                         # P0 holds pieces 0 and 1: both as keys
    assert _keys(p1) == [k1] and _keys(p2) == [k0] and k0 != k1
    assert p1.parts[1] is p2.parts[0]           # piece 2 (the correction) held by P1, P2


def test_keys_are_fresh_for_every_input():
    cls = get_protocol("aby3")
    prg = Prg(b"k" * 16)
    x = _x()
    keys = [k for _ in range(4) for s in cls.deal_seeded(x, 3, prg, RING) for k in _keys(s)]
    assert len(set(keys)) == 8                  # two per dealing, never repeated


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_in_process_shares_are_the_seeded_dealing_expanded(protocol):
    cluster = InProcessCluster(ClusterConfig(protocol=protocol, seed=3))
    cls, x = cluster.proto_cls, _x()
    seeded = cls.deal_seeded(x, cluster.nparties, local_prg(3, "driver"), RING)
    for dealt, s in zip(cluster.share(x), seeded):
        for p, q in zip(dealt.parts, s.expand(x.shape, RING.dtype, cls.share_parts).parts):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("parts,why", [
    ((b"short", b"k" * 16), "seed of 5 bytes"),
    ((b"k" * 17, b"k" * 16), "seed of 17 bytes"),
    ((b"k" * 16,), "1 parts"),
    ((b"k" * 16, b"k" * 16, b"k" * 16), "3 parts"),
    ((b"k" * 16, np.zeros((5, 2), np.uint64)), r"\(5, 2\)"),
    ((b"k" * 16, np.zeros((5, 3), np.int64)), "int64"),
    ((b"k" * 16, "text"), "type str"),
])
def test_a_share_that_does_not_fit_its_input_is_refused_without_its_keys(parts, why):
    with pytest.raises(SeedError, match=why) as e:
        SeededShare(parts).expand((5, 3), RING.dtype, 2)
    assert "kkkk" not in str(e.value) and "short" not in str(e.value)
    assert "kkkk" not in repr(SeededShare(parts))


def test_seeded_shares_on_the_wire():
    s = SeededShare((b"k" * 16, np.arange(6, dtype=np.uint64)), True)
    h, got = wire.split(wire.encode({"k": "d", "job": 1}, (s,)))
    assert isinstance(got[0], SeededShare) and got[0].boolean
    assert got[0].parts[0] == b"k" * 16 and np.array_equal(got[0].parts[1], s.parts[1])


@pytest.mark.parametrize("desc,frames", [
    ({"Z": [True]}, []),
    ({"Z": [1, [{"b": 1}]]}, [b"k" * 16]),             # flag not a bool
    ({"Z": [False, [{"S": [False, []]}]]}, []),          # a part that is not array / key
    ({"Z": [False, [{"t": [{"b": 1}]}]]}, [b"k" * 16]),
    ({"Z": [False, [{"b": 1}, {"b": 1}]]}, [b"k" * 16]),   # missing frame
])
def test_bad_seeded_share_descriptors_are_wire_errors(desc, frames):
    with pytest.raises(wire.WireError):
        wire.decode({"k": "d", "job": 1, "p": desc}, [b"{}"] + list(frames))
