"""aby3: every kernel against plaintext, exact truncation, communication counts, and
the statistical independence of a party's view from the secret."""

import numpy as np
import pytest

import spu_lite as spu
from runtime.cluster import ClusterConfig, InProcessCluster
from runtime.fxp.compare import less, msb
from runtime.protocols import get_protocol
from runtime.protocols.aby3 import Aby3
from runtime.protocols.base import Share

from .harness import run_parties, share
from runtime.ring_linalg import ring_dot_general

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


def signed_values(rng, n, k, limit_bits):
    """Signed test values |x| < 2^limit_bits, with edge values, as ring elements."""
    lim = 1 << limit_bits
    v = rng.integers(-lim + 1, lim, n, dtype=np.int64) if k == 64 else \
        rng.integers(-lim + 1, lim, n).astype(np.int64)
    edges = [0, 1, -1, 2, -2, lim - 1, -lim + 1, -lim, lim // 2, -lim // 2,
             lim // 2 - 1, -lim // 2 + 1, lim // 2 + 1, -lim // 2 - 1, (1 << 18) - 1, -(1 << 18)]
    v[:len(edges)] = edges
    sdt = np.int64 if k == 64 else np.int32
    return v.astype(sdt).view(np.uint64 if k == 64 else np.uint32)


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


def test_local_ops():
    c = cluster_for()
    rng = np.random.default_rng(2)
    x, y, p = (rand_ring(rng, (40,)) for _ in range(3))
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: (P.add(sx[r], sy[r]), P.neg(sx[r]), P.add_public(sx[r], p),
                                       P.mul_public(sx[r], p), P.add_public(sx[r], p[0])))
    for j, want in enumerate([x + y, -x, x + p, x * p, x + p[0]]):
        assert np.array_equal(opened(c, [r[j] for r in res]), want)


# --------------------------------------------------------------------------------------
# mul, dot, trunc


@pytest.mark.parametrize("field", [64, 32])
def test_mul(field):
    c = cluster_for(field)
    rng = np.random.default_rng(3)
    k = field
    x = signed_values(rng, 3000, k, k - 3)
    y = rand_ring(rng, (3000,), field)
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: P.mul(sx[r], sy[r]))
    assert np.array_equal(opened(c, res), x * y)
    # 2-D, and one share broadcast against another of equal shape
    x2, y2 = rand_ring(rng, (7, 9), field), rand_ring(rng, (7, 9), field)
    s2x, s2y = share(c, x2), share(c, y2)
    res = run_parties(c, lambda P, r: P.mul(s2x[r], s2y[r]))
    assert np.array_equal(opened(c, res), x2 * y2)


@pytest.mark.parametrize("shapes,dims", [
    (((6, 5), (5, 4)), ((1,), (0,), (), ())),
    (((3, 6, 5), (3, 5, 4)), ((2,), (1,), (0,), (0,))),
    (((5,), (5, 4)), ((0,), (0,), (), ())),
    (((5,), (5,)), ((0,), (0,), (), ())),
    (((2, 3, 5), (5, 2, 4)), ((2,), (0,), (0,), (1,))),
    (((64, 700), (700, 33)), ((1,), (0,), (), ())),
])
def test_dot(shapes, dims):
    c = cluster_for()
    rng = np.random.default_rng(4)
    a, b = rand_ring(rng, shapes[0]), rand_ring(rng, shapes[1])
    sa, sb = share(c, a), share(c, b)
    res = run_parties(c, lambda P, r: P.dot(sa[r], sb[r], dims))
    want = ring_dot_general(a, b, dims, 64)
    assert res[0].shape == np.shape(want)
    assert np.array_equal(opened(c, res), want)


@pytest.mark.parametrize("field,f", [(64, 18), (64, 1), (64, 40), (64, 62), (32, 8), (32, 18)])
def test_trunc_exact_to_one_ulp(field, f):
    c = cluster_for(field)
    rng = np.random.default_rng(5 + f)
    k = field
    x = signed_values(rng, 20000, k, k - 2)           # the whole documented range
    sx = share(c, x)
    res = run_parties(c, lambda P, r: P.trunc(sx[r], f))
    sdt = np.int64 if k == 64 else np.int32
    got = opened(c, res).view(sdt).astype(np.int64)
    want = x.view(sdt).astype(np.int64) >> f          # floor
    d = got - want
    assert d.min() >= 0 and d.max() <= 1, (d.min(), d.max())


