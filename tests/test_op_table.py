"""Every op of the op table, for every protocol, against plaintext JAX."""
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
    np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=case.atol, rtol=case.rtol)
