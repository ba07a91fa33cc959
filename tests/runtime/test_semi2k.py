"""semi2k's own facts: broadcasting products, the keystream, costs, and the views of a
computing party and of the dealer. The kernels against plaintext: test_kernels.py."""

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.protocols.base import Share

from .harness import run_parties, share
from spu_lite.runtime.protocols.semi2k import Semi2k
from spu_lite.runtime.ring import Ring
from spu_lite.runtime.ring_linalg import ring_dot_general

# --------------------------------------------------------------------------------------
# helpers


def make_cluster(n, field=64, seed=7):
    return InProcessCluster(ClusterConfig(protocol="semi2k", seed=seed, nparties=n, field=field))


def bshare(cluster, x, rng):
    """Boolean sharing of x (for tests: XOR pieces from numpy randomness)."""
    dt = cluster.ring.dtype
    n = cluster.nparties
    pieces = [rng.integers(0, np.iinfo(dt).max, x.shape, dtype=dt, endpoint=True)
              for _ in range(n - 1)]
    last = np.asarray(x, dt).copy()
    for p in pieces:
        last ^= p
    return [Share([p], True) for p in pieces + [last]]


def opened(cluster, results):
    return get_protocol("semi2k").reconstruct(results, cluster.ring)


def rand_ring(rng, shape, field=64):
    dt = np.uint64 if field == 64 else np.uint32
    return rng.integers(0, np.iinfo(dt).max, shape, dtype=dt, endpoint=True)


@pytest.fixture(scope="module", params=[2, 3])
def cl(request):
    return make_cluster(request.param)


# --------------------------------------------------------------------------------------
# semi2k-only kernel facts (the kernels against plaintext: test_kernels.py)


def test_mul_broadcast_and_empty(cl):
    rng = np.random.default_rng(12)
    x, y = rand_ring(rng, (3, 1)), rand_ring(rng, (3, 4))
    sx, sy = share(cl, x), share(cl, y)
    bx, by = bshare(cl, x, rng), bshare(cl, y, rng)
    e = share(cl, np.zeros((0, 2), np.uint64))
    outs = run_parties(cl, lambda P, r: (P.mul(sx[r], sy[r]), P.and_(bx[r], by[r]),
                                         P.mul(e[r], e[r]), P.trunc(e[r], 5), P.b2a_bit(e[r])))
    assert np.array_equal(opened(cl, [o[0] for o in outs]), x * y)
    assert np.array_equal(opened(cl, [o[1] for o in outs]), x & y)
    assert all(o[k].shape == (0, 2) for o in outs for k in (2, 3, 4))


def test_fast_keystream_matches_prg():
    from spu_lite.runtime.prg import Prg
    from spu_lite.runtime.protocols.semi2k import _fill, uniform
    key = bytes(range(16))
    p, q = Prg(key), Prg(key)
    a = uniform(p, (3, 5), np.uint64)
    b = _fill(p, np.empty((1 << 18) + 3, np.uint32))             # crosses a 1 MB chunk
    want = np.frombuffer(q.bytes(a.nbytes + b.nbytes), np.uint8)
    assert np.array_equal(np.concatenate([a.view(np.uint8).ravel(), b.view(np.uint8)]), want)


def test_trunc_rejects_large_shift(cl):
    sx = share(cl, np.zeros(3, np.uint64))
    with pytest.raises(ValueError):
        cl.parties[0].proto.trunc(sx[0], 63)


@pytest.mark.parametrize("n", [2, 3])
def test_jit_end_to_end(n):
    rng = np.random.default_rng(8)
    x = rng.uniform(-100, 100, 3000)
    y = rng.uniform(-100, 100, 3000)
    y[:10] = x[:10]
    f = spu.jit(lambda a, b: (a < b, a * b, a == b), protocol="semi2k", nparties=n, seed=3)
    lt, prod, eq = f(x, y)
    assert np.array_equal(np.asarray(lt), x < y)
    assert np.array_equal(np.asarray(eq), x == y)
    assert np.max(np.abs(np.asarray(prod) - x * y)) < 1e-3
    A, B = rng.normal(size=(2, 8, 16)), rng.normal(size=(2, 16, 4))
    g = spu.jit(lambda a, b: a @ b, protocol="semi2k", nparties=n, seed=3)
    assert np.max(np.abs(np.asarray(g(A, B)) - A @ B)) < 1e-3


