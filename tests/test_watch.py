"""spu.jit's fixed-point watch: in-process, a call whose values overflow or leave an
approximation's domain warns (spu.FixedPointWarning) at the user's call, naming the
line of the op; a clean call and a where-masked bad lane do not."""
import inspect
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu

HERE = os.path.basename(__file__)


def squares(x):
    return x * x                                  # MARK square


def safe_log(x):
    return jnp.where(x > 0, jnp.log(x), 0.0)


def _line(fn, mark):
    src, start = inspect.getsourcelines(fn)
    return f"{HERE}:{start + next(i for i, s in enumerate(src) if f'MARK {mark}' in s)}"


def _call(f, *args):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = f(*args)
    return out, [m for m in w if issubclass(m.category, spu.FixedPointWarning)]


BIG = np.array([2e4, 1.0, 3.0])        # 2e4^2 = 4e8: past the product range 2^26
SMALL = np.array([2.0, 1.0, 3.0])


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_an_overflow_warns_at_the_call_naming_the_line(protocol):
    out, w = _call(spu.jit(squares, protocol=protocol), BIG)
    assert len(w) == 1
    msg = str(w[0].message)
    assert "overflow" in msg and _line(squares, "square") in msg and "spu.check" in msg
    assert w[0].filename == __file__               # points at the caller, not spu-lite
    assert abs(out[0] - 4e8) > 1e6                 # and the number it warns about is wrong


def test_clean_calls_and_masked_lanes_do_not_warn():
    _, w = _call(spu.jit(squares), SMALL)
    assert w == []
    out, w = _call(spu.jit(safe_log), np.array([2.0, 0.0, -1.0]))
    assert w == []
    np.testing.assert_allclose(out, [np.log(2.0), 0, 0], atol=1e-4)


def test_auto_watches_doubling_calls_and_growing_inputs():
    """The default: calls 1, 2, 4, 8, ... and any call whose input outgrew (2x) the
    largest seen in a watched call -- a loop that diverges is caught when it does."""
    f = spu.jit(squares)
    assert len(_call(f, BIG)[1]) == 1             # call 1
    assert len(_call(f, BIG)[1]) == 1             # call 2
    assert _call(f, BIG)[1] == []                 # call 3: same program, same sizes
    assert len(_call(f, BIG)[1]) == 1             # call 4
    g = spu.jit(squares)
    assert [len(_call(g, SMALL)[1]) for _ in range(3)] == [0, 0, 0]
    assert len(_call(g, np.array([2e3, 1.0, 3.0]))[1]) == 0    # call 4, grown: clean
    assert len(_call(g, np.array([3.9e3, 1.0, 3.0]))[1]) == 0  # < 2x the envelope: not run
    assert len(_call(g, BIG)[1]) == 1             # call 6: 10x the envelope, watched
    assert len(_call(g, np.array([2e4, 1.0]))[1]) == 1     # a new shape compiles again


def test_diverging_training_loop_warns_when_it_diverges():
    """Gradient descent with too large a step on raw features: right at first, then the
    weights grow past the product range. The first wrong step warns (with "first",
    only call 1 was watched, and it was clean)."""
    r = np.random.default_rng(0)
    x = r.uniform(20, 300, size=(64, 3)).astype(np.float32)
    y = x @ np.array([0.5, -1.0, 2.0], np.float32)

    def step(w, x, y):
        return w - 1e-4 * (x.T @ (x @ w - y) / x.shape[0])

    f, w, warned, wrong = spu.jit(step), np.zeros(3, np.float32), [], []
    for i in range(8):
        want = step(w.astype(np.float64), x, y)
        w, ws = _call(f, w, x, y)
        w = np.asarray(w)
        warned += [i] * bool(ws)
        wrong += [i] * bool(np.abs(w - want).max() > 1e-2 * np.abs(want).max())
    assert wrong and warned and warned[0] <= wrong[0]       # measured: both at step 2


