"""Rings: per-field defaults, refused combinations, and the measured limits pinned just
inside (correct under aby3 and semi2k) and just outside (caught by spu.check)."""
import os
import subprocess
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler import CompileError, CompileOptions
from spu_lite.compiler.ir.fields import DEFAULT_FXP_BITS, max_fxp_bits
from spu_lite.runtime.fxp.domains import domains

from .op_table import CASES, reference

RINGS = [(64, 18), (32, 9)]         # (field, default fxp_bits)
SECURE = ["aby3", "semi2k"]


def product_limit(field, f):
    return 2.0 ** (field - 2 - 2 * f)


def input_limit(field, f):
    return 2.0 ** (field - 2 - f)


def test_defaults_per_field():
    assert DEFAULT_FXP_BITS == {64: 18, 32: 9}
    assert spu.jit(jnp.negative).config.fxp_bits == 18
    assert spu.jit(jnp.negative, field=32).config.fxp_bits == 9


@pytest.mark.parametrize("protocol", ["ref2k"] + SECURE)
def test_field32_runs_what_used_to_break(protocol):
    """x*y gave [0, 0], exp failed, 1/y raised OverflowError, softmax rows summed past 1."""
    x, y = np.array([1.5, -2.25]), np.array([2.0, 3.5])
    z = np.random.default_rng(1).uniform(-4, 4, (6, 10))
    f = spu.jit(lambda x, y, z: (x * y, jnp.exp(x), 1.0 / y, jax.nn.softmax(z)),
                protocol=protocol, field=32, seed=3)
    prod, e, r, sm = f(x, y, z)
    ulp = 2.0 ** -9
    np.testing.assert_allclose(prod, x * y, atol=4 * ulp)
    np.testing.assert_allclose(e, np.exp(x), rtol=2e-2, atol=8 * ulp)
    np.testing.assert_allclose(r, 1 / y, atol=8 * ulp)
    np.testing.assert_allclose(sm, jax.nn.softmax(z), atol=16 * ulp)
    np.testing.assert_allclose(sm.sum(-1), 1.0, atol=0.03)


def test_refused_combinations_say_what_to_use():
    with pytest.raises(ValueError, match=r"fxp_bits between 1 and 12 \(default 9\), or field=64"):
        spu.jit(jnp.negative, field=32, fxp_bits=18)
    with pytest.raises(ValueError, match="between 1 and 28"):
        spu.jit(jnp.negative, field=64, fxp_bits=30)
    with pytest.raises(CompileError, match="does not fit a 32-bit ring"):
        CompileOptions(32, 13)
    assert max_fxp_bits(32) == 12 and max_fxp_bits(64) == 28
    # reciprocal (and so division) has no working precision past 9 bits at k = 32
    with pytest.raises(CompileError, match=r"use fxp_bits <= 9 \(default 9\) or field=64 \(at .*test_rings"):
        spu.jit(lambda a, b: a / b, field=32, fxp_bits=10)(np.ones(2), np.ones(2))
    a, b = np.array([1.0, -3.0, 0.5, 1.0]), np.array([0.2, 7.0, -0.4, 3.0])   # at 9 it works
    for protocol in SECURE:
        np.testing.assert_allclose(spu.jit(lambda a, b: a / b, protocol=protocol, field=32,
                                           seed=1)(a, b), a / b, rtol=1e-2, atol=4 * 2.0 ** -9)
    np.testing.assert_allclose(spu.jit(lambda a, b: a * b, field=32, fxp_bits=12)(
        np.array([1.5]), np.array([2.0])), [3.0])