def test_field32():
    rng = np.random.default_rng(9)
    x = rng.uniform(-7, 7, 2000)        # |x y| 2^24 < 2^30: inside the truncation range
    y = rng.uniform(-7, 7, 2000)
    f = spu.jit(lambda a, b: (a * b, a < b), protocol="semi2k", field=32, fxp_bits=12, seed=4)
    prod, lt = f(x, y)
    assert np.max(np.abs(np.asarray(prod) - x * y)) < 0.01
    assert np.array_equal(np.asarray(lt), x < y)
    cl = make_cluster(3, field=32)
    a, b = rand_ring(rng, (300,), 32), rand_ring(rng, (300,), 32)
    sa, sb = share(cl, a), share(cl, b)
    vals = rng.integers(-(1 << 29), 1 << 29, 300).astype(np.int64)
    sv = share(cl, Ring(32).cast(vals))
    outs = run_parties(cl, lambda P, r: (P.mul(sa[r], sb[r]), P.trunc(sv[r], 12),
                                         P.dot(sa[r].map(lambda s: s.reshape(15, 20)),
                                               sb[r].map(lambda s: s.reshape(20, 15)),
                                               ((1,), (0,), (), ()))))
    assert opened(cl, [o[0] for o in outs]).dtype == np.uint32
    assert np.array_equal(opened(cl, [o[0] for o in outs]), a * b)
    d = Ring(32).signed(opened(cl, [o[1] for o in outs])).astype(np.int64) - (vals >> 12)
    assert set(np.unique(d)) <= {0, 1}
    assert np.array_equal(opened(cl, [o[2] for o in outs]),
                          ring_dot_general(a.reshape(15, 20), b.reshape(20, 15),
                                           ((1,), (0,), (), ()), 32))


# --------------------------------------------------------------------------------------
# truncation robustness (the failure mode of local probabilistic truncation)


@pytest.mark.parametrize("n", [2, 3])
def test_truncation_robustness_1M_products(n):
    """2^20 fixed-point products of uniform [-256, 256] values (f = 18): every result
    is floor(XY / 2^18) or one more; none is off by more than 2 ulp from the real product
    of the encoded inputs. (Local probabilistic truncation would fail ~2^-17 per element.)"""
    rng = np.random.default_rng(10 + n)
    m = 1 << 20
    X = np.round(rng.uniform(-256, 256, m) * 2.0 ** 18).astype(np.int64)   # encodings
    Y = np.round(rng.uniform(-256, 256, m) * 2.0 ** 18).astype(np.int64)
    cl = make_cluster(n, seed=30 + n)
    sx, sy = share(cl, Ring(64).cast(X)), share(cl, Ring(64).cast(Y))
    outs = run_parties(cl, lambda P, r: P.trunc(P.mul(sx[r], sy[r]), 18))
    res = Ring(64).signed(opened(cl, outs))
    exact = (X * Y) >> 18                              # |X Y| < 2^53: exact in int64
    assert set(np.unique(res - exact)) <= {0, 1}       # never off by more than 1 ulp
    assert np.max(np.abs(res / 2.0 ** 18 - X * Y / 2.0 ** 36)) <= 2 * 2.0 ** -18


# --------------------------------------------------------------------------------------
# costs


def test_mul_cost_two_parties():
    x = np.arange(-500, 500, dtype=np.int32)
    f = spu.jit(lambda a, b: a * b, protocol="semi2k", seed=6)
    assert np.array_equal(np.asarray(f(x, x[::-1])), x.astype(np.int64) * x[::-1])
    p1 = f.cluster.party_profiles[1].ops["mul"]
    assert p1.rounds == 1 and p1.bytes == 16 * x.size
    p0 = f.cluster.party_profiles[0].ops["mul"]           # + one small dealer request
    assert p0.rounds == 1 and 16 * x.size < p0.bytes <= 16 * x.size + 8 * 8


