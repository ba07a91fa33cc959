"""semi2k_ot's select by an OT multiplexer (semi2k_ot_mux.py): the correlation exact,
c * x equal to the Beaver product for every element (full ring, broadcasting, 64- and
32-bit rings), select / relu / max / sort / argmax bit-identical to the Beaver path
through spu.jit, the correlations counted, pooled and priced, and the views of both
parties (the new OT and online messages) for two different secrets."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.protocols.semi2k_common import MUL
from spu_lite.runtime.protocols.semi2k_ot import Semi2kOT
from spu_lite.runtime.protocols.semi2k_ot_mux import MUX
from spu_lite.two_party import (correlation_counts, correlation_table, offline_bytes,
                                 online_cost, precompute)

from .harness import run_parties
from .test_semi2k import Recorder
from .test_semi2k_ot import assert_views_alike, make_cluster, opened, received_arrays, uniform_tops


@pytest.mark.parametrize("field", [64, 32])
def test_multiplexer_correlation_is_exact(field):
    cl = make_cluster(field)
    n = 5001
    (b0, v0, u0), (b1, v1, u1) = run_parties(cl, lambda P, r: P.source.mux(n))
    assert b0.dtype == np.uint8 and set(np.unique(b0)) == {0, 1} and set(np.unique(b1)) == {0, 1}
    b = (b0 ^ b1).astype(cl.ring.dtype)
    assert np.array_equal(u0 + u1, b * (v0 + v1))
    assert 0.45 < b.mean() < 0.55


@pytest.mark.parametrize("field", [64, 32])
def test_mux_equals_the_beaver_product_for_every_element(field):
    """c * x for c in {0, 1} and x anywhere in the ring, c broadcast against x too."""
    cl = make_cluster(field)
    dt, rng = cl.ring.dtype, np.random.default_rng(field)
    n = 3000
    c = rng.integers(0, 2, n).astype(dt)
    x = rng.integers(0, np.iinfo(dt).max, n, dtype=dt, endpoint=True)
    x[:4] = [0, 1, np.iinfo(dt).max, 1 << (field - 1)]
    c_row = rng.integers(0, 2, (1, 7)).astype(dt)
    x_mat = rng.integers(0, np.iinfo(dt).max, (5, 7), dtype=dt, endpoint=True)
    y, w = (rng.integers(0, np.iinfo(dt).max, 77, dtype=dt, endpoint=True) for _ in range(2))
    sc, sx, scr, sxm = cl.share(c), cl.share(x), cl.share(c_row), cl.share(x_mat)
    sy, sw = cl.share(y), cl.share(w)
    outs = run_parties(cl, lambda P, r: (P.mux(sc[r], sx[r]), P.mul(sc[r], sx[r]),
                                         P.mux(scr[r], sxm[r]),
                                         *P.mux(sc[r], sx[r], products=(sy[r], sw[r]))))
    ours, beaver, bcast, again, prod = (opened(cl, [o[i] for o in outs]) for i in range(5))
    assert np.array_equal(ours, c * x) and np.array_equal(beaver, c * x)
    assert np.array_equal(bcast, c_row * x_mat)
    assert np.array_equal(again, c * x) and np.array_equal(prod, y * w)   # one round


CASES = {
    "relu": (jax.nn.relu, 1),
    "maximum": (jnp.maximum, 2),
    "minimum_and_clip": (lambda a, b: (jnp.minimum(a, b), jnp.clip(a, -1.0, 1.5)), 2),
    "where": (lambda a, b: jnp.where(a < b, a, -b), 2),
    "abs": (jnp.abs, 1),
    "max_argmax": (lambda a: (jnp.max(a.reshape(-1, 10), axis=1),
                              jnp.argmax(a.reshape(-1, 10), axis=1)), 1),
    "sort": (lambda a: jnp.sort(a[:64]), 1),
    "logic": (lambda a, b: (jnp.logical_and(a > 0, b > 0), jnp.logical_or(a > 1, b < -1),
                            jnp.logical_xor(a > 0, b < 0)), 2),      # a product of 0/1 values
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_select_is_bit_identical_to_the_beaver_path(name, monkeypatch):
    """The same program with select's product by a Beaver triple (Semi2kOT.mux switched
    off): equal outputs, bit for bit, and the multiplexer's correlations replace the
    triples."""
    fn, arity = CASES[name]
    rng = np.random.default_rng(len(name))
    args = [rng.uniform(-4, 4, 1000).astype(np.float32) for _ in range(arity)]
    args[0][:10] = 0.0                                   # ties
    f = spu.jit(fn, protocol="semi2k", dealer=None, seed=3)
    ours = jax.tree_util.tree_leaves(f(*args))
    counts = correlation_counts(f.lower(*args).program)
    monkeypatch.setattr(Semi2kOT, "mux", None)
    g = spu.jit(fn, protocol="semi2k", dealer=None, seed=3)
    beaver = jax.tree_util.tree_leaves(g(*args))
    want = jax.tree_util.tree_leaves(fn(*args))
    for o, b, w in zip(ours, beaver, want):
        assert np.asarray(o).tobytes() == np.asarray(b).tobytes()
        np.testing.assert_allclose(np.asarray(o, np.float64), w, atol=2 ** -17)
    assert counts[MUX] > 0 and MUL not in counts
    assert MUX not in correlation_counts(g.lower(*args).program)


def test_select_costs_one_round_and_its_counts_match_what_the_job_makes():
    """relu: select takes 1 round and ~8 bytes per element online; spu-lite cost's
    counts (a dry run) match the offline bytes the job sends, 24 per select."""
    x = np.linspace(-3, 3, 4096)
    f = spu.jit(jax.nn.relu, protocol="semi2k", dealer=None)
    np.testing.assert_allclose(f(x), np.maximum(x, 0), atol=2 ** -17)
    prof = f.cluster.last_profile
    assert prof.ops["select"].rounds == 1
    assert prof.ops["select"].bytes <= 8.2 * x.size
    program = f.lower(x).program
    dry = online_cost(program).per_op.ops["select"]
    assert dry.rounds == 1 and abs(dry.bytes - prof.ops["select"].bytes) <= 1000
    counts = correlation_counts(program)
    assert counts[MUX] == x.size and offline_bytes(MUX, 1) == 24
    rows = [line.split()[-2:] for line in correlation_table(counts).splitlines()
            if line.startswith("multiplexer (select, logic)")]                  # spu-lite cost's row
    assert rows == [["4,096", "98,304"]]
    total = sum(offline_bytes(k, v) for k, v in counts.items())
    assert abs(prof.offline.bytes - total) <= 128 * len(counts) + 64
    assert total / x.size < 850                           # comparison 794 + select 24


def test_a_batch_of_selects_takes_one_round_mixed_with_products_too():
    """Independent selects, batched by the compiler, share one multiplexer round; a batch
    that also holds another secret product (here an integer product) stays one round:
    the product's Beaver differences travel with the multiplexer's message."""
    rng = np.random.default_rng(6)
    a, b, c = (rng.normal(size=100) for _ in range(3))
    i, j = (rng.integers(-100, 100, 100).astype(np.int32) for _ in range(2))
    for fn, args, want_mux in (
            (lambda a, b, c: (jnp.where(a < b, a, b), jnp.where(c < b, b, c)), (a, b, c), 200),
            (lambda a, b, i, j: (jnp.where(a < b, a, b), i * j), (a, b, i, j), 100)):
        f = spu.jit(fn, protocol="semi2k", dealer=None)
        got = f(*args)
        prof = f.cluster.last_profile
        assert prof.ops["select"].rounds == 1 and prof.total.rounds == 8    # less: 7
        for g, w in zip(got, fn(*args)):
            np.testing.assert_allclose(np.asarray(g, np.float64), w, atol=2 ** -17)
        counts = correlation_counts(f.lower(*args).program)
        assert counts.get(MUX, 0) == want_mux and counts.get(MUL, 0) == 200 - want_mux


def test_precomputed_selects_send_no_ot_message():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-2, 2, 777), rng.uniform(-2, 2, 777)
    fn = lambda a, b: (jax.nn.relu(a), jnp.where(a < b, a * b, b))
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    counts = precompute(f, x, y)
    assert counts[MUX] == 2 * x.size
    got = f(x, y)
    off = f.cluster.last_profile.offline
    assert off.bytes == 0 and off.seconds == 0
    np.testing.assert_allclose(got[0], np.maximum(x, 0), atol=2 ** -17)
    np.testing.assert_allclose(got[1], np.where(x < y, x * y, y), atol=2 ** -16)


def test_party_views_of_selects_are_independent_of_secrets():
    """Everything each party receives in c * x -- IKNP matrices and the 64-bit
    corrections of the offline multiplexer, the online e (packed bits) and f -- for
    (c, x) = (0, 0) and (1, 2^40 + 7) in every element: every message looks uniform
    (its bytes, or its elements' top bytes), and the two secrets' views are alike."""
    n = 16000
    views = {0: {}, 1: {}}
    for c, x in ((0, 0), (1, (1 << 40) + 7)):
        cl = make_cluster()
        recs = [Recorder(P.comm.transport) for P in cl.parties]
        sc, sx = cl.share(np.full(n, c, np.uint64)), cl.share(np.full(n, x, np.uint64))
        run_parties(cl, lambda P, r: P.mux(sc[r], sx[r]))
        for rank, rec in enumerate(recs):
            arrays = received_arrays(rec)
            sizes = sorted((a.dtype.itemsize, a.size) for a in arrays)
            assert (1, n // 8) in sizes and sizes.count((8, n)) >= 1   # e, and f or corrections
            assert any(a.dtype == np.uint8 and a.size >= 16 * n for a in arrays)   # IKNP u
            views[rank][c] = uniform_tops(arrays)
    assert_views_alike(views)


def test_protocols_without_a_multiplexer_keep_the_product():
    """The hook is optional: semi2k with a dealer (and aby3) select by a ring product."""
    x = np.linspace(-2, 2, 100)
    for proto in ("semi2k", "aby3"):
        f = spu.jit(jax.nn.relu, protocol=proto)
        np.testing.assert_allclose(f(x), np.maximum(x, 0), atol=2 ** -17)
        assert f.cluster.parties[0].proto.mux is None


def test_a_malformed_multiplexer_message_is_refused():
    cl = make_cluster()
    sc, sx = cl.share(np.ones(10, np.uint64)), cl.share(np.ones(10, np.uint64))

    def body(P, r):
        if r == 1:
            real = P._exchange                                  # the peer's e cut short
            P._exchange = lambda mine: [(g[0][:1], g[1]) for g in real(mine)]
            try:
                return P.mux(sc[r], sx[r])
            finally:
                P._exchange = real
        return P.mux(sc[r], sx[r])

    with pytest.raises(Exception, match="malformed multiplexer message"):
        run_parties(cl, body)


def test_zero_sized_selects():
    cl = make_cluster()
    s = cl.share(np.zeros(0, np.uint64))
    outs = run_parties(cl, lambda P, r: P.mux(s[r], s[r]))
    assert opened(cl, outs).shape == (0,)
