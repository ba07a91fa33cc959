"""Every op of the op table, for every protocol, against plaintext JAX."""
import jax
import numpy as np
import pytest

import spu_lite as spu
from runtime.protocols import get_protocol

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
    rng = np.random.default_rng(abs(hash(case.name)) % 2 ** 32)
    inputs = case.make(rng)
    want = reference(case, inputs)
    got = spu.jit(case.fn, protocol=protocol, seed=7)(*inputs)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(np.asarray(g, np.float64), w, atol=case.atol, rtol=case.rtol)