def test_kernel_costs(cl):
    n = cl.nparties
    m = 4096
    rng = np.random.default_rng(11)
    sx = share(cl, rand_ring(rng, (m,)))
    sy = share(cl, rand_ring(rng, (m,)))
    bx = bshare(cl, rand_ring(rng, (m,)) & np.uint64(1), rng)
    costs = {}

    def fn(P, r):
        c = P.comm
        for name, op in [("mul", lambda: P.mul(sx[r], sy[r])),
                         ("square", lambda: P.mul(sx[r], sx[r])),
                         ("trunc", lambda: P.trunc(sx[r], 18)),
                         ("and", lambda: P.and_(bx[r], bx[r])),
                         ("b2a", lambda: P.b2a_bit(bx[r])),
                         ("reveal", lambda: P.reveal(sx[r]))]:
            b0, r0 = c.bytes_sent, c.rounds
            op()
            if r == 1:
                costs[name] = (c.rounds - r0, c.bytes_sent - b0)

    run_parties(cl, fn)
    e = 8 * m * (n - 1)
    assert costs == {"mul": (1, 2 * e), "square": (1, e), "trunc": (1, e), "and": (1, 2 * e),
                     "b2a": (1, m // 8 * (n - 1)), "reveal": (1, e)}


# --------------------------------------------------------------------------------------
# views: a computing party, and the dealer


class Recorder:
    """Wraps a party's transport to record every payload it receives."""

    def __init__(self, transport):
        self.inner, self.log = transport.recv, []
        transport.recv = self

    def __call__(self, frm):
        v = self.inner(frm)
        self.log.append((frm, v))
        return v


def _uniform_pvalue(top_bytes):
    counts = np.bincount(top_bytes, minlength=256)
    try:
        from scipy.stats import chisquare
        return chisquare(counts).pvalue
    except ImportError:  # pragma: no cover
        exp = top_bytes.size / 256
        stat = ((counts - exp) ** 2 / exp).sum()
        return 1.0 if stat < 360.0 else 0.0   # chi2(255) upper 1e-4 quantile ~ 357


@pytest.mark.parametrize("n", [2, 3])
def test_party_view_is_independent_of_secrets(n):
    """Party 1's view (its input pieces, every message it receives, its output piece) for
    x = y = 0 and for x = y = 2^40 (ring) looks uniform on the top byte."""
    m = 20000
    views = {}
    for secret in (0, 1 << 40):
        cl = make_cluster(n, seed=100 + secret % 7)
        rec = Recorder(cl.parties[1].comm.transport)
        x = np.full(m, secret, np.uint64)
        sx, sy = share(cl, x), share(cl, x)
        outs = run_parties(cl, lambda P, r: P.trunc(P.mul(sx[r], sy[r]), 18))
        view = [sx[1].parts[0], sy[1].parts[0], outs[1].parts[0]]
        for _, payload in rec.log:
            view += [p for p in payload if p.dtype == np.uint64 and p.size == m]
        assert all(frm != n for frm, _ in rec.log)        # party 1 never hears the dealer
        views[secret] = np.concatenate(view)
        assert len(view) >= 3 + 3 * (n - 1)
        for v in view:
            assert _uniform_pvalue((v >> np.uint64(56)).astype(np.int64)) > 1e-4
    try:
        from scipy.stats import chi2_contingency
    except ImportError:  # pragma: no cover
        return
    table = np.stack([np.bincount((views[s] >> np.uint64(56)).astype(np.int64), minlength=256)
                      for s in views])
    assert chi2_contingency(table).pvalue > 1e-4


def test_dealer_sees_only_requests():
    """What reaches the dealer: small int64 arrays (kind and shapes), the same for
    different secrets."""
    logs = []
    for secret in (3, -12345):
        cl = make_cluster(2, seed=21)
        rec = Recorder(cl.dealer.comm.transport)
        f = spu.jit(lambda a, b: (a * b, a < b, a @ b.T), protocol="semi2k", cluster=cl)
        x = np.full((6, 6), float(secret))
        f(x, x + 1)
        assert rec.log, "the dealer got no request"
        for frm, payload in rec.log:
            assert frm == 0
            assert isinstance(payload, np.ndarray) and payload.dtype == np.int64
            assert payload.ndim == 1 and payload.size <= 64
        logs.append([p.tolist() for _, p in rec.log])
    assert logs[0] == logs[1]
    assert logs[0][-1] == [0]                               # the DONE request


def test_dealer_stops_when_a_party_fails():
    cl = make_cluster(2, seed=22)
    sx = share(cl, np.arange(10, dtype=np.uint64))

    def fn(P, r):
        P.mul(sx[r], sx[r])
        if r == 0:
            raise RuntimeError("boom")
        return P.reveal(sx[r])                              # waits for P0: woken by the hub

    with pytest.raises(RuntimeError, match="boom"):
        run_parties(cl, fn)


def test_protocol_attributes():
    assert Semi2k.name == "semi2k" and Semi2k.default_parties == 2 and Semi2k.needs_dealer
    assert get_protocol("semi2k") is Semi2k and Semi2k.Dealer is not None


# --------------------------------------------------------------------------------------
# matrix-triple reuse for loop-invariant dot operands


def test_dot_reusing_rhs_is_exact_and_masks_y_once():
    """Three dots with the same y: every result exact; the first opens X - A and Y - B,
    the later ones only X - A (the dealer deals C = A.B with its kept B)."""
    cl = make_cluster(2, seed=41)
    rng = np.random.default_rng(41)
    xs = [rng.integers(-1000, 1000, (4, 32)).astype(np.int64) for _ in range(3)]
    y = rng.integers(-1000, 1000, (32, 16)).astype(np.int64)
    sxs = [share(cl, x.view(np.uint64)) for x in xs]
    sy = share(cl, y.view(np.uint64))
    dims = ((1,), (0,), (), ())
    sent = []

    def body(P, r):
        out = []
        for sx in sxs:
            b0 = P.comm.bytes_sent
            out.append(P.dot_reusing_rhs(sx[r], sy[r], dims))
            sent.append((r, P.comm.bytes_sent - b0))
        return out

    res = run_parties(cl, body)
    for j, x in enumerate(xs):
        got = cl.proto_cls.reconstruct([r[j] for r in res], cl.ring).view(np.int64)
        np.testing.assert_array_equal(got, x @ y)
    p1 = [b for r, b in sent if r == 1]
    assert p1 == [8 * (4 * 32 + 32 * 16), 8 * 4 * 32, 8 * 4 * 32]


def test_reused_dot_views_are_uniform():
    """Party 1's view of a reused dot (the opened pieces of X - A and, once, Y - B) for
    all-zero and all-2^40 secrets: uniform top bytes."""
    m = 128
    for secret in (0, 1 << 40):
        cl = make_cluster(2, seed=7 + secret % 5)
        rec = Recorder(cl.parties[1].comm.transport)
        x = np.full((m, m), secret, np.uint64)
        sx, sy = share(cl, x), share(cl, x)
        dims = ((1,), (0,), (), ())
        run_parties(cl, lambda P, r: [P.dot_reusing_rhs(sx[r], sy[r], dims) for _ in range(3)])
        pieces = [p for _, payload in rec.log for p in payload
                  if p.dtype == np.uint64 and p.size == m * m]
        assert len(pieces) == 4                         # X - A three times, Y - B once
        for v in pieces:
            assert _uniform_pvalue((v.reshape(-1) >> np.uint64(56)).astype(np.int64)) > 1e-4


def test_generation_loop_masks_weights_once():
    """In a token-by-token loop the weights are loop-invariant: the compiler marks the
    dot, and semi2k's traffic per iteration no longer contains the weight matrix."""
    import jax
    import jax.numpy as jnp

    def gen(w, x, steps):
        return jax.lax.fori_loop(0, steps, lambda i, h: jnp.tanh(h @ w), x)

    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((64, 64)) * 0.2, rng.standard_normal((2, 64))
    text = spu.jit(gen, static_argnums=(2,)).lower(w, x, 3).program.text
    assert "reuse_rhs=true" in text
    f = spu.jit(gen, protocol="semi2k", static_argnums=(2,))
    per = {}
    for steps in (2, 6):
        np.testing.assert_allclose(f(w, x, steps), jax.jit(gen, static_argnums=(2,))(w, x, steps),
                                   atol=1e-4)
        per[steps] = f.cluster.party_profiles[1].ops["dot_trunc"].bytes
    # the weights (64 * 64 * 8 bytes) are opened once: each further iteration of the
    # product sends X - A and its truncation's opening, (2, 64) elements each
    assert per[6] - per[2] == 4 * 2 * (2 * 64 * 8)
    assert per[2] == 64 * 64 * 8 + 2 * 2 * (2 * 64 * 8)
    off = spu.jit(gen, protocol="semi2k", static_argnums=(2,), reuse_masks=False)
    off(w, x, 2)
    assert off.cluster.party_profiles[1].ops["dot_trunc"].bytes == 2 * (64 * 64 * 8 + 2 * (2 * 64 * 8))
