"""narrow.msb_narrow: the sign of a small value on packed fields, for every protocol,
at the edges of its range, and its cost against the full 64-bit adder."""
import numpy as np
import pytest

from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.fxp.compare import msb
from spu_lite.runtime.fxp.narrow import floor_slack, msb_narrow

from .harness import run_parties, share


@pytest.mark.parametrize("protocol", ["ref2k", "aby3", "semi2k"])
@pytest.mark.parametrize("width", [32, 16, 8])
def test_sign_of_small_values(protocol, width):
    cl = InProcessCluster(ClusterConfig(protocol=protocol, seed=4))
    lim = 2 ** (width - 1) - 1
    rng = np.random.default_rng(width)
    y = np.concatenate([rng.integers(-lim, lim + 1, 997), [0, -1, 1, lim, -lim]]).astype(np.int64)
    sy = share(cl, y.view(np.uint64))          # 1002 values: an odd tail of packed words
    res = run_parties(cl, lambda P, r: msb_narrow(P, sy[r], width))
    got = cl.proto_cls.reconstruct(res, cl.ring)
    np.testing.assert_array_equal(got, (y < 0).astype(np.uint64))


def test_shape_is_kept_and_32_bit_ring_uses_the_plain_adder():
    cl = InProcessCluster(ClusterConfig(protocol="aby3", seed=5, field=32))
    y = np.array([[-3, 4], [0, -70000]], np.int64)
    sy = share(cl, y.astype(np.uint32))
    res = run_parties(cl, lambda P, r: msb_narrow(P, sy[r], 32))
    np.testing.assert_array_equal(cl.proto_cls.reconstruct(res, cl.ring), [[1, 0], [0, 1]])


def test_packing_halves_the_and_traffic():
    """aby3: 32-bit fields, two per word: fewer bytes than the 64-bit adder's msb."""
    cl = InProcessCluster(ClusterConfig(protocol="aby3", seed=6))
    sy = share(cl, np.arange(-2048, 2048, dtype=np.int64).view(np.uint64))
    sent = {}
    for name, fn in (("narrow", lambda P, r: msb_narrow(P, sy[r], 32)),
                     ("full", lambda P, r: msb(P, sy[r]))):
        before = cl.parties[1].comm.bytes_sent
        run_parties(cl, fn)
        sent[name] = cl.parties[1].comm.bytes_sent - before
    assert sent["narrow"] < 0.6 * sent["full"], sent


@pytest.mark.parametrize("protocol", ["ref2k", "aby3", "semi2k"])
def test_local_shift_is_the_floor_up_to_the_slack(protocol):
    """shift=s: the sign of floor(y / 2^s) - c, 0 <= c <= floor_slack, with no truncation
    round: values whose floor is >= slack read as non-negative, below 0 as negative, for
    |y| up to 2^(31+s) (the addends' wrap-arounds vanish mod 2^32)."""
    cl = InProcessCluster(ClusterConfig(protocol=protocol, seed=8))
    s = 19
    rng = np.random.default_rng(1)
    fl = np.concatenate([rng.integers(-2 ** 31 + 3, 2 ** 31 - 3, 2000),
                         np.arange(-4, 5), [2 ** 31 - 4, -2 ** 31 + 3]])
    y = fl * 2 ** s + rng.integers(0, 2 ** s, fl.size)            # floor(y / 2^s) = fl
    sy = share(cl, y.astype(np.int64).view(np.uint64))
    slack = run_parties(cl, lambda P, r: floor_slack(P))[0]
    assert slack == {"ref2k": 0, "aby3": 2, "semi2k": 1}[protocol]
    before = cl.parties[0].comm.rounds
    res = run_parties(cl, lambda P, r: msb_narrow(P, sy[r], 32, shift=s))
    got = cl.proto_cls.reconstruct(res, cl.ring).astype(np.int64)
    sure = (fl < 0) | (fl >= slack)
    np.testing.assert_array_equal(got[sure], (fl < 0)[sure].astype(np.int64))
    assert set(np.unique(got[~sure])) <= {0, 1}
    if protocol == "aby3":                     # 1 carry-save + 6 adder rounds + b2a
        assert cl.parties[0].comm.rounds - before == 8


def test_a_shift_must_leave_the_width():
    cl = InProcessCluster(ClusterConfig(protocol="aby3", seed=9))
    sy = share(cl, np.zeros(4, np.uint64))
    with pytest.raises(Exception, match="leaves fewer than 32 bits"):
        run_parties(cl, lambda P, r: msb_narrow(P, sy[r], 32, shift=40))
