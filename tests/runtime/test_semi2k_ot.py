"""semi2k without a dealer (semi2k_ot): the OT building blocks, every correlation exact
element by element, the online protocol through spu.jit, costs, precomputation, and
the views of both parties (OT messages included) for two different secrets."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.ot.base_ot import BaseOtReceiver, BaseOtSender
from spu_lite.runtime.protocols.semi2k_common import B2A, MUL, SQUARE
from spu_lite.runtime.ring import Ring
from spu_lite.runtime.ring_linalg import ring_dot_general

from .harness import run_parties, share
from .test_semi2k import Recorder, _uniform_pvalue


def make_cluster(field=64):
    return InProcessCluster(ClusterConfig(protocol="semi2k_ot", field=field))


@pytest.fixture(scope="module")
def cl():
    return make_cluster()


def opened(cluster, results):
    return cluster.proto_cls.reconstruct(results, cluster.ring)


# --------------------------------------------------------------------------------------
# building blocks


def test_base_ot_gives_the_chosen_key_only():
    choices = np.frombuffer(os.urandom(128), np.uint8) & 1
    s, r = BaseOtSender(), BaseOtReceiver(choices)
    pairs = s.keys(r.points(s.A))
    got = r.keys()
    assert all(g == p[c] and g != p[1 - c] for g, p, c in zip(got, pairs, choices))


@pytest.mark.parametrize("field", [64, 32])
def test_every_correlation_is_exact_for_every_element(field):
    """c = a b, a^2, a & b; b2a bits; truncation pairs (r, r >> m, msb r); dot triples
    with and without batch dimensions: every element, over the ring."""
    cl = make_cluster(field)
    k, dt, n, m = field, cl.ring.dtype, 1000, (18 if field == 64 else 12)
    dims2 = ((1,), (0,), (), ())
    dims3 = ((2,), (1,), (0,), (0,))

    def body(P, r):
        S = P.source
        return (S.mul(n), S.square(n), S.and_(n), S.b2a(n), S.trunc(n, m),
                S.dot((6, 9), (9, 4), dims2), S.dot((2, 3, 5), (2, 5, 7), dims3))

    (mul0, sq0, and0, b2a0, tr0, d0, e0), (mul1, sq1, and1, b2a1, tr1, d1, e1) = run_parties(cl, body)
    a, b = mul0[0] + mul1[0], mul0[1] + mul1[1]
    assert np.array_equal(a * b, mul0[2] + mul1[2])
    a = sq0[0] + sq1[0]
    assert np.array_equal(a * a, sq0[1] + sq1[1])
    assert np.array_equal((and0[0] ^ and1[0]) & (and0[1] ^ and1[1]), and0[2] ^ and1[2])
    bit = np.unpackbits(b2a0[0] ^ b2a1[0], count=n).astype(dt)
    assert np.array_equal(bit, b2a0[1] + b2a1[1])
    r = tr0[0] + tr1[0] - dt(1 << (k - 2))
    assert np.array_equal((r >> dt(m)) + dt(1 << (k - 2 - m)), tr0[1] + tr1[1])
    assert np.array_equal((r >> dt(k - 1)) << dt(k - m), tr0[2] + tr1[2])
    for (A0, B0, C0), (A1, B1, C1), dims in ((d0, d1, dims2), (e0, e1, dims3)):
        assert np.array_equal(ring_dot_general(A0 + A1, B0 + B1, dims, k), C0 + C1)
    # the random pieces are not degenerate: both parties' pieces differ and look uniform
    assert not np.array_equal(mul0[0], mul1[0])
    assert _uniform_pvalue((mul0[0].astype(np.uint64) >> np.uint64(k - 8)).astype(np.int64)) > 1e-4


# --------------------------------------------------------------------------------------
# the online protocol, as users call it


def test_jit_without_dealer_matches_plaintext():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-4, 4, (6, 8)), rng.uniform(-4, 4, (6, 8))
    fn = lambda a, b: (a + b, a * b, a @ b.T, a < b, jax.nn.relu(a), jnp.exp(a / 2))
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    got = f(x, y)
    assert f.cluster.dealer is None and f.cluster.nparties == 2
    want = fn(x, y)
    ulp = 2.0 ** -18
    np.testing.assert_allclose(got[0], want[0], atol=2 * ulp)
    np.testing.assert_allclose(got[1], want[1], atol=4 * ulp)
    np.testing.assert_allclose(got[2], want[2], atol=64 * ulp)
    assert np.array_equal(np.asarray(got[3]), np.asarray(want[3]))
    np.testing.assert_allclose(got[4], want[4], atol=2 * ulp)
    np.testing.assert_allclose(got[5], want[5], rtol=2e-3, atol=1e-4)


def test_dealer_keyword_is_checked():
    with pytest.raises(ValueError, match="dealer=None"):
        spu.jit(jnp.add, protocol="aby3", dealer=None)
    with pytest.raises(ValueError, match="dealer=None"):
        spu.jit(jnp.add, protocol="semi2k", dealer="dave")
    with pytest.raises(ValueError, match="exactly 2 parties"):
        spu.jit(jnp.add, protocol="semi2k", dealer=None, nparties=3)


@pytest.mark.parametrize("n", [pytest.param(1 << 12),
                               pytest.param(1 << 20, marks=pytest.mark.slow)])
def test_truncation_never_off_by_more_than_one_ulp(cl, n):
    """n products of uniform [-256, 256] encodings (|x y| <= 65536) truncated by 18 bits
    (semi2k_ot_trunc.py): every result is floor(XY / 2^18) or one more (the wrap bit is
    exact: no probabilistic truncation)."""
    rng = np.random.default_rng(12)
    X = np.round(rng.uniform(-256, 256, n) * 2.0 ** 18).astype(np.int64)
    Y = np.round(rng.uniform(-256, 256, n) * 2.0 ** 18).astype(np.int64)
    sx, sy = share(cl, Ring(64).cast(X)), share(cl, Ring(64).cast(Y))
    outs = run_parties(cl, lambda P, r: P.trunc(P.mul(sx[r], sy[r]), 18))
    res = Ring(64).signed(opened(cl, outs))
    assert set(np.unique(res - (X * Y >> 18))) <= {0, 1}


def test_online_cost_is_semi2k_without_dealer_messages_and_offline_is_counted_apart():
    x = np.arange(-500, 500, dtype=np.int32)
    f = spu.jit(lambda a, b: a * b, protocol="semi2k", dealer=None)
    assert np.array_equal(np.asarray(f(x, x[::-1])), x.astype(np.int64) * x[::-1])
    for p in f.cluster.party_profiles:
        assert p.ops["mul"].rounds == 1 and p.ops["mul"].bytes == 16 * x.size
    before = [P.proto.offline_stats() for P in f.cluster.parties]
    f(x, x)
    after = [P.proto.offline_stats() for P in f.cluster.parties]
    for b, a in zip(before, after):
        # 64 OTs each way per triple: 16 bytes per OT (IKNP) + 344 bytes of corrections
        assert a["bytes"] - b["bytes"] == (64 * 16 + 344) * x.size
        assert a["messages"] - b["messages"] == 2


def test_seed_reproduces_the_ot_randomness_and_no_seed_draws_fresh_keys():
    """Delta, the base-OT scalars and the pieces' PRG come from each party's local PRG:
    a seeded (test) cluster repeats them exactly, so its results are bit-identical run
    to run (and to networked nodes with the same seed, tests/e2e); without a seed every
    cluster draws its own from os.urandom."""
    x, y = np.linspace(-3, 3, 64), np.linspace(1, 2, 64)

    def run(seed):
        c = InProcessCluster(ClusterConfig(protocol="semi2k_ot", seed=seed))
        out = np.asarray(spu.jit(lambda a, b: a * b, cluster=c)(x, y))
        return out, [P.proto.link.sender.delta.tobytes() for P in c.parties]

    (o1, d1), (o2, d2) = run(3), run(3)
    assert np.array_equal(o1, o2) and d1 == d2
    np.testing.assert_allclose(o1, x * y, atol=4 * 2.0 ** -18)
    (_, f1), (_, f2) = run(None), run(None)
    assert len({*d1, *f1, *f2}) == 6          # every party of every cluster its own Delta


def test_precomputed_correlations_are_used_online(cl):
    """precompute makes pools; a job then takes them without OT messages, and a job
    larger than the pool makes only the rest."""
    rng = np.random.default_rng(3)
    x = rng.integers(-1000, 1000, 3000).astype(np.int64)
    sx = share(cl, x.view(np.uint64))
    run_parties(cl, lambda P, r: P.precompute({SQUARE: 5000, MUL: 3000, B2A: 3100}))
    msgs = [P.proto.link.messages for P in cl.parties]
    outs = run_parties(cl, lambda P, r: (P.trunc(P.mul(sx[r], sx[r]), 4),
                                         P.mul(sx[r], sx[r].map(lambda s: s + s))))
    assert [P.proto.link.messages for P in cl.parties] == msgs     # all from the pools
    assert set(np.unique(opened(cl, [o[0] for o in outs]).view(np.int64) - (x * x >> 4))) <= {0, 1}
    assert np.array_equal(opened(cl, [o[1] for o in outs]).view(np.int64), 2 * x * x)
    outs = run_parties(cl, lambda P, r: P.mul(sx[r], sx[r]))   # 2000 pooled + 1000 made now
    assert [P.proto.link.messages for P in cl.parties] == [m + 2 for m in msgs]  # one OT batch
    assert np.array_equal(opened(cl, outs).view(np.int64), x * x)


# --------------------------------------------------------------------------------------
# views


def _top_bytes(a):
    a = np.asarray(a)
    return (a.reshape(-1) >> np.array(8 * a.itemsize - 8, a.dtype)).astype(np.int64)


def received_arrays(rec, min_size=1000):
    """The arrays of at least min_size elements a Recorder saw a party receive, flat."""
    return [np.asarray(a).reshape(-1) for _, payload in rec.log
            for a in (payload if isinstance(payload, tuple) else (payload,))
            if isinstance(a, np.ndarray) and a.size >= min_size]


def uniform_tops(arrays) -> np.ndarray:
    """Asserts each array's top bytes look uniform; returns them all, for views_alike."""
    tops = [_top_bytes(a) for a in arrays]
    for t in tops:
        assert _uniform_pvalue(t) > 1e-5
    return np.concatenate(tops)


