"""aby3's own facts: the replicated share layout, communication counts, and the
statistical independence of a party's view from the secret. The kernels against
plaintext: test_kernels.py (every protocol)."""

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.fxp.compare import less, msb
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.protocols.aby3 import Aby3
from spu_lite.runtime.protocols.base import Share

from .harness import run_parties, share

try:
    from scipy.stats import chi2
except ImportError:  # pragma: no cover
    chi2 = None

# --------------------------------------------------------------------------------------
# helpers

_CLUSTERS = {}


def cluster_for(field=64, seed=11):
    key = (field, seed)
    if key not in _CLUSTERS:
        _CLUSTERS[key] = InProcessCluster(ClusterConfig(protocol="aby3", field=field, seed=seed))
    return _CLUSTERS[key]


def bshare(cluster, x, rng):
    """Boolean RSS of x: x = b0 ^ b1 ^ b2, P_i holds (b_i, b_{i+1})."""
    dt = cluster.ring.dtype
    b0, b1 = rand_ring(rng, x.shape, cluster.ring.bits), rand_ring(rng, x.shape, cluster.ring.bits)
    b2 = np.asarray(x, dt) ^ b0 ^ b1
    b = [b0, b1, b2]
    return [Share((b[i], b[(i + 1) % 3]), True) for i in range(3)]


def opened(cluster, results):
    return Aby3.reconstruct(results, cluster.ring)


def rand_ring(rng, shape, field=64):
    dt = np.uint64 if field == 64 else np.uint32
    return rng.integers(0, np.iinfo(dt).max, shape, dtype=dt, endpoint=True)


# --------------------------------------------------------------------------------------
# registry, dealing, reveal


def test_registered():
    assert get_protocol("aby3") is Aby3
    assert Aby3.default_parties == 3 and not Aby3.needs_dealer


def test_deal_reconstruct_reveal_layout():
    c = cluster_for()
    rng = np.random.default_rng(1)
    x = rand_ring(rng, (50,))
    sh = share(c, x)
    # replicated layout: P_i = (x_i, x_{i+1})
    for i in range(3):
        assert sh[i].parts[1] is sh[(i + 1) % 3].parts[0] or \
            np.array_equal(sh[i].parts[1], sh[(i + 1) % 3].parts[0])
    assert np.array_equal(opened(c, sh), x)
    outs = run_parties(c, lambda P, r: P.reveal(sh[r]))
    for o in outs:
        assert np.array_equal(o, x)


# --------------------------------------------------------------------------------------
# fixed-point products end to end (the kernels themselves: test_kernels.py)


def test_fixed_point_products_never_off_by_more_than_one_ulp():
    """2^20 products of uniform [-256, 256] values: 0 results off by more than 1 ulp.
    (x64 on, so the revealed result is decoded to float64, not rounded to float32.)"""
    import jax
    rng = np.random.default_rng(6)
    n = 1 << 20
    x, y = rng.uniform(-256, 256, n), rng.uniform(-256, 256, n)
    with jax.enable_x64(True):
        f = spu.jit(lambda a, b: a * b, protocol="aby3", seed=3)
        out = np.asarray(f(x, y))
    assert out.dtype == np.float64
    q = lambda v: np.round(v * 2.0 ** 18) / 2.0 ** 18       # the encoded inputs
    err = out - q(x) * q(y)
    ulp = 2.0 ** -18
    assert np.count_nonzero(np.abs(err) > 2 * ulp) == 0
    assert np.abs(err).max() < ulp * (1 + 1e-6)          # construction: floor or floor + 1
    assert abs(err.mean()) < 0.01 * ulp                    # unbiased (stochastic rounding)


# --------------------------------------------------------------------------------------
# end to end, ring 32


def test_jit_end_to_end():
    import jax
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((20, 30)), rng.standard_normal((30, 10))
    f = spu.jit(lambda a, b: jax.nn.relu(a @ b), protocol="aby3", seed=5)
    assert np.abs(np.asarray(f(x, w)) - np.maximum(x @ w, 0)).max() < 1e-3
    g = spu.jit(lambda a, b: (a < b, a * b), protocol="aby3", field=32, fxp_bits=8, seed=5)
    a, b = rng.uniform(-20, 20, 1000), rng.uniform(-20, 20, 1000)
    lt, prod = g(a, b)
    qa, qb = np.round(a * 256) / 256, np.round(b * 256) / 256
    assert np.array_equal(np.asarray(lt), qa < qb)
    assert np.abs(np.asarray(prod, np.float64) - qa * qb).max() <= 1 / 256


# --------------------------------------------------------------------------------------
# communication counts