def test_modes_first_always_never(monkeypatch):
    f = spu.jit(squares, check="first")           # the first call of each program
    assert len(_call(f, BIG)[1]) == 1
    assert _call(f, BIG)[1] == []                 # same program: not watched again
    assert len(_call(f, np.array([2e4, 1.0]))[1]) == 1     # a new shape compiles again
    g = spu.jit(squares, check=True)
    assert len(_call(g, SMALL)[1]) == 0 and len(_call(g, BIG)[1]) == 1   # every call
    assert _call(spu.jit(squares, check=False), BIG)[1] == []
    monkeypatch.setenv("SPU_LITE_CHECK", "off")
    assert _call(spu.jit(squares), BIG)[1] == []
    monkeypatch.setenv("SPU_LITE_CHECK", "on")
    h = spu.jit(squares)
    assert len(_call(h, SMALL)[1]) == 0 and len(_call(h, BIG)[1]) == 1
    with pytest.raises(ValueError, match="check="):
        spu.jit(squares, check="sometimes")
    monkeypatch.setenv("SPU_LITE_CHECK", "maybe")
    with pytest.raises(ValueError, match="SPU_LITE_CHECK"):
        spu.jit(squares)


def test_kept_secrets_are_not_watched():
    """A Secret's plaintext is not in the caller's hands: nothing to watch with."""
    s = spu.jit(lambda x: x, keep_secret=True)(BIG)
    out, w = _call(spu.jit(squares), s)
    assert w == []


def nan_sentinel(x):
    return jnp.where(x > 0, x, jnp.nan)                 # MARK nan


def test_a_nan_constant_that_reaches_a_result_warns():
    """Fixed point has no NaN: the constant is 0 in the ring. Where a lane of it comes
    back, the call warns; library code that keeps NaN in a branch it never takes
    (jnp.nanmean, jnp.var with ddof) does not."""
    x = np.array([1.0, -1.0, 2.0])
    out, w = _call(spu.jit(nan_sentinel), x)
    assert len(w) == 1 and _line(nan_sentinel, "nan") in str(w[0].message)
    assert "NaN" in str(w[0].message) and out[1] == 0.0
    for fn in (jnp.nanmean, lambda a: jnp.var(a, ddof=1), lambda a: jnp.where(a > -5, a, jnp.nan)):
        assert _call(spu.jit(fn), x)[1] == []


def scaled_ratio(x, k):
    return x / (x.sum() * k)                            # MARK ratio


def logistic_map(v):
    return jax.lax.fori_loop(0, 60, lambda i, v: 3.9 * v * (1 - v), v)


def test_an_output_off_float_jax_warns_naming_it():
    """No overflow, no domain, and still wrong: a divisor computed at a few ulps
    (x.sum() * 1e-3 = 4e-6, one ulp at 18 bits) brings its rounding into the quotient.
    The watch compares with float JAX and warns (ToleranceWarning), naming the output
    and the line; a divisor of 4e-2 (1e4 ulps) is right and does not warn."""
    x = np.array([1e-3, 2e-3, 1e-3])
    f = lambda x, k: {"ratio": scaled_ratio(x, k)}
    for k, wrong in ((1e-3, True), (1e-2, True), (10.0, False)):
        out, w = _call(spu.jit(f, static_argnums=1), x, k)
        err = np.abs(np.asarray(out["ratio"]) - x / (x.sum() * k)).max() / (0.5 / k)
        assert (err > 1e-2) == wrong, (k, err)       # 4.7% / 4.8% off, 2.4e-4 off
        assert len(w) == wrong and all(issubclass(m.category, spu.ToleranceWarning) for m in w)
    msg = str(_call(spu.jit(f, static_argnums=1), x, 1e-3)[1][0].message)
    assert "output['ratio']" in msg and _line(scaled_ratio, "ratio") in msg
    assert "float JAX 500" in msg


def test_no_tolerance_warning_where_float_jax_moves_as_much():
    """60 steps of a chaotic map: fixed point ends far from float JAX, but float JAX
    itself ends as far from itself when its inputs move by an ulp (the watch runs it
    twice so): rounding explains the difference, nothing is wrong with the program."""
    x = np.linspace(0.2, 0.8, 16)
    out, w = _call(spu.jit(logistic_map), x)
    assert w == []
    assert np.abs(np.asarray(out) - logistic_map(x)).max() > 0.1
    assert issubclass(spu.ToleranceWarning, spu.FixedPointWarning)


