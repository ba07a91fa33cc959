"""The protocol kernels against plaintext, one suite for every protocol (ref2k, the
plaintext reference; semi2k with 2 and 3 parties; aby3), as the op table does for IR
ops. Protocol-specific facts (share layout, costs, views, the dealer) stay in
test_aby3.py and test_semi2k.py."""
import numpy as np
import pytest

from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.fxp.compare import less, msb
from spu_lite.runtime.ring_linalg import ring_dot_general

from .harness import run_parties, share

PROTOCOLS = [("ref2k", None), ("semi2k", 2), ("semi2k", 3), ("aby3", None)]
IDS = ["ref2k", "semi2k-2", "semi2k-3", "aby3"]
_CLUSTERS = {}


def cluster(protocol, nparties, field=64):
    key = (protocol, nparties, field)
    if key not in _CLUSTERS:
        _CLUSTERS[key] = InProcessCluster(ClusterConfig(protocol=protocol, nparties=nparties,
                                                        field=field, seed=11))
    return _CLUSTERS[key]


@pytest.fixture(params=PROTOCOLS, ids=IDS)
def proto(request):
    return request.param


def opened(c, results):
    return c.proto_cls.reconstruct(results, c.ring)


def rand_ring(rng, shape, field=64):
    dt = np.uint64 if field == 64 else np.uint32
    return rng.integers(0, np.iinfo(dt).max, shape, dtype=dt, endpoint=True)


def signed_values(rng, n, k, limit_bits):
    """Signed values |x| < 2^limit_bits, with edge values first, as ring elements."""
    lim = 1 << limit_bits
    v = rng.integers(-lim + 1, lim, n, dtype=np.int64)
    edges = [0, 1, -1, 2, -2, lim - 1, -lim + 1, -lim, lim // 2, -lim // 2,
             lim // 2 - 1, -lim // 2 + 1, lim // 2 + 1, -lim // 2 - 1, (1 << 18) - 1, -(1 << 18)]
    v[:len(edges)] = edges
    sdt = np.int64 if k == 64 else np.int32
    return v.astype(sdt).view(np.uint64 if k == 64 else np.uint32)


def boolean_share(P, x, mask):
    """A random boolean sharing of the public array x, made with the kernels: the first
    boolean addend of the arithmetic sharing `mask` is a random boolean sharing of some
    v; revealing v, x = (x ^ v) ^ v."""
    a = P.boolean_addends(mask)[0]
    v = P.reveal(a)
    return P.xor(P.xor_public(P.public_share(np.zeros_like(x), boolean=True), x ^ v), a)


# --------------------------------------------------------------------------------------
# dealing, reveal, local ops

def test_deal_reconstruct_reveal(proto):
    c = cluster(*proto)
    x = rand_ring(np.random.default_rng(1), (5, 7))
    sh = share(c, x)
    assert np.array_equal(opened(c, sh), x)
    for o in run_parties(c, lambda P, r: P.reveal(sh[r])):
        assert np.array_equal(o, x)


def test_linear_ops(proto):
    c = cluster(*proto)
    rng = np.random.default_rng(2)
    x, y, p = (rand_ring(rng, (6,)) for _ in range(3))
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: (P.add(sx[r], sy[r]), P.neg(sx[r]), P.add_public(sx[r], p),
                                       P.mul_public(sx[r], p), P.add_public(sx[r], p[0]),
                                       P.add_public(sx[r], p.reshape(1, 6).repeat(2, 0))))
    wants = [x + y, -x, x + p, x * p, x + p[0], np.broadcast_to(x + p, (2, 6))]
    for j, want in enumerate(wants):
        assert np.array_equal(opened(c, [r[j] for r in res]), want)


# --------------------------------------------------------------------------------------
# mul, dot, trunc

@pytest.mark.parametrize("field", [64, 32])
def test_mul_and_square(proto, field):
    c = cluster(*proto, field=field)
    rng = np.random.default_rng(3)
    x = signed_values(rng, 3000, field, field - 3)
    y = rand_ring(rng, (3000,), field)
    x2, y2 = rand_ring(rng, (7, 9), field), rand_ring(rng, (7, 9), field)
    sx, sy, s2x, s2y = share(c, x), share(c, y), share(c, x2), share(c, y2)
    res = run_parties(c, lambda P, r: (P.mul(sx[r], sy[r]), P.mul(sx[r], sx[r]),
                                       P.mul(s2x[r], s2y[r])))
    for j, want in enumerate([x * y, x * x, x2 * y2]):
        assert np.array_equal(opened(c, [r[j] for r in res]), want)


@pytest.mark.parametrize("xs,ys,dims", [
    ((7, 5), (5, 3), ((1,), (0,), (), ())),                 # plain matmul
    ((4, 6), (3, 6), ((1,), (1,), (), ())),                 # x @ y.T
    ((3, 6, 5), (3, 5, 4), ((2,), (1,), (0,), (0,))),       # batched
    ((5, 2, 4), (3, 5, 2), ((0,), (1,), (1,), (2,))),       # batch not leading
    ((5,), (5, 4), ((0,), (0,), (), ())),                   # vector @ matrix
    ((5,), (5,), ((0,), (0,), (), ())),                     # inner product
    ((64, 700), (700, 33), ((1,), (0,), (), ())),           # big enough for the BLAS path
])
def test_dot(proto, xs, ys, dims):
    c = cluster(*proto)
    rng = np.random.default_rng(4)
    x, y = rand_ring(rng, xs), rand_ring(rng, ys)
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: P.dot(sx[r], sy[r], dims))
    want = ring_dot_general(x, y, dims, 64)
    assert res[0].shape == np.shape(want)
    assert np.array_equal(opened(c, res), want)


