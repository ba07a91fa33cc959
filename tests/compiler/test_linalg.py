"""Small dense linear algebra (compiler/lower/rules_linalg.py): the rules' jnp bodies
agree with LAPACK (same pivots, same permutation), the secure results with plaintext
JAX within the documented condition-number scaling, and the failures JAX reports as
NaN (not positive definite, singular) are `spu.check` domain findings."""
import numpy as np
import jax
import jax.numpy as jnp
import jax.scipy.linalg as sl
import pytest

import spu_lite as spu
from spu_lite.compiler.lower.rules_linalg import (_cholesky_lower, _lu, _pivots_to_permutation,
                                                  _triangular_solve)


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 4, 4), (3, 5), (5, 3)])
def test_lu_body_matches_lapack_pivots_and_permutation(shape):
    a = np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)
    a[..., 1:, 0] = a[..., :1, 0] if shape[-2] > 1 else a[..., 1:, 0]   # ties: first wins
    want, got = jax.lax.linalg.lu(a), _lu(a)
    assert np.allclose(got[0], want[0], atol=1e-5)
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])
    m = shape[-2]
    assert np.array_equal(_pivots_to_permutation(got[1], m),
                          jax.lax.linalg.lu_pivots_to_permutation(want[1], m))


def test_cholesky_and_triangular_bodies_match_jax():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(2, 5, 7)).astype(np.float32)
    a = m @ np.swapaxes(m, -1, -2) + np.eye(5, dtype=np.float32)
    assert np.allclose(_cholesky_lower(a), jnp.linalg.cholesky(a), atol=1e-5)
    low = np.linalg.cholesky(a)
    b = rng.normal(size=(2, 5, 3)).astype(np.float32)
    for left in (True, False):
        for lower in (True, False):
            for trans in (True, False):
                for unit in (False, True):
                    A = low if lower else np.swapaxes(low, -1, -2)
                    B = b if left else np.swapaxes(b, -1, -2)
                    kw = dict(left_side=left, lower=lower, transpose_a=trans, unit_diagonal=unit)
                    assert np.allclose(_triangular_solve(A, B, **kw),
                                       jax.lax.linalg.triangular_solve(A, B, **kw),
                                       rtol=1e-4, atol=1e-4), kw


def _conditioned(rng, n, cond):
    q1, _ = np.linalg.qr(rng.normal(size=(n, n)))
    q2, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q1 @ np.diag(2 * np.geomspace(1, 1 / cond, n)) @ q2


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_solve_error_scales_with_the_condition_number(protocol):
    """Documented: relative error about cond(A) x 1.5e-6 (median), worst seen
    cond x 4.2e-6 (2^-18 rounding amplified). Inside: cond 10 and 100 within
    cond x 1e-5; outside: at cond 10^4 the error is real (> 1e-3)."""
    rng = np.random.default_rng(1)
    f = spu.jit(jnp.linalg.solve, protocol=protocol)
    for cond in (10, 100, 10_000):
        a, b = _conditioned(rng, 8, cond), rng.normal(size=8)
        want = np.linalg.solve(a, b)
        err = np.linalg.norm(np.asarray(f(a, b), np.float64) - want) / np.linalg.norm(want)
        if cond <= 100:
            assert err < cond * 1e-5, (cond, err)
        else:
            assert 1e-3 < err < cond * 1e-5, (cond, err)


def test_closed_form_ridge_regression_as_users_write_it():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=60)

    def ridge_solve(X, y):
        return jnp.linalg.solve(X.T @ X + 0.1 * jnp.eye(5), X.T @ y)

    def ridge_cho(X, y):
        return sl.cho_solve(sl.cho_factor(X.T @ X + 0.1 * jnp.eye(5)), X.T @ y)
    for fn in (ridge_solve, ridge_cho):      # X^T X ~ 60: its pivots' reciprocals have
        got, want = spu.jit(fn)(X, y), fn(X, y)   # ~12 significant bits (documented)
        assert np.allclose(got, want, rtol=1e-3, atol=1e-4), (fn.__name__, got - want)
        assert spu.check(fn, X, y).ok


def test_not_positive_definite_and_singular_are_domain_findings():
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])                    # eigenvalues 3 and -1
    report = spu.check(jnp.linalg.cholesky, bad)
    assert ("domain", "rsqrt") in [(f.kind, f.op) for f in report.findings], str(report)
    # singular: the last pivot is one ulp, not 0, so no op sees a value outside its
    # domain; float JAX's inf says so, and check reports it for the output
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    report = spu.check(jnp.linalg.inv, singular)
    assert [(f.kind, f.op, f.count) for f in report.findings] == [("domain", "out[0]", 4)]
    assert not report.ok and "singular" in str(report)


def test_solve_with_large_pivots_keeps_relative_precision():
    """Pivots of ~1e6 (unscaled normal equations): 1/pivot at f bits was 0.26 ulp, so
    the substitution returned 0 and LU's column a few ulps; now quotients by the pivot
    keep a's bits, and a triangular solve shares one recip_parts of its diagonal."""
    rng = np.random.default_rng(7)
    a = np.diag(rng.uniform(1e6, 3e6, 4)) + rng.uniform(-1e4, 1e4, (4, 4))
    x = rng.uniform(-2, 2, 4)
    b = a @ x
    got = np.asarray(spu.jit(jnp.linalg.solve, protocol="ref2k")(a, b), np.float64)
    np.testing.assert_allclose(got, np.linalg.solve(a, b), rtol=1e-3, atol=1e-4)
    text = spu.jit(jnp.linalg.solve).lower(a, b).text
    assert text.count("recip_parts(") == 4 and "reciprocal(" not in text  # 3 pivots + U
