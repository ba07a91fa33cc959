"""Every op of the op table, for every protocol, against plaintext JAX."""
import zlib

import jax
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.protocols import get_protocol

from .op_table import CASES, reference

PROTOCOLS = []
for _p in ("ref2k", "semi2k", "aby3"):
    try:
        get_protocol(_p)
        PROTOCOLS.append(_p)
    except ValueError:
        pass


@pytest.fixture(scope="module", params=PROTOCOLS)
def protocol(request):
    return request.param


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_matches_plaintext(case, protocol):
    _check(case, protocol)


# semi2k without a dealer (correlations by oblivious transfer): the whole table, its
# core rows in the quick suite and the rest marked slow (the table takes ~1 min there)
CORE_WITHOUT_DEALER = {"add", "sub", "mul", "square", "matmul", "batched_matmul", "dense_relu",
                       "mean", "less", "equal", "relu", "max_axis", "argmax", "where",
                       "int_arith", "sort", "grad_mlp", "cond_secret"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=() if c.name in CORE_WITHOUT_DEALER
                                               else pytest.mark.slow) for c in CASES])
def test_op_matches_plaintext_without_dealer(case):
    _check(case, "semi2k_ot")


def _check(case, protocol):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))   # the same inputs every run
    inputs = case.make(rng)
    want = reference(case, inputs)
    got = spu.jit(case.fn, protocol=protocol, seed=7)(*inputs)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(np.asarray(g, np.float64), w, atol=case.atol, rtol=case.rtol)


@pytest.mark.parametrize("protocol_name", ["semi2k", "aby3"])
def test_sort_by_a_public_key_permutes_secrets_locally(protocol_name):
    """A public key's permutation is public: secret operands are permuted locally (no
    round), and the result is exactly the plaintext one."""
    keys = np.array([3.0, -1.0, 2.0, -1.0, 0.5])
    vals = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    f = lambda k, v: jax.lax.sort((k, v), num_keys=1)
    got = spu.jit(f, protocol=protocol_name)(spu.public(keys), vals)
    want = f(keys, vals)
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)     # stable on the tie at -1
    assert spu.profile().total.rounds == 0
