"""Per-value fixed-point formats: exp's finer result, finer input formats for inputs
read only by log/log1p/sqrt/rsqrt (compiler/lower/input_formats.py), and how they meet
the rest of the program (products back at fxp_bits, handles keep their scale)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler.ir import parse_program, print_program


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


# exp's 26-bit result read by every kind of op (ref2k runs the same fixed-point code)
_X = np.linspace(-3, 2, 12).reshape(3, 4)
_Y = np.linspace(0.5, 2, 12).reshape(3, 4)
E = jnp.exp
READERS = {
 "add": lambda a, b: E(a) + b, "radd": lambda a, b: b + E(a), "sub": lambda a, b: b - E(a),
 "mul": lambda a, b: E(a) * b, "div": lambda a, b: E(a) / b, "rdiv": lambda a, b: b / E(a),
 "max": lambda a, b: jnp.maximum(E(a), b), "min": lambda a, b: jnp.minimum(b, E(a)),
 "where": lambda a, b: jnp.where(a > 0, E(a), b), "where2": lambda a, b: jnp.where(a > 0, b, E(a)),
 "clip": lambda a, b: jnp.clip(E(a), 0.5, 2.0), "concat": lambda a, b: jnp.concatenate([E(a), b]),
 "stack": lambda a, b: jnp.stack([b, E(a)]), "dot": lambda a, b: E(a) @ b.T, "rdot": lambda a, b: b.T @ E(a),
 "ipow": lambda a, b: E(a) ** 3, "abs": lambda a, b: jnp.abs(-E(a)), "sign": lambda a, b: jnp.sign(E(a) - 1),
 "cumsum": lambda a, b: jnp.cumsum(E(a), axis=1), "mean": lambda a, b: jnp.mean(E(a)), "var": lambda a, b: jnp.var(E(a)),
 "floor": lambda a, b: jnp.floor(E(a)), "round": lambda a, b: jnp.round(E(a)), "int": lambda a, b: E(a).astype(jnp.int32),
 "lt": lambda a, b: E(a) < b, "eq": lambda a, b: E(a) == b, "norm": lambda a, b: jnp.linalg.norm(E(a)),
 "softplus": lambda a, b: jax.nn.softplus(a), "logsumexp": lambda a, b: jax.nn.logsumexp(a),
 "sqrt": lambda a, b: jnp.sqrt(E(a)), "rsqrt": lambda a, b: jax.lax.rsqrt(E(a)), "log": lambda a, b: jnp.log(E(a)),
 "tanh": lambda a, b: jnp.tanh(E(a)), "sigmoid": lambda a, b: jax.nn.sigmoid(E(a)), "exp_exp": lambda a, b: jnp.exp(E(a) - 3),
 "dus": lambda a, b: jax.lax.dynamic_update_slice(b, E(a)[:1], (1, 0)), "dus2": lambda a, b: jax.lax.dynamic_update_slice(E(a), b[:1], (1, 0)),
 "scan": lambda a, b: jax.lax.fori_loop(0, 2, lambda i, v: v * 0.5 + E(a), b),
 "scan2": lambda a, b: jax.lax.fori_loop(0, 2, lambda i, v: E(v * 0.1), a),
 "cond": lambda a, b: jax.lax.cond(True, lambda: E(a), lambda: b),
 "scond": lambda a, b: jax.lax.cond(a.sum() > 0, lambda: E(a), lambda: b),
 "reduce_max": lambda a, b: jnp.max(E(a), axis=0), "argmax": lambda a, b: jnp.argmax(E(a), axis=1),
 "expm1": lambda a, b: jnp.expm1(a), "exp2": lambda a, b: jnp.exp2(a), "pow": lambda a, b: b ** a,
 "gather": lambda a, b: E(a)[jnp.array([0, 2])], "scatter": lambda a, b: b.at[0].add(E(a)[1]),
 "sum_mixed": lambda a, b: (E(a) + b).sum(), "transpose": lambda a, b: E(a).T @ b,
 "pad": lambda a, b: jnp.pad(E(a), 1), "select_n": lambda a, b: jax.lax.select_n(a > 0, b, E(a)),
}


@pytest.mark.parametrize("name", list(READERS))
def test_every_reader_of_a_finer_value(name):
    fn = READERS[name]
    got, want = spu.jit(fn, protocol="ref2k")(_X, _Y), jax.jit(fn)(_X, _Y)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   atol=2e-3, rtol=2e-3)


# -- truncation placement and products by public constants ---------------------------
# (compiler/passes/truncation.py, compiler/lower/fixed_point.py, docs/fixed-point.md)

BIG = np.random.default_rng(7).uniform(0, 3000, 1000)     # sum of squares 3.1e9 > 2^27


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_sums_of_squares_past_the_product_range(protocol):
    """Squares are truncated before they are summed, so the accumulator has the value
    range (2^45), not the product range (2^27): these wrapped to 1.8e8 and -5e4."""
    f = spu.jit(lambda v: (jnp.sum(v * v), jnp.var(v), jnp.linalg.norm(v)), protocol=protocol)
    ss, var, norm = (np.float64(np.asarray(r)) for r in f(BIG))
    assert abs(ss / np.sum(BIG ** 2) - 1) < 1e-6
    assert abs(var / np.var(BIG) - 1) < 1e-4     # 1/n keeps 14 bits at f + 6 (2^-15)
    assert abs(norm / np.linalg.norm(BIG) - 1) < 1e-5


def test_square_truncations_share_one_round():
    """Truncating before the sum costs no round: the truncations of one step batch."""
    f = spu.jit(lambda a, b: (jnp.sum(a * a), jnp.sum(b * b)), protocol="aby3")
    text = f.lower(BIG, BIG).text
    assert text.index("trunc(") < text.index("reduce_sum(")      # truncated, then summed
    f(BIG, BIG)
    both = spu.profile().total.rounds
    spu.jit(lambda a: jnp.sum(a * a), protocol="aby3")(BIG)
    assert both == spu.profile().total.rounds        # two squares: the rounds of one


@pytest.mark.parametrize("n", [3, 100, 10 ** 4, 10 ** 5])
@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_mean_is_exact_to_ulps_at_any_length(n, protocol):
    """1/n at 18 bits made mean(ones(10^4)) 0.9918 and mean(ones(10^5)) 1.144. The bound
    (fixed_point.py): 2 ulps + |mean| 2^-19; 100 (times 2^-19) plus 2^-17 here."""
    x = np.random.default_rng(n).uniform(99, 101, n)
    got = float(np.asarray(spu.jit(jnp.mean, protocol=protocol)(x)))
    assert abs(got - x.mean()) <= 2 * 2.0 ** -18 + x.mean() * 2.0 ** -19 + 1e-9
    assert float(np.asarray(spu.jit(jnp.mean, protocol=protocol)(np.ones(n)))) == \
        pytest.approx(1.0, abs=3 * 2.0 ** -18)


def test_division_by_a_large_count_truncates_first():
    """x / n for n >= 128: trunc(x, p) * (1/n at f + p bits), so the dividend (a sum)
    may exceed the product range; a small n stays one product by 1/n."""
    big = spu.jit(jnp.mean).lower(np.ones(10 ** 4)).text
    assert "trunc(%1) {bits=13}" in big and "fxp<64,31>" in big   # p = e = 13
    small = spu.jit(jnp.mean).lower(np.ones(3)).text
    assert small.count("trunc(") == 1
    x = np.full(4096, 1.5e6)                               # sum 6.1e9 >> 2^27
    np.testing.assert_allclose(spu.jit(jnp.mean, protocol="aby3")(x), 1.5e6, rtol=1e-5)


def test_small_constants_keep_their_relative_precision():
    """x * 1e-4 encodes 1e-4 with 18 significant bits (at 18 fractional bits it is
    26/2^18, 0.8% off)."""
    x = np.array([1.0, 123.0, -5000.0, 1e5])
    got = np.asarray(spu.jit(lambda v: v * 1e-4, protocol="semi2k")(x), np.float64)
    np.testing.assert_allclose(got, x * 1e-4, rtol=1e-5, atol=2 * 2.0 ** -18)
    assert "fxp<64,31>" in spu.jit(lambda v: v * 1e-4).lower(x).text


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_mean_and_var_of_a_million_values(protocol):
    x = np.random.default_rng(3).normal(100.0, 2.0, 10 ** 6)
    mean, var = spu.jit(lambda v: (jnp.mean(v), jnp.var(v)), protocol=protocol)(x)
    assert abs(float(mean) - x.mean()) < 1e-4
    assert abs(float(var) / x.var() - 1) < 1e-3


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_layernorm_of_small_deviations(protocol):
    """Inputs with std 1e-2 around 0.3: the squares (1e-4) are summed at f + 6 bits and
    the variance stays there into rsqrt; eps = 1e-6 is encoded at that scale (at 18
    bits it was 0). The default fast variance: the test below."""
    import flax.linen as nn
    x = np.random.default_rng(0).normal(0.3, 1e-2, (8, 256))
    ln = nn.LayerNorm(use_fast_variance=False)
    p = ln.init(jax.random.PRNGKey(0), x)
    f = lambda p, x: (ln.apply(p, x), jnp.var(x, axis=-1))
    (y, var), (y0, var0) = spu.jit(f, protocol=protocol)(p, x), f(p, x)
    y, var = np.asarray(y, np.float64), np.asarray(var, np.float64)
    assert np.abs(y - y0).max() < 1e-3 * np.abs(y0).max()
    assert np.abs(var / var0 - 1).max() < 1e-3
    assert "fxp<64,24>" in spu.jit(f).lower(p, x).text


def _layernorm64(x):
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + 1e-6)


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
@pytest.mark.parametrize("mean", [0.0, 0.3, 3.0])
def test_default_layernorm_of_small_deviations_far_from_zero(protocol, mean):
    """flax's default LayerNorm (fast variance E[x^2] - E[x]^2) on inputs with std 1e-2
    around 0, 0.3 and 3: the pair lowers to E[(x - E[x])^2] (compiler/lower/variance.py),
    so E[x]'s rounding does not cancel against E[x^2] (0.3: 2e-2 -> 3e-4). Against
    float64: at 3 +- 0.01 float32 JAX itself is 1.5e-2 off."""
    import flax.linen as nn
    x = np.random.default_rng(1).normal(mean, 1e-2, (8, 64)).astype(np.float32)
    ln = nn.LayerNorm()
    p = ln.init(jax.random.PRNGKey(0), x)
    y, y0 = np.asarray(spu.jit(ln.apply, protocol=protocol)(p, x)), _layernorm64(x.astype(np.float64))
    assert np.abs(y - y0).max() < 1e-3 * np.abs(y0).max()


def test_fast_variance_lowers_to_two_passes():
    """E[x^2] - E[x]^2 (keepdims or not, hand-written or flax's) becomes E[(x - E[x])^2]:
    no product of the mean by itself is left in the IR; over different axes it stays
    as written (and is still right for values around 0)."""
    x = np.random.default_rng(2).normal(0.3, 1e-2, (6, 32))

    def fast(v):
        return jnp.mean(v ** 2, axis=-1, keepdims=True) - jnp.mean(v, axis=-1, keepdims=True) ** 2
    got = np.asarray(spu.jit(fast)(x), np.float64)
    want = x.var(axis=-1, keepdims=True)
    assert np.abs(got / want - 1).max() < 1e-3
    text = spu.jit(fast).lower(x).text
    assert text.count("reduce_sum(") == 2 and "sub(%0, " in text
    mixed = lambda v: jnp.mean(v * v, axis=1) - jnp.mean(v, axis=0)[:6] ** 2
    z = np.random.default_rng(3).normal(0.0, 1.0, (6, 32))
    assert np.allclose(np.asarray(spu.jit(mixed)(z)), mixed(z), atol=1e-3)


def test_moment_formats_are_visible_in_the_ir():
    """Adam's moments, their square root and the quotient carry their formats in the
    IR text: the square enters exactly (2f bits, lshifted), sqrt returns 30 bits, the
    quotient is rsqrt(d)^2."""
    import optax
    opt = optax.adam(1e-3)

    def step(g):
        u, _ = opt.update(g, opt.init(g))
        return u
    text = spu.jit(step).lower(np.ones(3)).text
    assert "secret<fxp<64,44>>" in text                 # the second moment
    assert "sqrt(" in text and "{frac=30}" in text
    assert "rsqrt(" in text and "{frac=17}" in text
    assert print_program(parse_program(text)) == text


def test_variance_range_is_pinned():
    """jnp.var keeps f + 6 bits through its division, so its result must stay below
    2^21 (docs/fixed-point.md): 9.5e5 is right; between 2^21 and 2^22 the truncation
    wraps now and then (4e6: one run in two), from 2^22 on always (9e6; spu.check
    reports it)."""
    f = spu.jit(jnp.var, protocol="aby3")
    inside = np.random.default_rng(0).normal(0, 1000, 1000)
    assert abs(float(f(inside)) / inside.var() - 1) < 1e-4
    outside = np.random.default_rng(0).normal(0, 3000, 1000)
    assert abs(float(f(outside)) / outside.var() - 1) > 0.5


def test_small_n_variance_past_its_range_is_reported():
    """For n < 64 the variance range is smaller than before truncation-before-sums
    (n * var < 2^27: n = 10 allowed var up to 1.3e7); now var < 2^21 for every n.
    Just inside (1e6) it is right and spu.check is clean; past it (5e6) it wraps and
    spu.check reports the overflow."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=10)
    z = (z - z.mean()) / z.std()
    inside, outside = z * 1000.0, z * np.sqrt(5e6)
    assert abs(float(spu.jit(jnp.var, protocol="ref2k")(inside)) / inside.var() - 1) < 1e-4
    assert spu.check(jnp.var, inside).ok
    assert abs(float(spu.jit(jnp.var, protocol="ref2k")(outside)) / outside.var() - 1) > 0.5
    assert [f.kind for f in spu.check(jnp.var, outside).findings] == ["overflow"]


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_a_product_plus_a_large_value_keeps_the_large_value(protocol):
    """The truncation of x * y used to move past `+ z`, lifting z to the product's doubled
    scale (range 2^26): x * y + 3e8 came out 3.2e7. z = 3e8 .. 1e12 is well inside the
    input range (2^44); a small public constant still rides along with the product."""
    x = np.array([0.5, 2.0, -3.0], np.float32)
    z = np.array([3e8, 1e10, -1e12], np.float32)
    got = spu.jit(lambda a, b, c: a * b + c, protocol=protocol)(x, x, z)
    np.testing.assert_allclose(got, x * x + z, rtol=1e-6)
    got = spu.jit(lambda a, w: a @ w + 3e8, protocol=protocol)(x, np.ones((3, 2), np.float32))
    np.testing.assert_allclose(got, x.sum() + 3e8, rtol=1e-6)
    text = spu.compile(lambda a, b: a * b + 0.5, x, x, protocol="ref2k").text
    assert text.count("trunc") == 1 and "lshift" in text        # 0.5 lifted, one truncation


MEETS = {
    "add": lambda e, z: e + z, "where": lambda e, z: jnp.where(e > 1, e, z),
    "max": lambda e, z: jnp.maximum(e, z), "less": lambda e, z: e < z,
    "concat": lambda e, z: jnp.concatenate([e, z]), "stack": lambda e, z: jnp.stack([z, e]),
    "dus": lambda e, z: jax.lax.dynamic_update_slice(z, e[:1], (1,)),
    "scatter": lambda e, z: jnp.asarray(z).at[0].set(e[1]),
}


@pytest.mark.parametrize("name", sorted(MEETS))
def test_a_finer_value_meeting_a_large_one_does_not_lift_it(name):
    """exp's 26-bit result (or a variance at 24 bits) meeting a large 18-bit value: the
    large one was lifted to the finer scale, range 2^36 (2^38), and 1e12 wrapped with no
    error. Now they meet at the coarser scale; a constant is still re-encoded finer."""
    x = np.array([0.5, 2.0, -3.0], np.float32)
    z = np.array([3e8, 1e11, -1e12], np.float32)
    for fine in (jnp.exp, lambda a: jnp.var(a) + a * 0):
        fn = lambda a, c: MEETS[name](fine(a), c)
        got = np.asarray(spu.jit(fn, protocol="ref2k")(x, z), np.float64)
        np.testing.assert_allclose(got, np.asarray(fn(x, z), np.float64), rtol=1e-6, atol=1e-3)
    text = spu.compile(lambda a: jnp.exp(a) + 1.0, x, protocol="ref2k").text
    assert "fxp<64,26>" in text.split("return")[0].splitlines()[-2]   # exp + constant stays fine


def _lost_constant_warnings(fn, *args):
    import warnings
    from spu_lite.compiler.lower.lost_constants import LostConstantWarning
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        spu.jit(fn, protocol="ref2k", check=False).lower(*args)
    return [str(w.message) for w in ws if issubclass(w.category, LostConstantWarning)]


def prodigy_steps(p, g):
    import optax
    opt = optax.contrib.prodigy()
    state = opt.init(p)                                 # d0 = 1e-6: 0 at 18 bits
    for _ in range(2):
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
    return p


def test_a_constant_that_reads_zero_where_its_value_is_used_warns_at_its_line():
    """prodigy's d0 (and a `where` branch of 1e-8) read 0 at 18 bits: warned when
    compiling, as a spu.FixedPointWarning naming the line that reads it; prodigy's
    steps came out -1 where float JAX's were -3e-6."""
    import inspect
    p, g = {"w": np.ones(3, np.float32)}, {"w": np.full(3, 0.1, np.float32)}
    got = _lost_constant_warnings(prodigy_steps, p, g)
    line = inspect.getsourcelines(prodigy_steps)[1] + 5       # where the update reads it
    assert len(got) == 1 and f"test_formats.py:{line}" in got[0] and "1e-06 reads 0" in got[0]
    assert _lost_constant_warnings(lambda x: jnp.where(x > 0, x, 1e-8), np.ones(3))
    from spu_lite.compiler.lower.lost_constants import LostConstantWarning
    assert issubclass(LostConstantWarning, spu.FixedPointWarning)


@pytest.mark.parametrize("fn", [
    lambda p: jnp.log(p + 1e-8),                                  # eps addends
    lambda p: p / (jnp.abs(p) + jnp.finfo(jnp.float32).eps),
    lambda p: jnp.log(jnp.clip(p, 1e-7, 1 - 1e-7)),               # clamps
    lambda p: p / jnp.maximum(jnp.linalg.norm(p), 1e-12),
    lambda p: (p > 1e-7, jnp.float32(1e-9)),                      # a threshold; a returned constant
    lambda p: p * 1e-7,                                           # a product keeps its bits
    lambda p: jax.lax.fori_loop(0, 2, lambda i, c: c * 0.5 + 1e-7, p),
], ids=["log_eps", "finfo_eps", "clip", "max_norm", "threshold_returned", "product", "loop_addend"])
def test_harmless_tiny_constants_do_not_warn(fn):
    assert _lost_constant_warnings(fn, np.linspace(0.1, 1, 4).astype(np.float32)) == []


def test_optimizers_of_the_docs_raise_no_lost_constant():
    import optax
    g = {"w": np.full(3, 0.1, np.float32)}
    for opt in (optax.adam(1e-3), optax.adamw(1e-3), optax.rmsprop(1e-3), optax.adagrad(1e-2),
                optax.lion(1e-4), optax.sgd(1e-3, momentum=0.9)):
        def steps(p, g, opt=opt):
            state = opt.init(p)
            updates, state = opt.update(g, state, p)
            return optax.apply_updates(p, updates)
        assert _lost_constant_warnings(steps, {"w": np.ones(3, np.float32)}, g) == []


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_rounding_a_quotient_by_a_public_input_is_exact(protocol):
    """floor / ceil / round / int of x / n with n a public input (not a constant) are
    exact at the rounded x, for either sign of n: the quotient an ulp low made every
    exact multiple one less."""
    x = np.concatenate([np.arange(-40.0, 41.0, 10.0), np.linspace(-47, 47, 9)]).astype(np.float32)
    f = lambda x, n: (jnp.floor(x / n), jnp.ceil(x / n), jnp.round(x / n), jax.lax.round(x / n),
                      (x / n).astype(jnp.int32))
    for n in (np.float32(10.0), np.float32(4.0), np.float32(-2.5),
              np.where(np.arange(18) % 2, 10.0, -4.0).astype(np.float32)):
        got = spu.jit(f, protocol=protocol, check=False)(x, spu.public(n))
        for g, w in zip(got, f(x, n)):
            np.testing.assert_array_equal(g, w)
