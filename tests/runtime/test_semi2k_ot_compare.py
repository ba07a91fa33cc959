"""semi2k_ot's comparisons by the millionaires' protocol (semi2k_ot_compare.py): the
random 1-out-of-16 OTs, sign bits equal to the boolean adder's bit for bit (full width
and narrow, tie cases included), their correlations counted and pooled ahead of a job,
and the views of both parties (the new OT messages included) for two different secrets."""
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.fxp.compare import msb, msb_boolean
from spu_lite.runtime.fxp.narrow import msb_narrow
from spu_lite.runtime.protocols.base import Share
from spu_lite.runtime.protocols.semi2k_common import AND, B2A
from spu_lite.runtime.protocols.semi2k_ot_compare import AND2, ROT
from spu_lite.two_party import correlation_counts, offline_bytes, online_cost, precompute

from .harness import run_parties
from .test_semi2k import Recorder, _uniform_pvalue
from .test_semi2k_ot import make_cluster, opened


@pytest.fixture(scope="module")
def cl():
    return make_cluster()


def test_random_one_of_sixteen_ots_are_consistent(cl):
    """The receiver's entry is the sender's table at its choice; choices and tables
    are not degenerate (all 16 choices occur, the entries look uniform)."""
    n = 5000
    (send0, recv1), (recv0, send1) = run_parties(       # n sent by P0, n + 7 by P1
        cl, lambda P, r: P.source.rot(n, n + 7))
    assert send0[0].size == n and send1[0].size == n + 7
    for (table, share), (c, entry) in ((send0, recv0), (send1, recv1)):
        assert table.dtype == np.uint32 and set(np.unique(share)) == {0, 1, 2, 3}
        assert set(np.unique(c)) == set(range(16))
        at_c = (table.astype(np.uint64) >> (2 * c.astype(np.uint64))) & np.uint64(3)
        assert np.array_equal(at_c.astype(np.uint8), entry)
        assert _uniform_pvalue((table >> np.uint32(24)).astype(np.int64)) > 1e-4


def _pieces(cl, x0, x1):
    dt = cl.ring.dtype
    return [Share([np.asarray(x0, dt)]), Share([np.asarray(x1, dt)])]


def _edge_pieces(rng, k, n):
    """Random pieces, then pairs whose low k-1 bits sum to 2^(k-1) - 1 (every block
    equal: no carry) and to 2^(k-1) (a carry from the lowest bit)."""
    dt = np.uint64 if k == 64 else np.uint32
    x0 = rng.integers(0, 1 << 62, n, dtype=np.uint64).astype(dt) * dt(3)
    x1 = rng.integers(0, 1 << 62, n, dtype=np.uint64).astype(dt) * dt(5)
    low = dt((1 << (k - 1)) - 1)
    top = dt(1 << (k - 1))
    third = n // 3
    x1[:third] = (low - (x0[:third] & low)) | (x1[:third] & top)          # sum of lows 2^(k-1) - 1
    x1[third:2 * third] = (low - (x0[third:2 * third] & low) + dt(1)) | (x1[third:2 * third] & top)
    return x0, x1


@pytest.mark.parametrize("field", [64, 32])
def test_sign_bits_equal_the_boolean_adder(field):
    cl = make_cluster(field)
    dt, k, n = cl.ring.dtype, field, 3000
    x0, x1 = _edge_pieces(np.random.default_rng(field), k, n)
    sx = _pieces(cl, x0, x1)
    outs = run_parties(cl, lambda P, r: (msb(P, sx[r]), P.b2a_bit(msb_boolean(P, sx[r]))))
    ours, adder = (opened(cl, [o[i] for o in outs]) for i in (0, 1))
    want = ((x0 + x1) >> dt(k - 1)).astype(dt)
    assert np.array_equal(ours, want) and np.array_equal(adder, want)
    assert 0 < want.sum() < n


@pytest.mark.parametrize("width,shift", [(32, 0), (32, 19), (16, 8)])
def test_narrow_sign_bits_equal_the_packed_adder(cl, width, shift):
    n = 2000
    x0, x1 = _edge_pieces(np.random.default_rng(width + shift), 64, n)
    sx = _pieces(cl, x0, x1)

    def body(P, r):
        ours = msb_narrow(P, sx[r], width, shift)
        P.sign_bit = lambda *a, **kw: None          # this party's generic packed adder
        try:
            return ours, msb_narrow(P, sx[r], width, shift)
        finally:
            del P.sign_bit

    outs = run_parties(cl, body)
    ours, adder = (opened(cl, [o[i] for o in outs]) for i in (0, 1))
    mask = np.uint64((1 << width) - 1)
    s = ((x0 >> np.uint64(shift)) + (x1 >> np.uint64(shift))) & mask
    want = s >> np.uint64(width - 1)
    assert np.array_equal(ours, want) and np.array_equal(adder, want)