def test_cli_refuses_a_ring_that_cannot_work(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f(x, y):\n    return x * y\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "spu_lite", "compile", f"{src}:f", "--arg", "f32[2]",
                        "--arg", "f32[2]", "--field", "32", "--fxp-bits", "18"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "between 1 and 12" in r.stderr
    r = subprocess.run([sys.executable, "-m", "spu_lite", "compile", f"{src}:f", "--arg", "f32[2]",
                        "--arg", "f32[2]", "--field", "32"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and "fxp_bits=9" in r.stdout


# ---- the measured limits (docs/rings.md) -------------------------------------------------

def _products(field, f, scale, n=400, seed=0):
    """x, y with |x y| in [scale, 1.02 scale] product_limit, both signs."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(scale, 1.02 * scale, n) * product_limit(field, f) * rng.choice([-1, 1], n)
    return p / 1.5, np.full(n, 1.5)


@pytest.mark.parametrize("field, f", RINGS)
def test_product_limit_just_inside_is_correct(field, f):
    x, y = _products(field, f, 0.97)
    for protocol in SECURE:
        got = spu.jit(lambda a, b: a * b, protocol=protocol, field=field, seed=1)(x, y)
        np.testing.assert_allclose(got, x * y, rtol=1e-6, atol=2.0 ** -f * 4)
        xs = np.repeat(x[:100, None] / 4, 4, 1)           # a dot's accumulator at the limit
        got = spu.jit(lambda a, b: a @ b, protocol=protocol, field=field, seed=1)(xs, y[:4])
        np.testing.assert_allclose(got, xs @ y[:4], rtol=1e-6, atol=2.0 ** -f * 8)
    assert spu.check(lambda a, b: a * b, x, y, field=field).ok


@pytest.mark.parametrize("field, f", RINGS)
def test_product_limit_just_outside_is_caught(field, f):
    x, y = _products(field, f, 1.01)
    report = spu.check(lambda a, b: a * b, x, y, field=field)
    assert [(k.kind, k.op, k.count) for k in report.findings] == [("overflow", "mul", len(x))]
    assert f"2^{field - 2 - 2 * f}" in report.findings[0].detail
    xs = np.repeat(x[:100, None] / 4, 4, 1)
    report = spu.check(lambda a, b: a @ b, xs, y[:4], field=field)
    assert [(k.kind, k.op) for k in report.findings] == [("overflow", "dot")]
    # ... where the secure protocols do go wrong (measured: 2-4% of elements at 1-1.1x)
    wrong = 0
    for protocol in SECURE:
        x2, y2 = _products(field, f, 1.05, n=3000, seed=2)
        got = spu.jit(lambda a, b: a * b, protocol=protocol, field=field, seed=1)(x2, y2)
        wrong += int((np.abs(got - x2 * y2) > 1e-3 * np.abs(x2 * y2)).sum())
    assert wrong > 0


@pytest.mark.parametrize("field, f", RINGS)
def test_input_limit_just_inside_is_correct_and_outside_caught(field, f):
    lim = input_limit(field, f)
    rng = np.random.default_rng(3)
    a = rng.uniform(0.97, 0.999, 300) * lim * rng.choice([-1, 1], 300)
    b = -0.999 * a
    fn = lambda a, b: (jnp.maximum(a, b), a + b)
    for protocol in SECURE:
        got = spu.jit(fn, protocol=protocol, field=field, seed=1)(a, b)
        np.testing.assert_allclose(got[0], np.maximum(a, b), rtol=1e-6)
        np.testing.assert_allclose(got[1], a + b, atol=2.0 ** -f * 2 + 1e-9 * lim)
    assert spu.check(fn, a, b, field=field).ok
    report = spu.check(fn, a * 1.01 / 0.97, b, field=field)
    assert [(k.kind, k.op) for k in report.findings] == [("overflow", "input")]
    with pytest.raises(spu.InputError):
        spu.jit(fn, field=field)(a * 1.01 / 0.97, b)


@pytest.mark.parametrize("field, f", RINGS)
def test_exp_domain_just_inside_is_correct_and_outside_caught(field, f):
    """exp's stated upper bound (runtime/fxp/domains.py): 16 at k = 64 (squaring; the
    first wrong result measured at 16.8 under aby3), 11.06 at k = 32 (accurate)."""
    hi = domains(field, f, None, CompileOptions(field, f).exp_frac)["exp"].hi
    ulp = 2.0 ** -f
    inside, outside = np.array([hi - 0.3, hi - 4 * ulp]), np.array([hi + 4 * ulp, hi + 2.0])
    for protocol in SECURE:
        got = spu.jit(jnp.exp, protocol=protocol, field=field, seed=1)(inside)
        np.testing.assert_allclose(got, np.exp(inside), rtol=3e-3)
        got = spu.jit(jnp.exp, protocol=protocol, field=field, seed=1)(outside)
        assert abs(got[1] / np.exp(outside[1]) - 1) > 0.5         # garbage past the bound
    assert spu.check(jnp.exp, inside, field=field).ok
    report = spu.check(jnp.exp, outside, field=field)
    found = [(k.kind, k.op, k.count) for k in report.findings]
    # the garbage output may be reported too (off by more than its own magnitude)
    assert found[0] == ("domain", "exp", 2) and all(k == "precision" for k, _, _ in found[1:])


# ---- the op table in a 32-bit ring ---------------------------------------------------------

# 2.5 + 2^-17 is a tie at 9 fractional bits: rounds to even, unlike float; int32 values
# past 2^30 are outside a 32-bit ring's comparison range (spu.check reports such inputs)
_SKIP_32 = {"floor_ceil_round": "its input 2.5 + 2^-17 is below the 9-bit resolution",
            "shift_right_arithmetic": "int32 edges 2^31 - 1", "shift_right_logical": "int32 edges"}
# exact integer division / remainder and shifts by run-time amounts need a 64-bit ring
_NEEDS_64 = {"floordiv_const", "floordiv_negative_const", "remainder_const", "jnp_mod_const_array",
             "lax_div_rem_const", "floordiv_secret", "remainder_secret", "divmod_secret",
             "shifts_by_secret_amounts",
             "searchsorted", "digitize", "interp",   # binary search: secret integer //
             "bool_scatters_and_unique_of_a_given_size"}  # unique's sort keys divide
_QUICK = {"floordiv_secret", "pow_secret_exponent", "add", "mul", "mul_const", "matmul", "sum", "mean", "max_axis", "argmax", "relu", "less",
          "where", "gather", "cumsum", "int_arith", "grad_mlp", "scan", "cond_secret", "sort",
          "conv2d_same_stride2", "softmax_neg_inf_mask", "integer_label_cross_entropy_grad",
          "index_at_secret"}
_CASES_32 = [pytest.param(c, marks=() if c.name in _QUICK else pytest.mark.slow, id=c.name)
             for c in CASES if c.name not in _SKIP_32]


@pytest.mark.parametrize("protocol", ["ref2k"] + SECURE)
@pytest.mark.parametrize("case", _CASES_32)
def test_op_table_in_a_32_bit_ring(case, protocol):
    """Every op of the op table at field=32 (default 9 fractional bits), tolerances
    scaled from 18 to 9 bits (relative: at least 2^-7, compositions of nonlinear
    functions like x^1.5 = exp(1.5 log x)); or a CompileError that says to use field=64."""
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    inputs = case.make(rng)
    if case.name in _NEEDS_64:
        with pytest.raises(CompileError, match="needs field=64"):
            spu.jit(case.fn, protocol=protocol, field=32)(*inputs)
        return
    want = reference(case, inputs)
    got = spu.jit(case.fn, protocol=protocol, seed=7, field=32)(*inputs)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g, np.float64), w, atol=case.atol * 2 ** 9,
                                   rtol=max(case.rtol, 2.0 ** -7))


def test_second_moments_need_the_64_bit_ring():
    """Adam's and RMSprop's second moment keeps a wide format (docs/fixed-point.md) that a
    32-bit ring cannot hold: a CompileError at the optimizer's line (it was a runtime
    failure of a truncation, 'shift 45 outside [1, 30]'). A first moment (SGD with
    momentum, an EMA in a scan) runs at the ring's 9 bits."""
    import optax
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.float32)
    loss = lambda w: optax.sigmoid_binary_cross_entropy(x @ w, y).mean()

    def train(opt):
        def run(w):
            s = opt.init(w)
            for _ in range(2):
                u, s = opt.update(jax.grad(loss)(w), s, w)       # MARK update
                w = optax.apply_updates(w, u)
            return w
        return run
    w0 = np.zeros(4, np.float32)
    for opt in (optax.adam(1e-2), optax.rmsprop(1e-2)):
        with pytest.raises(CompileError, match=r"needs field=64.*test_rings.py"):
            spu.jit(train(opt), field=32)(w0)
        np.testing.assert_allclose(spu.jit(train(opt))(w0), jax.jit(train(opt))(w0), atol=2e-4)
    sgd = train(optax.sgd(0.1, momentum=0.9))
    np.testing.assert_allclose(spu.jit(sgd, field=32)(w0), jax.jit(sgd)(w0), atol=2e-2)
    ema = lambda a: jax.lax.scan(lambda c, r: (0.9 * c + 0.1 * r, c), jnp.zeros(4), a)[0]
    np.testing.assert_allclose(spu.jit(ema, field=32)(x), ema(x), atol=1e-2)
