"""Per-value fixed-point formats: exp's finer result, finer input formats for inputs
read only by log/log1p/sqrt/rsqrt (compiler/lower/input_formats.py), and how they meet
the rest of the program (products back at fxp_bits, handles keep their scale)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from compiler.ir import parse_program, print_program


def param_fracs(fn, *args, **kw):
    prog = spu.jit(fn, **kw).lower(*args).program
    return [p.type.dtype.frac for p in prog.params], prog


def test_inputs_read_only_by_log_and_roots_are_finer():
    x = np.ones(4)
    assert param_fracs(jnp.log, x)[0] == [26]
    assert param_fracs(lambda v: jnp.sqrt(v) + jax.lax.rsqrt(v) + jnp.log1p(v), x)[0] == [26]
    # any other reader keeps fxp_bits: a product, an addition, an output, exp, 1/x
    for fn in (lambda v: jnp.log(v) * v, lambda v: jnp.log(v + 1.0), lambda v: (jnp.log(v), v),
               jnp.exp, lambda v: 1.0 / v):
        assert param_fracs(fn, x)[0] == [18]
    fracs, prog = param_fracs(lambda a, b: jnp.log(a) * b, x, x)
    assert fracs == [26, 18]
    assert "log(%0) {frac=18} : secret<fxp<64,18>>[4]" in prog.text
    assert print_program(parse_program(prog.text)) == prog.text


def test_finer_input_precision_end_to_end():
    """At x = 0.01 an 18-bit input costs ln 1.7e-4 and rsqrt 8.4e-4 of error by its
    rounding alone; at 26 bits both are at the approximation's own ~4e-6."""
    x = np.linspace(0.01, 0.2, 64)
    for protocol in ("aby3", "semi2k"):
        got = np.asarray(spu.jit(jnp.log, protocol=protocol)(x), np.float64)
        assert np.abs(got - np.log(x)).max() < 1e-5, protocol
        got = np.asarray(spu.jit(jax.lax.rsqrt, protocol=protocol)(x), np.float64)
        assert np.abs(got - 1 / np.sqrt(x)).max() < 2e-5, protocol


def test_large_inputs_fall_back_to_fxp_bits():
    """2^36 is the range of a 26-bit input; larger values run the program compiled
    with every input at fxp_bits (cached separately), not an error."""
    f = spu.jit(jnp.log, protocol="ref2k")
    np.testing.assert_allclose(f(np.array([1e12, 5.0])), np.log([1e12, 5.0]), atol=1e-4)
    np.testing.assert_allclose(f(np.array([0.01, 5.0])), np.log([0.01, 5.0]), atol=1e-5)


def test_secret_handles_keep_their_scale():
    keep = spu.jit(lambda v: v * 1.0, keep_secret=True)
    h = keep(np.array([0.01, 1.0, 100.0]))
    assert h.ir_type.dtype.frac == 18
    np.testing.assert_allclose(spu.jit(jnp.log)(h), np.log([0.01, 1.0, 100.0]), atol=2e-4)
    e = spu.jit(jnp.exp, keep_secret=True)(np.array([-8.0, 0.0, 2.0]))
    assert e.ir_type.dtype.frac == 26                 # exp's finer result, kept as it is
    np.testing.assert_allclose(spu.jit(lambda v: v * 2.0)(e), 2 * np.exp([-8.0, 0.0, 2.0]),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(spu.reveal(e), np.exp([-8.0, 0.0, 2.0]), rtol=3e-4)


@pytest.mark.parametrize("protocol", ["ref2k", "aby3"])
def test_exp_result_mixes_with_working_format(protocol):
    """exp at 26 bits added to, multiplied with and compared against 18-bit values."""
    x = np.linspace(-3, 2, 50)
    f = spu.jit(lambda v: (jnp.exp(v) + v, jnp.exp(v) * v, jnp.exp(v) > 1.0,
                           jax.nn.softmax(v), jnp.log(jnp.exp(v))), protocol=protocol)
    a, b, c, d, e = f(x)
    np.testing.assert_allclose(a, np.exp(x) + x, atol=1e-4)
    np.testing.assert_allclose(b, np.exp(x) * x, atol=1e-4)
    np.testing.assert_array_equal(c, np.exp(x) > 1.0)
    np.testing.assert_allclose(d, np.exp(x) / np.exp(x).sum(), atol=1e-5)
    np.testing.assert_allclose(e, x, atol=5e-5)