def test_costs():
    n = 1 << 12
    rng = np.random.default_rng(11)
    f = spu.jit(lambda a, b: a * b, protocol="aby3", seed=9)
    f(rng.standard_normal(n), rng.standard_normal(n))
    profs = f.cluster.party_profiles          # a * b: one fused mul_trunc
    assert [p.ops["mul_trunc"].rounds for p in profs] == [1, 2, 2]
    assert [p.ops["mul_trunc"].bytes for p in profs] == [24 * n, 16 * n, 16 * n]
    c = cluster_for()
    x = share(c, rand_ring(rng, (n,)))
    bx = bshare(c, rand_ring(rng, (n,)), rng)
    for fn, rounds, nbytes in [(lambda P, r: P.mul(x[r], x[r]), 1, [8 * n] * 3),
                               (lambda P, r: P.trunc(x[r], 18), 1, [24 * n, 8 * n, 8 * n]),
                               (lambda P, r: P.reveal(x[r]), 1, [8 * n] * 3),
                               (lambda P, r: P.and_(bx[r], bx[r]), 1, [8 * n] * 3),
                               (lambda P, r: P.b2a_bit(bx[r]), 1, [32 * n, 8 * n, 8 * n]),
                               (lambda P, r: P.mul_trunc(x[r], x[r], 18), [1, 2, 2], [24 * n, 16 * n, 16 * n]),
                               (lambda P, r: msb(P, x[r]), 9, None)]:
        before = [(p.comm.rounds, p.comm.bytes_sent) for p in c.parties]
        run_parties(c, fn)
        after = [(p.comm.rounds, p.comm.bytes_sent) for p in c.parties]
        # mul_trunc: P0 only speaks in the second round (2 rounds on the critical path)
        want = rounds if isinstance(rounds, list) else [rounds] * 3
        assert [a[0] - b[0] for a, b in zip(after, before)] == want
        if nbytes is not None:
            assert [a[1] - b[1] for a, b in zip(after, before)] == nbytes


# --------------------------------------------------------------------------------------
# security: a party's view does not depend on the secret


def _recording(cluster):
    """Record every array each party receives (wrapping its transport)."""
    logs = [[] for _ in range(3)]
    for r, p in enumerate(cluster.parties):
        tr = p.comm.transport
        orig = tr.recv

        def recv(frm, orig=orig, log=logs[r]):
            payload = orig(frm)
            log.extend(payload if isinstance(payload, tuple) else [payload])
            return payload
        tr.recv = recv
    return logs


def _chi2_limit(p):
    """Chi-square statistic (255 dof) exceeded with probability p by uniform data."""
    if chi2 is not None:
        return float(chi2.isf(p, 255))
    return {1e-4: 347.7, 1e-7: 390.2}[p]  # pragma: no cover


def _top_byte_stat(a):
    """Chi-square statistic of the top byte of ring elements against uniform."""
    top = (a >> np.array(8 * a.itemsize - 8, a.dtype)).astype(np.intp)
    counts = np.bincount(top.ravel(), minlength=256)
    exp = counts.sum() / 256
    return float(((counts - exp) ** 2).sum() / exp)


@pytest.mark.parametrize("secret", [0, 1 << 40])
def test_views_are_uniform(secret):
    """For secrets all 0 and all 2^40: each party's shares, every message it receives
    (mul, trunc, and_, b2a_bit, less, mul_trunc) and its output shares have uniform
    top bytes."""
    c = InProcessCluster(ClusterConfig(protocol="aby3", seed=secret % 1000 + 1))
    logs = _recording(c)
    n = 1 << 16
    x = np.full(n, secret, np.uint64)
    sx = share(c, x)
    bits = bshare(c, np.full(n, secret >> 40, np.uint64), np.random.default_rng(0))

    def body(P, r):
        outs = [P.mul(sx[r], sx[r]), P.trunc(sx[r], 18), P.and_(bits[r], bits[r]),
                P.b2a_bit(bits[r]), less(P, sx[r], sx[r]), P.mul_trunc(sx[r], sx[r], 18)]
        return outs

    res = run_parties(c, body)
    lim1, lim2 = _chi2_limit(1e-4), _chi2_limit(1e-7)     # p-value > 1e-4 (> 1e-7 per pair)
    for r in range(3):
        view = list(sx[r].parts) + logs[r] + [p for s in res[r] for p in s.parts]
        view = [np.asarray(a).reshape(-1)[:n] for a in view if np.asarray(a).size >= n]
        for i, a in enumerate(view):
            assert _top_byte_stat(a) < lim1, (r, i)
        # no linear (mod 2^k or XOR) relation between two pieces of the view either
        # (identical pieces, e.g. a received z_{i+1} that is kept as a part, are skipped)
        uniq, seen = [], set()
        for a in view:
            key = a[:8].tobytes()
            if a.dtype == np.uint64 and key not in seen:
                seen.add(key)
                uniq.append(a[:1 << 13])
        for i in range(len(uniq)):
            for j in range(i):
                for d in (uniq[i] - uniq[j], uniq[i] + uniq[j], uniq[i] ^ uniq[j]):
                    assert _top_byte_stat(d) < lim2, (r, i, j)