def test_comparison_costs_and_counts():
    """A comparison sends ~43 bytes per element online in 7 rounds (2 OT, 4 AND,
    1 bit injection); spu-lite cost's counts match what the job makes, and the
    offline bytes are < 1/10 of the boolean adder's 13,068 per element."""
    x = np.linspace(-3, 3, 4096)
    y = x[::-1].copy()
    f = spu.jit(lambda a, b: a < b, protocol="semi2k", dealer=None)
    assert np.array_equal(np.asarray(f(x, y)), x < y)
    prof = f.cluster.last_profile
    assert prof.ops["less"].rounds == 7
    assert prof.ops["less"].bytes <= 46 * x.size
    program = f.lower(x, y).program
    dry = online_cost(program).per_op.ops["less"]            # what spu-lite cost prints
    assert dry.rounds == 7 and abs(dry.bytes - prof.ops["less"].bytes) <= 1000
    counts = correlation_counts(program)
    assert counts[(ROT, 0)] + counts[(ROT, 1)] == 16 * x.size and counts[B2A] == x.size
    assert AND not in counts                                 # AND pairs, 15 bits packed:
    assert counts[AND2] == sum(-(-b * x.size // 64) for b in (8, 4, 2, 1))
    per_element = sum(offline_bytes(k, v) for k, v in counts.items()) / x.size
    assert per_element < 1000
    assert abs(prof.offline.bytes - per_element * x.size) <= 128 * len(counts) + 64


def test_precomputed_comparisons_send_no_ot_message():
    """precompute counts the 1-out-of-16 OTs with the rest (a semi2k dry run with this
    comparison protocol); the call then takes everything from the pools."""
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-2, 2, 999), rng.uniform(-2, 2, 999)
    fn = lambda a, b: (a < b, jnp.maximum(a, b), jnp.exp(a))
    f = spu.jit(fn, protocol="semi2k", dealer=None)
    counts = precompute(f, x, y)
    assert counts[(ROT, 0)] > 0 and counts[(ROT, 1)] > 0
    got = f(x, y)
    off = f.cluster.last_profile.offline
    assert off.bytes == 0 and off.seconds == 0          # nothing made during the call
    assert np.array_equal(np.asarray(got[0]), x < y)
    np.testing.assert_allclose(got[1], np.maximum(x, y), atol=2 ** -17)
    np.testing.assert_allclose(got[2], np.exp(x), rtol=2e-3, atol=1e-4)
    precompute(f, x, y)                             # pools for 999: a call on 1500 takes
    x2, y2 = rng.uniform(-2, 2, 1500), rng.uniform(-2, 2, 1500)   # them and makes the rest
    got = f(x2, y2)
    assert f.cluster.last_profile.offline.bytes > 0
    assert np.array_equal(np.asarray(got[0]), x2 < y2)
    np.testing.assert_allclose(got[1], np.maximum(x2, y2), atol=2 ** -17)


def _top_bytes(log):
    """The top byte of every element of every received array of 64 elements or more."""
    out = []
    for _, payload in log:
        for p in (payload if isinstance(payload, tuple) else (payload,)):
            if isinstance(p, np.ndarray) and p.size >= 64:
                a = p.reshape(-1)
                out.append((a >> np.array(8 * a.itemsize - 8, a.dtype)).astype(np.int64))
    return out


def test_party_views_of_comparisons_are_independent_of_secrets():
    """Everything each party receives while comparing -- OT choices e, 16-entry tables,
    IKNP matrices, AND openings and corrections (a 1-bit correction travels as a whole
    padded byte), bit injections -- for x = 0 and for
    x = 2^62 + 12345 (every element; 64-bit and narrow sign bits): every message looks
    uniform, and the two secrets' views are alike."""
    from scipy.stats import chi2_contingency
    views = {0: {}, 1: {}}
    for secret in (0, (1 << 62) + 12345):
        cl = make_cluster()
        recs = [Recorder(P.comm.transport) for P in cl.parties]
        sx = cl.share(np.full(4000, secret, np.uint64))
        run_parties(cl, lambda P, r: (msb(P, sx[r]), msb_narrow(P, sx[r], 32, 18)))
        for rank, rec in enumerate(recs):
            tops = _top_bytes(rec.log)
            assert {t.size for t in tops} >= {32000, 128 * 4000 * 64 // 8 // 2}
            for t in tops:
                if t.size >= 1000:
                    assert _uniform_pvalue(t) > 1e-5
            views[rank][secret] = np.concatenate(tops)
    for rank in (0, 1):
        table = np.stack([np.bincount(v, minlength=256) for v in views[rank].values()])
        assert chi2_contingency(table).pvalue > 1e-4