def test_nan_or_inf_in_float_jax_warns():
    """A singular matrix: float JAX's inverse is inf, fixed point's last pivot is an
    ulp and its inverse finite garbage (no op left its domain, so only the comparison
    sees it)."""
    out, w = _call(spu.jit(jnp.linalg.inv), np.array([[1.0, 2.0], [2.0, 4.0]]))
    assert len(w) == 1 and "4 element(s) are nan/inf in float JAX" in str(w[0].message)
    assert np.all(np.isfinite(np.asarray(out)))


def test_float32_jax_coarser_than_fixed_point_does_not_warn():
    """sin near the edge of its domain (|x| up to 1.6e6): float32 holds x to 0.06, so
    float32 JAX's sin is 0.04 off float64's, while fixed point holds x to 2^-18 and is
    within 3 ulps. The watch, off from float32 JAX, traces the function again in
    float64 and compares with that: no warning."""
    from spu_lite.compiler.ir.nonlinear import BY_OP
    lim = BY_OP["sin"].domain[1]
    x = np.round(np.linspace(-lim, lim, 301) * 2 ** 18) / 2 ** 18
    assert np.abs(np.asarray(jnp.sin(x)) - np.sin(x)).max() > 1e-2
    out, w = _call(spu.jit(jnp.sin), x)
    assert w == []
    assert np.abs(np.asarray(out, np.float64) - np.sin(x)).max() < 3 * 2.0 ** -18


KEY = jax.random.key(0)


def test_a_program_with_a_key_baked_in_is_compared_too():
    """A PRNG key closed over (an nnx Rngs stream, a dropout mask) is a constant of the
    traced function: the float reference runs with it (keys were skipped)."""
    x = np.array([1e-3, 2e-3, 1e-3])
    noisy = lambda x: scaled_ratio(x, 1e-3) + 0.0 * jax.random.normal(KEY, x.shape)
    assert len(_call(spu.jit(noisy), x)[1]) == 1


def logistic_gradient(X, y):
    w = jnp.full(X.shape[1], 0.1)
    return jax.grad(lambda w: jnp.mean((jax.nn.sigmoid(X @ w) - y) ** 2))(w)


def test_a_32_bit_gradient_a_third_off_warns():
    """A 32-bit ring keeps 9 fractional bits: this gradient (largest entry 0.065) comes
    back ~12 ulps = 0.024 off, a third of its scale. 64 ulps (0.125 at 9 bits) would
    have let that pass; the watch's ulps part is capped at 2% of the output's scale.
    At 18 bits the same 12 ulps are 5e-5 (0.07%): no warning."""
    r = np.random.default_rng(0)
    X = r.normal(size=(64, 8)).astype(np.float32)
    y = (r.random(64) > 0.5).astype(np.float32)
    want = np.asarray(logistic_gradient(X, y))
    for field, wrong in ((32, True), (64, False)):
        out, w = _call(spu.jit(logistic_gradient, protocol="ref2k", field=field), X, y)
        err = np.abs(np.asarray(out) - want).max() / np.abs(want).max()
        assert (err > 0.1) == wrong, (field, err)
        assert len(w) == wrong and all(issubclass(m.category, spu.ToleranceWarning) for m in w)


def test_the_watch_tolerance_in_ulps_and_of_the_scale():
    """max(2 ulps, min(64 ulps, 2% of the output's scale), 0.1% of it): 64 ulps where
    they are small against the output (18 bits), 2% where they are not (9 bits)."""
    from spu_lite.tools.float_reference import watch_atol
    u18, u9 = 2.0 ** -18, 2.0 ** -9
    assert watch_atol(u18, 0.1) == 64 * u18                 # 2.4e-4
    assert watch_atol(u9, 1.0) == 0.02                      # not 0.125
    assert watch_atol(u9, 0.05) == 2 * u9                   # 2% would be half an ulp
    assert watch_atol(u18, 1e3) == 1.0                      # 0.1% of a large output
