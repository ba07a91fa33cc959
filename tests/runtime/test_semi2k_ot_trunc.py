"""semi2k_ot's truncation by the pieces' top bits (semi2k_ot_trunc.py): floor(x / 2^m)
or one more for every element, at the edges of its range (|x| near 2^(k-2), 0,
negative) on 64- and 32-bit rings; one round per batch of equal shifts and two for a
fused product; the random bit products counted, pooled and priced instead of
truncation pairs; the views of both parties for two different secrets."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.fxp.batch import mul_trunc_many, trunc_many
from spu_lite.runtime.protocols.semi2k_common import B2A, MUL, TRUNC
from spu_lite.runtime.protocols.semi2k_ot import Semi2kOT
from spu_lite.runtime.ring import Ring
from spu_lite.two_party import correlation_counts, correlation_table, offline_bytes, precompute

from .harness import run_parties, share
from .test_semi2k import Recorder
from .test_semi2k_ot import assert_views_alike, make_cluster, opened, received_arrays, uniform_tops


def _edges(k, rng, n=4000):
    """Values in (-2^(k-2), 2^(k-2)): uniform ones, and 0, +-1, the ends of the range and
    their neighbours, powers of two, negative multiples of 2^m."""
    lim = 1 << (k - 2)
    special = [0, 1, -1, 2, -2, lim - 1, -(lim - 1), lim - 2, -(lim - 2), lim // 2, -lim // 2,
               (1 << 18) - 1, -(1 << 18), -(1 << 18) - 1, -(1 << 30), (1 << 30) - 1]
    special = [s for s in special if abs(s) < lim]
    return np.concatenate([rng.integers(-lim + 1, lim, n), special]).astype(np.int64)


@pytest.mark.parametrize("field", [64, 32])
def test_truncation_is_floor_or_one_more_at_the_edges(field):
    """Every element, every shift class (1, small, the fixed-point 18 / 12, k - 2): the
    result is floor(x / 2^m) or floor(x / 2^m) + 1, as semi2k's (never further off);
    both occur (stochastic rounding over the shares)."""
    cl, R = make_cluster(field), Ring(field)
    x = _edges(field, np.random.default_rng(field))
    sx = share(cl, R.cast(x))
    shifts = (1, 7, 18 if field == 64 else 12, field - 2)
    outs = run_parties(cl, lambda P, r: [P.trunc(sx[r], m) for m in shifts])
    for i, m in enumerate(shifts):
        got = R.signed(opened(cl, [o[i] for o in outs])).astype(np.int64)
        diff = got - (x >> m)
        assert set(np.unique(diff)) == {0, 1}, (m, np.unique(diff))
        assert diff[x == 0].max() <= 1 and diff[-16:].max() <= 1


def test_truncation_of_shapes_broadcast_and_empty():
    cl, R = make_cluster(), Ring(64)
    x = np.arange(-12, 12, dtype=np.int64).reshape(2, 3, 4) << 20
    sx, se = share(cl, R.cast(x)), share(cl, np.zeros((0, 3), np.uint64))
    outs = run_parties(cl, lambda P, r: (P.trunc(sx[r], 20), P.trunc(se[r], 5)))
    got = R.signed(opened(cl, [o[0] for o in outs])).astype(np.int64)
    assert got.shape == x.shape and set(np.unique(got - (x >> 20))) <= {0, 1}
    assert opened(cl, [o[1] for o in outs]).shape == (0, 3)


def test_a_shift_outside_its_range_is_refused():
    cl = make_cluster(32)
    sx = share(cl, np.ones(4, np.uint32))
    with pytest.raises(ValueError, match=r"shift 31 outside \[1, 30\]"):
        run_parties(cl, lambda P, r: P.trunc(sx[r], 31))


def test_batched_truncations_take_one_round_and_fused_products_two():
    """trunc_many (equal shifts, the runtime's batches) opens everything in one round of
    1 bit per element; mul_trunc keeps its two rounds (product, truncation)."""
    cl, R = make_cluster(), Ring(64)
    rng = np.random.default_rng(4)
    xs = [rng.integers(-(1 << 30), 1 << 30, s).astype(np.int64) for s in (100, 37, 900)]
    sxs = [share(cl, R.cast(x)) for x in xs]
    rounds = []

    def body(P, r):
        real, count = P._exchange, [0]

        def counting(mine):
            count[0] += 1
            return real(mine)
        P._exchange = counting
        try:
            t = trunc_many(P, [s[r] for s in sxs], 18)
            n1 = count[0]
            mt = mul_trunc_many(P, [(sxs[0][r], sxs[0][r]), (sxs[1][r], sxs[1][r])], 18)
            rounds.append((n1, count[0] - n1))
            return t, mt
        finally:
            P._exchange = real

    outs = run_parties(cl, body)
    assert rounds == [(1, 2), (1, 2)]
    for i, x in enumerate(xs):
        got = R.signed(opened(cl, [o[0][i] for o in outs])).astype(np.int64)
        assert set(np.unique(got - (x >> 18))) <= {0, 1}
    for i, x in enumerate(xs[:2]):
        got = R.signed(opened(cl, [o[1][i] for o in outs])).astype(np.int64)
        assert set(np.unique(got - (x * x >> 18))) <= {0, 1}


def test_fixed_point_products_cost_one_bit_online_and_random_bits_offline():
    """A fixed-point product through spu.jit: the truncation takes 1 round and ~1/8
    byte per element online; spu-lite cost's counts say random bits, not truncation
    pairs, and match the offline bytes the job sends (a triple and ~12 bytes)."""
    x = np.linspace(-3, 3, 4096)
    f = spu.jit(lambda a, b: a * b, protocol="semi2k", dealer=None)
    np.testing.assert_allclose(f(x, x[::-1]), x * x[::-1], atol=3e-5)   # inputs encoded to 2^-18
    prof = f.cluster.last_profile
    assert prof.total.rounds == 2
    counts = correlation_counts(f.lower(x, x).program)
    assert counts == {MUL: x.size, B2A: x.size}          # the truncation's: random bits
    assert not any(isinstance(k, tuple) and k[0] == TRUNC for k in counts)
    table = correlation_table(counts)
    assert "truncation pair" not in table and "random bit (b2a, trunc)" in table
    total = sum(offline_bytes(k, v) for k, v in counts.items())
    assert abs(prof.offline.bytes - total) <= 128 * len(counts) + 64
    assert offline_bytes(B2A, 2) == 24 and total / x.size < 1368 + 13
    assert prof.total.bytes <= (16 + 0.2) * x.size       # the product's 16 + 1 bit


def test_precomputed_truncations_send_no_ot_message():
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-2, 2, (30, 20)), rng.uniform(-2, 2, (20, 5))
    fn = lambda a, b: (jnp.exp(a[:, :5] / 4) * (a @ b), jax.nn.softmax(a, axis=-1))
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    counts = precompute(f, x, y)
    assert counts[B2A] > x.size and not any(isinstance(k, tuple) and k[0] == TRUNC for k in counts)
    got = f(x, y)
    assert f.cluster.last_profile.offline.bytes == 0
    for g, w in zip(got, fn(x, y)):
        np.testing.assert_allclose(np.asarray(g, np.float64), w, rtol=1e-2, atol=1e-3)


def test_old_truncation_pairs_stay_available_for_measurements(monkeypatch):
    """Semi2kOT.trunc_by_pair (bench_two_party --trunc-by-pair) truncates by truncation
    pairs as before; results within the same 1 ulp, counts of the old kind."""
    x = np.linspace(-3, 3, 1000)
    monkeypatch.setattr(Semi2kOT, "trunc_by_pair", True)
    f = spu.jit(lambda a, b: a * b, protocol="semi2k", dealer=None)
    np.testing.assert_allclose(f(x, x), x * x, atol=3e-5)
    assert correlation_counts(f.lower(x, x).program)[(TRUNC, 18)] == x.size


def test_party_views_of_truncations_are_independent_of_secrets():
    """Everything each party receives in a truncation -- the IKNP matrices and 64-bit
    corrections of the random bit products, the online e (packed bits) -- for x = 0 and
    x = -(2^61 - 5) (a negative edge: every top bit differs) in every element: every
    message looks uniform, and the two secrets' views are alike."""
    n = 16000
    views = {0: {}, 1: {}}
    for x in (0, -((1 << 61) - 5)):
        cl = make_cluster()
        recs = [Recorder(P.comm.transport) for P in cl.parties]
        sx = share(cl, Ring(64).cast(np.full(n, x, np.int64)))
        run_parties(cl, lambda P, r: P.trunc(sx[r], 18))
        for rank, rec in enumerate(recs):
            arrays = received_arrays(rec)
            sizes = sorted((a.dtype.itemsize, a.size) for a in arrays)
            assert (1, n // 8) in sizes                                   # e
            assert any(a.dtype == np.uint8 and a.size >= 8 * n for a in arrays)   # IKNP u
            views[rank][x] = uniform_tops(arrays)
    assert_views_alike(views)


def test_a_malformed_truncation_message_is_refused():
    cl = make_cluster()
    sx = share(cl, np.ones(100, np.uint64))

    def body(P, r):
        if r == 1:
            real = P._exchange                                  # the peer's e cut short
            P._exchange = lambda mine: [(g[0][:1],) for g in real(mine)]
            try:
                return P.trunc(sx[r], 4)
            finally:
                P._exchange = real
        return P.trunc(sx[r], 4)

    with pytest.raises(Exception, match="trunc: malformed message"):
        run_parties(cl, body)