def test_trunc_near_edges_of_ring():
    c = cluster_for()
    vals = np.array([(1 << 61) - 1, -(1 << 61), (1 << 61) + 12345, -(1 << 61) - 777,
                     (1 << 62) - 1, -(1 << 62), 5, -5], np.int64)
    x = np.repeat(vals, 500).view(np.uint64)
    sx = share(c, x)
    res = run_parties(c, lambda P, r: P.trunc(sx[r], 18))
    d = opened(c, res).view(np.int64) - (x.view(np.int64) >> 18)
    assert d.min() >= 0 and d.max() <= 1


@pytest.mark.parametrize("f", [1, 18, 40])
def test_mul_trunc_is_trunc_of_the_product(f):
    """The fused multiply-truncate: floor or floor + 1 of the exact product, like
    trunc(mul(x, y)), for products anywhere in |xy| < 2^62 (and squares)."""
    c = cluster_for()
    rng = np.random.default_rng(21)
    x = rng.integers(-2 ** 30, 2 ** 30, 4000).astype(np.int64)
    y = rng.integers(-2 ** 31, 2 ** 31, 4000).astype(np.int64)
    sx, sy = share(c, x.view(np.uint64)), share(c, y.view(np.uint64))
    res = run_parties(c, lambda P, r: (P.mul_trunc(sx[r], sy[r], f), P.mul_trunc(sx[r], sx[r], f)))
    for j, want in enumerate([x * y, x * x]):
        d = opened(c, [r[j] for r in res]).view(np.int64) - (want >> f)
        assert d.min() >= 0 and d.max() <= 1


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


@pytest.mark.parametrize("shape", [(), (0,), (3, 0)])
def test_scalar_and_empty_shapes(shape):
    c = cluster_for()
    rng = np.random.default_rng(12)
    x, y = rand_ring(rng, shape), rand_ring(rng, shape)
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: (P.reveal(sx[r]), P.mul(sx[r], sy[r]), P.trunc(sx[r], 18),
                                       P.and_(sx[r], sy[r]), P.b2a_bit(sx[r]), less(P, sx[r], sy[r])))
    assert all(np.shape(r[0]) == shape for r in res) and np.array_equal(res[0][0], x)
    for j in range(1, 6):
        assert np.shape(opened(c, [r[j] for r in res])) == shape
    assert np.array_equal(opened(c, [r[1] for r in res]), x * y)


# --------------------------------------------------------------------------------------
# boolean: and_, xor, b2a_bit, msb / less


def test_and_xor_boolean_addends():
    c = cluster_for()
    rng = np.random.default_rng(7)
    x, y, p = (rand_ring(rng, (1000,)) for _ in range(3))
    bx, by = bshare(c, x, rng), bshare(c, y, rng)
    res = run_parties(c, lambda P, r: (P.and_(bx[r], by[r]), P.xor(bx[r], by[r]),
                                       P.xor_public(bx[r], p), P.and_public(bx[r], p)))
    for j, want in enumerate([x & y, x ^ y, x ^ p, x & p]):
        assert np.array_equal(opened(c, [r[j] for r in res]), want)
    sx = share(c, x)
    adds = run_parties(c, lambda P, r: P.boolean_addends(sx[r]))
    total = sum(opened(c, [adds[r][j] for r in range(3)]) for j in range(len(adds[0])))
    assert np.array_equal(total, x)


def test_b2a_bit():
    c = cluster_for()
    rng = np.random.default_rng(8)
    bits = rng.integers(0, 2, 5000).astype(np.uint64)
    bb = bshare(c, bits, rng)
    bb = [s.map(lambda t: t & np.uint64(1)) for s in bb]
    res = run_parties(c, lambda P, r: P.b2a_bit(bb[r]))
    assert np.array_equal(opened(c, res), bits)


@pytest.mark.parametrize("field", [64, 32])
def test_msb_and_less(field):
    c = cluster_for(field)
    rng = np.random.default_rng(9)
    k = field
    x = signed_values(rng, 4000, k, k - 3)
    y = signed_values(rng, 4000, k, k - 3)[::-1].copy()
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: (msb(P, sx[r]), less(P, sx[r], sy[r])))
    sdt = np.int64 if k == 64 else np.int32
    xs, ys = x.view(sdt), y.view(sdt)
    assert np.array_equal(opened(c, [r[0] for r in res]), (xs < 0).astype(x.dtype))
    assert np.array_equal(opened(c, [r[1] for r in res]), (xs < ys).astype(x.dtype))


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