def assert_views_alike(views):
    """views[rank][secret] = top bytes: per party, alike for the different secrets."""
    from scipy.stats import chi2_contingency
    for rank in views:
        table = np.stack([np.bincount(v, minlength=256) for v in views[rank].values()])
        assert chi2_contingency(table).pvalue > 1e-4


def test_party_views_are_independent_of_secrets():
    """Everything each party receives in a job -- IKNP matrices, Gilboa corrections,
    the online openings (the base OTs ran at setup) -- for x = y = 0 and x = y = 2^40:
    every message's top bytes look uniform, and the two secrets' views are alike."""
    views = {0: {}, 1: {}}
    for secret in (0, 1 << 40):
        cl = make_cluster()
        recs = [Recorder(P.comm.transport) for P in cl.parties]
        x = np.full(2000, secret, np.uint64)
        sx, sy = share(cl, x), share(cl, x)
        bx = cl.share(np.full(2000, secret & 1, np.uint64))
        run_parties(cl, lambda P, r: (P.trunc(P.mul(sx[r], sy[r]), 18), P.b2a_bit(bx[r]),
                                      P.mul(sx[r], sx[r])))
        for rank, rec in enumerate(recs):
            pieces = received_arrays(rec)
            kinds = sorted({p.dtype.itemsize for p in pieces})
            assert kinds == [1, 2, 4, 8]        # IKNP bytes and every correction width
            views[rank][secret] = uniform_tops(pieces)
    assert_views_alike(views)


