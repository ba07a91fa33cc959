"""sin and cos (runtime/fxp/trig.py): the error on the documented domain, pinned at
its edge against float64 (the op table compares with float32 JAX, whose own rounding
of a large x is coarser than the fixed-point input's)."""
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler.ir.nonlinear import BY_OP
from spu_lite.runtime.fxp.trig import max_abs_input

EDGE = max_abs_input(64, 18)


def test_domain_is_the_tables():
    assert BY_OP["sin"].domain == BY_OP["cos"].domain
    assert BY_OP["sin"].domain[1] <= EDGE < 1.03 * BY_OP["sin"].domain[1]


@pytest.mark.parametrize("protocol", ["ref2k", "semi2k", "aby3"])
@pytest.mark.parametrize("fn,ref", [(jnp.sin, np.sin), (jnp.cos, np.cos)], ids=["sin", "cos"])
def test_error_up_to_the_edge_of_the_domain(protocol, fn, ref):
    lim = BY_OP["sin"].domain[1]
    x = np.concatenate([np.linspace(-lim, lim, 301), np.linspace(-7, 7, 301), [0.0, np.pi, -np.pi / 2]])
    x = np.round(x * 2 ** 18) / 2 ** 18          # the approximation's own error: at the rounded input
    got = spu.jit(fn, protocol=protocol)(x)
    assert np.abs(got - ref(x)).max() < 3 * 2.0 ** -18


def test_far_beyond_the_edge_the_reduction_fails():
    """Past the edge the turn count's constant is too coarse (and its truncation out of
    range): by 64x the edge the error exceeds 1e-3, so the documented limit is real
    (spu.check reports inputs outside the table's domain)."""
    x = np.round(np.linspace(-64 * EDGE, 64 * EDGE, 2001) * 2 ** 18) / 2 ** 18
    got = spu.jit(jnp.sin, protocol="ref2k")(x)
    assert np.abs(got - np.sin(x)).max() > 1e-3