@pytest.mark.parametrize("field,f", [(64, 18), (64, 1), (64, 40), (64, 62), (32, 8), (32, 18)])
def test_trunc_exact_to_one_ulp(proto, field, f):
    """floor(x / 2^f) or one more, over the whole documented range |x| < 2^(k-2)."""
    c = cluster(*proto, field=field)
    x = signed_values(np.random.default_rng(5 + f), 20000, field, field - 2)
    sx = share(c, x)
    res = run_parties(c, lambda P, r: P.trunc(sx[r], f))
    sdt = np.int64 if field == 64 else np.int32
    d = opened(c, res).view(sdt).astype(np.int64) - (x.view(sdt).astype(np.int64) >> f)
    assert d.min() >= 0 and d.max() <= 1, (d.min(), d.max())


def test_trunc_near_edges_of_ring(proto):
    c = cluster(*proto)
    vals = np.array([(1 << 61) - 1, -(1 << 61), (1 << 61) + 12345, -(1 << 61) - 777,
                     (1 << 62) - 1, -(1 << 62), 5, -5], np.int64)
    x = np.repeat(vals, 500).view(np.uint64)
    sx = share(c, x)
    res = run_parties(c, lambda P, r: P.trunc(sx[r], 18))
    d = opened(c, res).view(np.int64) - (x.view(np.int64) >> 18)
    assert d.min() >= 0 and d.max() <= 1


@pytest.mark.parametrize("f", [1, 18, 40])
def test_mul_trunc_is_trunc_of_the_product(proto, f):
    """The fused multiply-truncate: floor or floor + 1 of the exact product, for
    products anywhere in |xy| < 2^62 (and squares)."""
    c = cluster(*proto)
    rng = np.random.default_rng(21)
    x = rng.integers(-2 ** 30, 2 ** 30, 4000).astype(np.int64)
    y = rng.integers(-2 ** 31, 2 ** 31, 4000).astype(np.int64)
    sx, sy = share(c, x.view(np.uint64)), share(c, y.view(np.uint64))
    res = run_parties(c, lambda P, r: (P.mul_trunc(sx[r], sy[r], f), P.mul_trunc(sx[r], sx[r], f)))
    for j, want in enumerate([x * y, x * x]):
        d = opened(c, [r[j] for r in res]).view(np.int64) - (want >> f)
        assert d.min() >= 0 and d.max() <= 1


@pytest.mark.parametrize("shape", [(), (0,), (3, 0)])
def test_scalar_and_empty_shapes(proto, shape):
    c = cluster(*proto)
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
# boolean: and_, xor, boolean addends, b2a_bit, msb / less

def test_and_xor_and_boolean_addends(proto):
    c = cluster(*proto)
    rng = np.random.default_rng(7)
    x, y, p = (rand_ring(rng, (3, 300)) for _ in range(3))
    mx, my = share(c, rand_ring(rng, x.shape)), share(c, rand_ring(rng, x.shape))

    def fn(P, r):
        bx, by = boolean_share(P, x, mx[r]), boolean_share(P, y, my[r])
        z = P.and_(bx, by)
        return z, P.xor(bx, by), P.xor_public(bx, p), P.and_public(bx, p), P.reveal(z)

    res = run_parties(c, fn)
    for j, want in enumerate([x & y, x ^ y, x ^ p, x & p]):
        assert np.array_equal(opened(c, [r[j] for r in res]), want)
    assert res[0][0].boolean and all(np.array_equal(r[4], x & y) for r in res)
    sx = share(c, x)
    adds = run_parties(c, lambda P, r: [P.reveal(a) for a in P.boolean_addends(sx[r])])
    assert np.array_equal(sum(adds[0], np.zeros_like(x)), x)


def test_b2a_bit(proto):
    c = cluster(*proto)
    rng = np.random.default_rng(8)
    bits = rng.integers(0, 2, 5000).astype(np.uint64)
    mask = share(c, rand_ring(rng, bits.shape))

    def fn(P, r):
        bb = P.and_public(boolean_share(P, bits, mask[r]), np.ones_like(bits))
        return P.b2a_bit(bb)

    res = run_parties(c, fn)
    assert not res[0].boolean
    assert np.array_equal(opened(c, res), bits)


@pytest.mark.parametrize("field", [64, 32])
def test_msb_and_less(proto, field):
    c = cluster(*proto, field=field)
    rng = np.random.default_rng(9)
    x = signed_values(rng, 4000, field, field - 3)
    y = signed_values(rng, 4000, field, field - 3)[::-1].copy()
    sx, sy = share(c, x), share(c, y)
    res = run_parties(c, lambda P, r: (msb(P, sx[r]), less(P, sx[r], sy[r])))
    sdt = np.int64 if field == 64 else np.int32
    xs, ys = x.view(sdt), y.view(sdt)
    assert np.array_equal(opened(c, [r[0] for r in res]), (xs < 0).astype(x.dtype))
    assert np.array_equal(opened(c, [r[1] for r in res]), (xs < ys).astype(x.dtype))