def test_precompute_for_a_program_then_run_without_ot():
    """precompute(f, x, y) counts the program's correlations with a semi2k dry run and
    makes them; the call then sends no OT message, and the profile says so."""
    from spu_lite.two_party import precompute
    rng = np.random.default_rng(9)
    x, y = rng.uniform(-2, 2, (5, 7)), rng.uniform(-2, 2, (7, 3))
    fn = lambda a, b: (jax.nn.relu(a @ b), a[:, :3] * b[:5], a < 0.5)
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    counts = precompute(f, x, y)
    assert any(isinstance(k, tuple) and k[0] == "dot" for k in counts) and MUL in counts
    got = f(x, y)
    off = f.cluster.last_profile.offline
    assert off.calls > 0 and off.bytes == 0 and off.rounds == 0
    for g, w in zip(got, fn(x, y)):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), atol=1e-4)
    f(x, y)                                                   # pools used up: made inline
    assert f.cluster.last_profile.offline.bytes > 0
    assert "offline" in f.cluster.last_profile.table()


def test_one_way_products_are_split_between_the_parties(cl):
    """A truncation pair's 64 bit products: party 0 receives for half of the elements,
    party 1 for the other half, so both send 16 bytes per OT for their half and the
    corrections (bit j in min(64, 64 - j + m) bits, rounded to 1/2/4/8 bytes: 456 bytes
    at m = 18) for the other half."""
    n = 1000
    before = [P.proto.link.bytes_sent for P in cl.parties]
    run_parties(cl, lambda P, r: P.source.trunc(n, 18))
    sent = [P.proto.link.bytes_sent - b for P, b in zip(cl.parties, before)]
    j = np.arange(64)
    w = np.minimum(64, np.where(j >= 18, 64 - j + 18, 64 - j))
    corr = int(sum(1 if b <= 8 else 2 if b <= 16 else 4 if b <= 32 else 8 for b in w))
    assert corr == 456
    assert sent == [n // 2 * (64 * 16 + corr)] * 2


@pytest.mark.slow
def test_breast_cancer_training_without_dealer_matches_plaintext_auc():
    """The seed tutorial trained inside semi2k_ot reaches the plaintext AUC. One epoch
    here: the OT offline phase dominates (all 10 epochs reached 0.9790 both, in ~8 min on
    a loaded 2-core machine: a benchmark, not a test)."""
    from spu_lite.examples import tutorials
    from spu_lite.train import Trainer
    s = tutorials.breast_cancer_mlp()
    fit = lambda protocol: Trainer(s.loss_fn, s.optimizer, protocol=protocol).fit(
        s.params, s.x_train, s.y_train, 1, s.batch_size, progress=False)
    (p_plain, _), (p_mpc, _) = fit(None), fit("semi2k_ot")
    assert abs(tutorials.auc(s, p_mpc) - tutorials.auc(s, p_plain)) <= 0.005


def test_cost_formulas_give_the_measured_offline_bytes():
    """spu-lite cost --protocol semi2k_ot prints offline bytes from these formulas: the
    bytes the busier party sends when the job makes its own correlations, up to IKNP's
    padding of each batch to a multiple of 8 OTs."""
    from spu_lite.two_party import correlation_counts, offline_bytes
    x = np.linspace(-2, 2, 1000).reshape(20, 50)
    fn = lambda a, b: (a * b, a @ b.T, jnp.maximum(a, b))
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    f(x, x)
    counts = correlation_counts(f.lower(x, x).program)
    assert len(counts) >= 5
    measured = f.cluster.last_profile.offline.bytes
    formula = sum(offline_bytes(k, n) for k, n in counts.items())
    assert 0 <= measured - formula <= 16 * 8 * len(counts)   # OTs padded to multiples of 8
