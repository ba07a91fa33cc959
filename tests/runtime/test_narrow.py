"""narrow.msb_narrow: the sign of a small value on packed fields, for every protocol,
at the edges of its range, and its cost against the full 64-bit adder."""
import numpy as np
import pytest

from runtime.cluster import ClusterConfig, InProcessCluster
from runtime.fxp.compare import msb
from runtime.fxp.narrow import msb_narrow

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
