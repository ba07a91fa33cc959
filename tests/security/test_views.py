"""What a party sees does not depend on the secrets (issue 12, part 10), checked more
strictly than tests/runtime: every byte of every ring element (not only the top byte),
the views for two different secrets compared with each other, party 0 of semi2k (the
one that hears the dealer), and fresh OS randomness when no seed is given."""
import numpy as np
import pytest

from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.fxp.compare import less
from spu_lite.runtime.protocols.base import Share
from tests.runtime.harness import run_parties, share

try:
    from scipy.stats import chi2, chi2_contingency
except ImportError:  # pragma: no cover
    chi2 = chi2_contingency = None

M = 1 << 14          # elements per message looked at
P_ONE = 1e-6         # per (array, byte) uniformity test
P_PAIR = 1e-6        # per (array, byte) two-secret comparison


def _record(cluster, ranks):
    """Every payload each party in `ranks` receives: {rank: [(from, array), ...]}."""
    logs = {r: [] for r in ranks}
    for r in ranks:
        tr = cluster.parties[r].comm.transport
        orig = tr.recv

        def recv(frm, orig=orig, log=logs[r]):
            payload = orig(frm)
            for a in (payload if isinstance(payload, (tuple, list)) else [payload]):
                for p in (a.parts if isinstance(a, Share) else [a]):
                    if isinstance(p, np.ndarray):
                        log.append((frm, p))
            return payload
        tr.recv = recv
    return logs


def _bytes(a):
    """[8, n] bytes of uint64 ring elements: byte 0 = least significant."""
    a = np.ascontiguousarray(np.asarray(a, np.uint64).reshape(-1)[:M])
    return a.view(np.uint8).reshape(-1, 8).T


def _chi2_stat(b):
    counts = np.bincount(b, minlength=256)
    exp = counts.sum() / 256
    return float(((counts - exp) ** 2).sum() / exp)


def assert_uniform(a, what):
    """Every one of the 8 bytes of the ring elements is uniform (chi-square, 255 dof)."""
    limit = float(chi2.isf(P_ONE, 255)) if chi2 is not None else 400.0
    for i, b in enumerate(_bytes(a)):
        assert _chi2_stat(b) < limit, (what, "byte", i)


def assert_same_distribution(a, b, what):
    """Byte by byte, the two views are draws of one distribution (contingency test)."""
    if chi2_contingency is None:  # pragma: no cover
        return
    for i, (x, y) in enumerate(zip(_bytes(a), _bytes(b))):
        table = np.stack([np.bincount(x, minlength=256), np.bincount(y, minlength=256)])
        assert chi2_contingency(table).pvalue > P_PAIR, (what, "byte", i)


def _views(protocol, n, secret_pair, body, ranks, seed):
    cl = InProcessCluster(ClusterConfig(protocol=protocol, nparties=n, seed=seed))
    logs = _record(cl, ranks)
    x, y = (np.full(M, v, np.uint64) for v in secret_pair)
    sx, sy = share(cl, x), share(cl, y)
    outs = run_parties(cl, lambda P, r: body(P, sx[r], sy[r]))
    views = {}
    for r in ranks:
        own = list(sx[r].parts) + list(sy[r].parts)
        own += [p for o in (outs[r] if isinstance(outs[r], tuple) else [outs[r]])
                for p in o.parts]
        views[r] = [("own", p) for p in own] + logs[r]
    return views


def _big(view):
    return [(f, a) for f, a in view if a.dtype in (np.uint64, np.int64) and a.size >= M]


def test_less_views_for_two_different_secrets():
    """aby3 less(x, y) for x < y and for x > y (not less(x, x), whose shares are all
    zero): every message each party receives is uniform in every byte, and the two
    secrets' views are indistinguishable message by message."""
    pairs = [(5 << 18, 9 << 18), ((1 << 40) + 3, 12345)]
    views = [_views("aby3", 3, p, lambda P, a, b: less(P, a, b), range(3), seed=None)
             for p in pairs]
    for r in range(3):
        v0, v1 = _big(views[0][r]), _big(views[1][r])
        assert len(v0) == len(v1) >= 4, r
        for k, ((_, a), (_, b)) in enumerate(zip(v0, v1)):
            assert_uniform(a, (r, k, "x<y"))
            assert_uniform(b, (r, k, "x>y"))
            assert_same_distribution(a, b, (r, k))


@pytest.mark.parametrize("n", [2, 3])
def test_semi2k_party_0_view_including_the_dealer(n):
    """Party 0 of semi2k also hears the dealer (correlations). Its whole view of
    mul, trunc and less -- its shares, what the other parties send, what the dealer
    sends, its outputs -- is uniform in every byte and the same for two secrets."""
    def body(P, a, b):
        return P.trunc(P.mul(a, b), 18), less(P, a, b)
    views = [_views("semi2k", n, p, body, [0, 1], seed=None)
             for p in [(0, 0), (1 << 40, (1 << 40) + 7)]]
    for r in (0, 1):
        v0, v1 = _big(views[0][r]), _big(views[1][r])
        assert len(v0) == len(v1), r
        for k, ((f, a), (_, b)) in enumerate(zip(v0, v1)):
            assert_uniform(a, (r, k, f))
            assert_uniform(b, (r, k, f))
            assert_same_distribution(a, b, (r, k, f))
    dealer = n
    heard = {f for f, _ in views[0][0]}
    assert dealer in heard                           # party 0 does hear the dealer
    assert dealer not in {f for f, _ in views[0][1]}
    assert any(f == dealer for f, _ in _big(views[0][0]))


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_unseeded_runs_use_fresh_randomness(protocol):
    """Two clusters without a seed: the same input gets different shares, the same
    multiplication different masks (the keys come from the OS, not a default seed)."""
    got = []
    for _ in range(2):
        cl = InProcessCluster(ClusterConfig(protocol=protocol, seed=None))
        logs = _record(cl, [1])
        x = np.full(64, 12345, np.uint64)
        sx = share(cl, x)
        run_parties(cl, lambda P, r: P.mul(sx[r], sx[r]))
        got.append((np.concatenate([np.ravel(p) for s in sx for p in s.parts]),
                    np.concatenate([np.ravel(a) for _, a in logs[1]])))
    (s0, m0), (s1, m1) = got
    assert s0.shape == s1.shape and m0.shape == m1.shape and m0.size
    assert np.mean(s0 == s1) < 0.01 and np.mean(m0 == m1) < 0.01


def test_unseeded_owners_and_noise_use_fresh_randomness():
    from spu_lite.fl.backends import _prg
    from spu_lite.fl.owners import DataOwner
    a = [DataOwner("alice", np.zeros((2, 1)), np.zeros(2), train_fn=lambda *a: a[0])._prg
         for _ in range(2)]
    assert not np.array_equal(a[0].uniform((8,), np.uint64), a[1].uniform((8,), np.uint64))
    n = [_prg(None, "noise/P0") for _ in range(2)]
    assert not np.array_equal(n[0].uniform((8,), np.uint64), n[1].uniform((8,), np.uint64))
