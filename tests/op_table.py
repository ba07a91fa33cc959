"""One table of ops drives the op tests for every protocol.

Each case: a JAX function, input makers, and the absolute tolerance against plaintext
JAX (float64 inputs, evaluated by jax in float32). Fixed point with 18 fractional
bits has a resolution of 2^-18 ~ 3.8e-6; each truncation adds at most 1 ulp, so
linear and comparison ops are checked to a few ulp times the size of the sums.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

ULP = 2.0 ** -18


@dataclass
class Case:
    name: str
    fn: Callable
    make: Callable[[np.random.Generator], Sequence[np.ndarray]]
    atol: float = 8 * ULP
    rtol: float = 1e-5
    static_argnums: tuple = ()


def u(*shape, lo=-4.0, hi=4.0):
    return lambda r: r.uniform(lo, hi, shape)


def args(*makers):
    return lambda r: [m(r) for m in makers]


def ints(*shape, lo=-50, hi=50):
    return lambda r: r.integers(lo, hi, shape).astype(np.int32)


def idx_public():  # helper for gather cases that need constant indices
    return np.array([2, 0, 3])


CASES = [
    Case("add", lambda x, y: x + y, args(u(4, 5), u(4, 5))),
    Case("add_broadcast", lambda x, y: x + y, args(u(4, 5), u(5))),
    Case("sub", lambda x, y: x - y, args(u(4, 5), u(4, 5))),
    Case("neg", lambda x: -x, args(u(7))),
    Case("mul", lambda x, y: x * y, args(u(4, 5), u(4, 5))),
    Case("mul_const", lambda x: x * 0.37, args(u(6))),
    Case("mul_int_const", lambda x: x * 3.0, args(u(6))),
    Case("square", lambda x: x ** 2, args(u(6))),
    Case("cube", lambda x: x ** 3, args(u(6, lo=-2, hi=2)), atol=64 * ULP),
    Case("div_const", lambda x: x / 4.0, args(u(6))),
    Case("matmul", lambda x, y: x @ y, args(u(8, 16), u(16, 3)), atol=64 * ULP),
    Case("matvec", lambda x, y: x @ y, args(u(8, 16), u(16)), atol=64 * ULP),
    Case("batched_matmul", lambda x, y: jnp.einsum("bij,bjk->bik", x, y), args(u(2, 3, 4), u(2, 4, 5)), atol=32 * ULP),
    Case("einsum", lambda x, y: jnp.einsum("ij,kj->ik", x, y), args(u(3, 4), u(5, 4)), atol=32 * ULP),
    Case("dense_relu", lambda x, w, b: jnp.maximum(x @ w + b, 0.0), args(u(8, 4), u(4, 3), u(3)), atol=32 * ULP),
    Case("sum", lambda x: x.sum(), args(u(5, 6))),
    Case("sum_axis", lambda x: x.sum(axis=0), args(u(5, 6))),
    Case("mean", lambda x: x.mean(axis=1), args(u(5, 6))),
    Case("max_axis", lambda x: x.max(axis=1), args(u(5, 7))),
    Case("min_all", lambda x: x.min(), args(u(4, 5))),
    Case("argmax", lambda x: jnp.argmax(x, axis=1), args(u(5, 7))),
    Case("argmin", lambda x: jnp.argmin(x, axis=0), args(u(5, 7))),
    Case("maximum", lambda x, y: jnp.maximum(x, y), args(u(9), u(9))),
    Case("minimum", lambda x, y: jnp.minimum(x, y), args(u(9), u(9))),
    Case("relu", jax.nn.relu, args(u(9))),
    Case("abs", jnp.abs, args(u(9))),
    Case("sign", jnp.sign, args(u(9))),
    Case("signbit", jnp.signbit, args(u(9))),               # reads float bits in JAX
    Case("copysign", jnp.copysign, args(u(9), u(9))),
    Case("less", lambda x, y: x < y, args(u(9), u(9))),
    Case("less_equal", lambda x, y: x <= y, args(u(9), u(9))),
    Case("greater", lambda x, y: x > y, args(u(9), u(9))),
    Case("greater_equal", lambda x, y: x >= y, args(u(9), u(9))),
    Case("equal", lambda x, y: x == jnp.round(y), args(lambda r: np.round(r.uniform(-3, 3, 9)), u(9, lo=-3, hi=3))),
    Case("not_equal", lambda x, y: x != y, args(lambda r: np.array([1.0, 2.0, 3.0]), lambda r: np.array([1.0, 0.0, 3.0]))),
    Case("where", lambda c, x, y: jnp.where(c > 0, x, y), args(u(9), u(9), u(9))),
    Case("clip", lambda x: jnp.clip(x, -1.0, 2.0), args(u(9))),
    Case("logical", lambda x, y: jnp.logical_or(x > 0, y > 0) & ~(x > 1), args(u(9), u(9))),
    Case("reshape", lambda x: x.reshape(3, 4).T, args(u(12))),
    Case("transpose", lambda x: jnp.transpose(x, (2, 0, 1)), args(u(2, 3, 4))),
    Case("expand_squeeze", lambda x: jnp.squeeze(jnp.expand_dims(x, 0), 0) + x[None, :, :].sum(0), args(u(3, 4))),
    Case("concat", lambda x, y: jnp.concatenate([x, y], axis=1), args(u(3, 2), u(3, 4))),
    Case("slice", lambda x: x[1:3, ::2], args(u(4, 6))),
    Case("pad", lambda x: jnp.pad(x, ((1, 0), (2, 1))), args(u(3, 3))),
    Case("rev", lambda x: jnp.flip(x, axis=1), args(u(3, 4))),
    Case("gather", lambda x: x[jnp.array([2, 0, 3])], args(u(4, 5))),
    Case("take_axis1", lambda x: jnp.take(x, jnp.array([4, 1]), axis=1), args(u(4, 5))),
    Case("dynamic_index", lambda x: x[2], args(u(4, 5))),
    Case("scatter_add_grad", jax.grad(lambda x: (x[jnp.array([0, 2, 2])] ** 2).sum()), args(u(4, 3)), atol=32 * ULP),
    Case("dynamic_update_slice", lambda x, y: jax.lax.dynamic_update_slice(x, y, (1, 2)), args(u(4, 5), u(2, 2))),
    Case("cumsum", lambda x: jnp.cumsum(x, axis=1), args(u(3, 5))),
    Case("iota_onehot", lambda x: jax.nn.one_hot(jnp.array([1, 0, 3]), 4) * x, args(u(3, 4))),
    Case("int_arith", lambda a, b: a * b + a - (b << 1), args(ints(6), ints(6))),
    Case("int_compare", lambda a, b: jnp.maximum(a, b), args(ints(6), ints(6))),
    Case("int_to_float", lambda a, x: a.astype(jnp.float32) * x, args(ints(6, lo=-5, hi=5), u(6))),
    Case("float_to_int", lambda x: jnp.floor(x).astype(jnp.int32) if False else (x * 0 + 2.0).astype(jnp.int32), args(u(4))),
    Case("grad_mlp", jax.grad(lambda w, x: jnp.sum(jnp.maximum(x @ w, 0.0) ** 2)), args(u(3, 2, lo=-1, hi=1), u(5, 3, lo=-1, hi=1)), atol=256 * ULP),
    Case("nested_jit", lambda x: jax.jit(lambda y: y * 2.0 + 1.0)(x), args(u(5))),
    # small dense linear algebra (compiler/lower/rules_linalg.py)
    Case("cholesky", lambda x: jnp.linalg.cholesky(x @ x.T + jnp.eye(4)), args(u(4, 5, lo=-1, hi=1)),
         atol=64 * ULP),
    Case("solve_triangular", lambda a, b: jax.scipy.linalg.solve_triangular(
        jnp.tril(a) + 4.0 * jnp.eye(4), b, lower=True), args(u(4, 4, lo=-1, hi=1), u(4, 2)),
        atol=64 * ULP),
    Case("solve_triangular_upper_t", lambda a, b: jax.scipy.linalg.solve_triangular(
        jnp.triu(a) + 4.0 * jnp.eye(4), b, lower=False, trans=1),
        args(u(4, 4, lo=-1, hi=1), u(4)), atol=64 * ULP),
    Case("cho_solve_ridge", lambda x, y: jax.scipy.linalg.cho_solve(
        jax.scipy.linalg.cho_factor(x.T @ x + 0.5 * jnp.eye(3)), x.T @ y),
        args(u(12, 3, lo=-1, hi=1), u(12, lo=-1, hi=1)), atol=256 * ULP),
    Case("solve", jnp.linalg.solve, args(lambda r: r.uniform(-1, 1, (4, 4)) + 3 * np.eye(4), u(4, 2)),
         atol=64 * ULP),
    Case("inv_pivoting", jnp.linalg.inv, args(lambda r: r.uniform(-1, 1, (3, 3)) + np.array(
        [[0, 3, 0], [0, 0, 3], [3, 0, 0]])), atol=64 * ULP),       # pivots off the diagonal
    Case("det", jnp.linalg.det, args(u(3, 3, lo=-1, hi=1)), atol=64 * ULP),
    Case("lu_factor_solve", lambda a, b: jax.scipy.linalg.lu_solve(jax.scipy.linalg.lu_factor(a), b),
         args(lambda r: r.uniform(-1, 1, (4, 4)) + 3 * np.eye(4)[::-1], u(4)), atol=64 * ULP),
    Case("tile", lambda x: jnp.tile(x, (2, 1, 3)), args(u(2, 3))),
    Case("searchsorted", lambda x: jnp.searchsorted(jnp.linspace(-2, 2, 9), x), args(u(11, lo=-3, hi=3))),
    Case("digitize", lambda x: jnp.digitize(x, jnp.linspace(-2, 2, 5)), args(u(11, lo=-3, hi=3))),
    Case("interp", lambda x: jnp.interp(x, jnp.linspace(-3, 3, 7), jnp.array([0., 1., 4., 2., 2., 5., 1.])),
         args(u(11, lo=-3.5, hi=3.5)), atol=64 * ULP),
    Case("sinh_cosh", lambda x: (jnp.sinh(x), jnp.cosh(x)), args(u(41, lo=-4, hi=4)), atol=64 * ULP),
    Case("tan", jnp.tan, args(u(41, lo=-1.2, hi=1.2)), atol=64 * ULP, rtol=1e-4),
    Case("arctan", jnp.arctan, args(u(41, lo=-20, hi=20)), atol=16 * ULP),
    Case("arctan2", jnp.arctan2, args(u(41, lo=-10, hi=10), u(41, lo=-10, hi=10)), atol=32 * ULP),
    Case("arcsin_arccos", lambda x: (jnp.arcsin(x), jnp.arccos(x)), args(u(41, lo=-0.99, hi=0.99)),
         atol=32 * ULP),
    Case("erfinv_norm_ppf", lambda x: (jax.scipy.special.erfinv(x), jax.scipy.stats.norm.ppf(0.5 + 0.49 * x)),
         args(u(41, lo=-0.99, hi=0.99)), atol=32 * ULP),
    Case("arcsinh", jnp.arcsinh, args(u(41, lo=-20, hi=20)), atol=64 * ULP),
    Case("arctanh", jnp.arctanh, args(u(41, lo=-0.95, hi=0.95)), atol=64 * ULP),
    Case("cbrt", jnp.cbrt, args(lambda r: np.concatenate([[0.0], r.choice([-1, 1], 40) * r.uniform(0.1, 50, 40)])),
         atol=16 * ULP, rtol=1e-4),
    # control flow
    Case("fori_loop", lambda x: jax.lax.fori_loop(0, 4, lambda i, c: c * 0.5 + i, x), args(u(5))),
    Case("scan", lambda x: jax.lax.scan(lambda c, xi: (c + xi, c * xi), 0.0, x), args(u(6)), atol=32 * ULP),
    Case("while_public", lambda x: jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 1.5), (0, x))[1], args(u(4))),
    Case("cond_public", lambda x: jax.lax.cond(True, lambda a: a + 1.0, lambda a: a * 2.0, x), args(u(4))),
    Case("cond_secret", lambda x: jax.lax.cond(x[0] > 0, lambda a: a + 1.0, lambda a: a * 2.0, x), args(u(4))),
    Case("switch_secret", lambda i, x: jax.lax.switch(i, [lambda a: a, lambda a: -a, lambda a: a * 3.0], x),
         args(lambda r: np.array(1, np.int32), u(4))),
]


def reference(case: Case, inputs):
    """Plaintext JAX result as float64 numpy (on copies: a flax nnx module that draws
    random numbers advances its own counter)."""
    out = case.fn(*[jnp.asarray(x) if isinstance(x, np.ndarray) else jax.tree_util.tree_map(lambda a: a, x)
                    for x in inputs])
    return jax.tree_util.tree_map(lambda o: np.asarray(o, dtype=np.float64), out)
CASES.append(Case("loop_reads_outer_value",
                  lambda x: jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + 1.0, x * 0.5), args(u(4))))
CASES.append(Case("floor_ceil_round", lambda x: (jnp.floor(x), jnp.ceil(x), jnp.round(x)),
                  args(lambda r: np.concatenate([r.uniform(-5, 5, 12), [2.0, -3.0, 0.0, 2.5 + 2 ** -17]]))))
CASES.append(Case("python_sum_from_zero", lambda x: sum([jnp.sum(x * x)], jnp.zeros((), jnp.float32)), args(u(5))))
# Masks beyond the fixed-point range (-inf, float32's lowest) stand for -2^30: exact zeros.
_causal = np.tril(np.ones((5, 5), bool))
CASES.append(Case("softmax_neg_inf_mask", lambda x: jax.nn.softmax(jnp.where(_causal, x, -jnp.inf)),
                  args(u(5, 5))))
CASES.append(Case("softmax_finfo_min_mask",
                  lambda x: jax.nn.softmax(jnp.where(_causal, x, jnp.finfo(jnp.float32).min)), args(u(5, 5))))
# Sorting: a bitonic network on secret keys, stable like jnp.sort.
CASES += [
    Case("sort", lambda x: jnp.sort(x, axis=1), args(u(3, 7))),
    Case("sort_axis0_descending", lambda x: jnp.sort(x, axis=0, descending=True), args(u(5, 3))),
    Case("argsort", lambda x: jnp.argsort(x), args(u(9))),
    Case("top_k", lambda x: jax.lax.top_k(x, 3), args(u(4, 6))),
    Case("median", lambda x: jnp.median(x, axis=-1), args(u(3, 5))),
    Case("sort_ints", lambda i: jnp.sort(i), args(ints(6))),
    Case("sort_length_one", lambda x: jnp.sort(x, axis=1), args(u(3, 1))),
    Case("argsort_ties", lambda i: jnp.argsort(i), args(ints(11, lo=0, hi=3))),
    Case("top_k_ties", lambda i: jax.lax.top_k(i, 4), args(ints(2, 7, lo=0, hi=3))),
    Case("sort_carries_values_stably", lambda k, v: jax.lax.sort((k, v), num_keys=1),
         args(ints(9, lo=0, hi=2), u(9))),
]

# Convolutions (patches . kernel: one dot) and pooling; their gradients are convolutions,
# reduce_window_sum and select_and_scatter_add.
_dn = ("NHWC", "HWIO", "NHWC")
_conv = lambda x, w, **kw: jax.lax.conv_general_dilated(x, w, dimension_numbers=_dn, **kw)
_maxpool = lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
_avgpool = lambda x: jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
CASES += [
    Case("conv2d_same_stride2", lambda x, w: _conv(x, w, window_strides=(2, 2), padding="SAME"),
         args(u(2, 7, 7, 3), u(3, 3, 3, 4)), atol=64 * ULP),
    Case("conv2d_nchw_valid_dilated", lambda x, w: jax.lax.conv_general_dilated(
        x, w, (1, 1), "VALID", rhs_dilation=(2, 1)), args(u(1, 2, 8, 6), u(3, 2, 2, 3)), atol=64 * ULP),
    Case("conv_transpose", lambda x, w: jax.lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=_dn),
         args(u(1, 4, 4, 2), u(3, 3, 2, 3)), atol=64 * ULP),
    Case("conv1d", lambda x, w: jnp.convolve(x, w, mode="same"), args(u(12), u(3)), atol=16 * ULP),
    Case("conv_grads", jax.grad(lambda x, w: jnp.sum(_conv(x, w, window_strides=(2, 2), padding="SAME") ** 2),
                                argnums=(0, 1)), args(u(1, 6, 6, 2, lo=-1, hi=1), u(3, 3, 2, 2, lo=-1, hi=1)),
         atol=256 * ULP),
    Case("max_pool_same", _maxpool, args(u(2, 5, 5, 2))),
    Case("avg_pool", _avgpool, args(u(2, 4, 6, 1))),
    Case("max_pool_grad", jax.grad(lambda x: jnp.sum(_maxpool(x) ** 2)), args(u(1, 5, 5, 2))),
]

# Gathers and scatter-adds at secret indices along one axis: one-hot weighted candidates.
import optax  # noqa: E402

_labels = ints(4, lo=0, hi=10)
CASES += [
    Case("index_at_secret", lambda t, i: t[i], args(u(10, 3), _labels)),
    Case("take_along_axis_secret", lambda x, i: jnp.take_along_axis(x, i[:, None], axis=1),
         args(u(4, 10), _labels)),
    Case("integer_label_cross_entropy", lambda x, i: optax.softmax_cross_entropy_with_integer_labels(x, i).mean(),
         args(u(4, 10), _labels)),
    Case("integer_label_cross_entropy_grad", jax.grad(
        lambda x, i: optax.softmax_cross_entropy_with_integer_labels(x, i).mean()), args(u(4, 10), _labels)),
    Case("scatter_add_at_secret", lambda t, i, v: jnp.asarray(t).at[i].add(v), args(u(10, 3), _labels, u(4, 3))),
]
_pos = lambda v: (lambda r: np.array(v, np.int32))
CASES += [
    Case("index_scalar_secret", lambda x, i: x[i], args(u(5, 3), _pos(2))),
    Case("index_scalar_secret_negative", lambda x, i: x[i], args(u(5, 3), _pos(-1))),
    Case("dynamic_slice_secret_clamped", lambda x, i: jax.lax.dynamic_slice_in_dim(x, i, 2, axis=1),
         args(u(3, 6), _pos(9))),
    Case("dynamic_update_slice_secret", lambda x, i, v: jax.lax.dynamic_update_slice_in_dim(x, v, i, 0),
         args(u(5, 3), _pos(3), u(2, 3))),
    Case("index_scalar_secret_grad", jax.grad(lambda x, i: jnp.sum(x[i] ** 2)), args(u(5, 3), _pos(4))),
]
# Out-of-bounds modes (JAX's, exactly): clip clamps the index, fill reads fill_value.
_oob = _pos([0, 5, 17, -20])
CASES += [
    Case("take_clip_secret", lambda x, i: jnp.take(x, i, axis=1, mode="clip"), args(u(3, 6), _oob)),
    Case("take_clip_secret_grad", jax.grad(lambda x, i: jnp.sum(jnp.take(x, i, axis=1, mode="clip") ** 2)),
         args(u(3, 6), _oob)),
    Case("take_fill_value_secret", lambda x, i: jnp.take(x, i, axis=1, mode="fill", fill_value=-2.5),
         args(u(3, 6), _oob)),
    Case("get_fill_value_constant_indices",
         lambda x: x.at[jnp.array([0, 7, -9])].get(mode="fill", fill_value=-1.0), args(u(4, 3))),
    Case("take_int_default_fill", lambda a: jnp.take(a, jnp.array([1, 9]), axis=0), args(ints(4))),
    Case("pow_by_secret_integers", lambda a, n: (a ** n, jax.grad(lambda t: jnp.sum(t ** n))(a)),
         args(lambda r: np.array([-2.0, -1.5, 0.0, 0.0, 3.0, 0.5, -0.7, 1.2]), _pos([3, 2, 0, 4, -2, 5, 1, -3])),
         atol=64 * ULP, rtol=1e-4),
    Case("take_scalar_constant_index", lambda x: (jnp.take(x, 2, axis=0), x.at[1].get(mode="fill")), args(u(4))),
]
_ties = lambda r: np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 2.51, -3.2, 7.0])
CASES += [
    Case("round_ties_to_even", jnp.round, args(_ties), atol=0),
    Case("lax_round_ties_away_from_zero", jax.lax.round, args(_ties), atol=0),
]
# Rounding a quotient by a constant is exact at the rounded dividend: floor(60 / 10) was
# 5 (the quotient an ulp low), as optax's exponential_decay(staircase=True) read it.
_tens = lambda r: np.concatenate([np.arange(-40.0, 41.0, 10.0), r.uniform(-50, 50, 7)])
CASES += [
    Case("round_quotient_by_constant", lambda x: (jnp.floor(x / 10), jnp.ceil(x / 10), jnp.round(x / 4),
                                                  jax.lax.round(x / 4), (x / 5).astype(jnp.int32),
                                                  jnp.floor(x / -2.5), jnp.floor(x * 0.1)), args(_tens), atol=0),
    Case("floor_of_int_quotient", lambda n: jnp.floor(n / 10), args(lambda r: np.arange(-30, 100, 5, dtype=np.int32)),
         atol=0),
]
# Grouped / depthwise convolutions (feature groups; their kernel gradient has batch
# groups) and lax.reshape's transpose-first `dimensions`.
_gconv = lambda x, w, g: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_dn,
                                                      feature_group_count=g)
CASES += [
    Case("grouped_conv", lambda x, w: _gconv(x, w, 2), args(u(2, 5, 5, 4), u(3, 3, 2, 6)), atol=64 * ULP),
    Case("depthwise_conv_grads", jax.grad(lambda x, w: jnp.sum(_gconv(x, w, 3) ** 2), argnums=(0, 1)),
         args(u(2, 5, 5, 3, lo=-1, hi=1), u(3, 3, 1, 3, lo=-1, hi=1)), atol=256 * ULP),
    Case("grouped_conv_grads", jax.grad(lambda x, w: jnp.sum(_gconv(x, w, 2) ** 2), argnums=(0, 1)),
         args(u(2, 4, 4, 4, lo=-1, hi=1), u(3, 3, 2, 4, lo=-1, hi=1)), atol=256 * ULP),
    Case("reshape_with_dimensions", lambda x: jax.lax.reshape(x, (4, 3), dimensions=(1, 0)), args(u(3, 4))),
]

# Functions taking *args: every jnp ufunc, called as users call it (spu.jit(jnp.add)).
CASES += [
    Case("ufunc_add", jnp.add, args(u(4, 5), u(5))),
    Case("ufunc_subtract", jnp.subtract, args(u(4, 5), u(4, 5))),
    Case("ufunc_multiply", jnp.multiply, args(u(4, 5), u(4, 5))),
    Case("ufunc_negative", jnp.negative, args(u(7))),
    Case("ufunc_maximum", jnp.maximum, args(u(9), u(9))),
    Case("ufunc_minimum", jnp.minimum, args(u(9), u(9))),
    Case("ufunc_logical_and", jnp.logical_and, args(u(9), u(9))),
    Case("ufunc_logical_or", jnp.logical_or, args(u(9), u(9))),
    Case("ufunc_logical_xor", jnp.logical_xor, args(u(9), u(9))),
    Case("ufunc_add_reduce", jnp.add.reduce, args(u(4, 5))),
    Case("var_args_lambda", lambda *xs: xs[0] * xs[1] + xs[2], args(u(6), u(6), u(6))),
]

# PRNG keys in the inputs are public and fixed when compiling (a draw is a public constant),
# also the key and counter of a flax nnx random stream: dropout as the flax docs write it.
from flax import nnx  # noqa: E402


class _DropoutMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 4, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.dropout(nnx.relu(self.linear(x)))


def _dropout_mlp(train):
    def make(r):
        m = _DropoutMLP(nnx.Rngs(int(r.integers(100))))
        m.train() if train else m.eval()
        return [m, r.uniform(-2, 2, (5, 3))]
    return make


CASES += [
    Case("prng_key_argument", lambda k, x: x * jax.random.uniform(k, x.shape),
         lambda r: [jax.random.key(int(r.integers(100))), r.uniform(-4, 4, (4, 3))]),
    Case("prng_key_in_pytree", lambda p, x: x + jax.random.normal(p["key"], x.shape) * p["scale"],
         lambda r: [{"key": jax.random.key(5), "scale": r.uniform(0, 1, ())}, r.uniform(-4, 4, (6,))]),
    Case("nnx_dropout_eval", lambda m, x: m(x), _dropout_mlp(False), atol=32 * ULP),
    Case("nnx_dropout_train", lambda m, x: m(x), _dropout_mlp(True), atol=32 * ULP),
]

# The nonlinear functions, one row each from their table (compiler/ir/nonlinear.py): inputs
# over the interval their error was measured on, tolerance the documented error there.
from spu_lite.compiler.ir.nonlinear import BY_OP  # noqa: E402


def _on(op, n=41, lo=None, hi=None):
    row = BY_OP[op]
    lo, hi = row.measured if lo is None else (lo, hi)
    return args(lambda r: np.concatenate([[lo, hi], r.uniform(lo, hi, n - 2)]))


def _row(name, fn, op, rel=1e-5, **kw):
    return Case(name, fn, _on(op, **kw), atol=BY_OP[op].abs_err, rtol=rel)


CASES += [
    _row("exp", jnp.exp, "exp", rel=3.6e-6),
    _row("log", jnp.log, "log"),
    _row("log1p", jnp.log1p, "log1p"),
    _row("reciprocal", lambda x: 1.0 / x, "reciprocal", rel=4e-4),
    _row("reciprocal_negative", lambda x: 1.0 / -x, "reciprocal", rel=4e-4),
    _row("sqrt", jnp.sqrt, "sqrt"),
    _row("rsqrt", jax.lax.rsqrt, "rsqrt"),
    _row("sigmoid", jax.nn.sigmoid, "logistic"),
    _row("tanh", jnp.tanh, "tanh"),
    _row("erf", jax.scipy.special.erf, "erf"),
    _row("erfc", jax.scipy.special.erfc, "erf"),
    _row("sin", jnp.sin, "sin"),
    _row("cos", jnp.cos, "cos"),
    _row("sin_small", jnp.sin, "sin", lo=-4.0, hi=4.0),
    _row("exp2", jnp.exp2, "exp", lo=-8.0, hi=4.0, rel=1e-5),
    _row("expm1", jnp.expm1, "exp", lo=-4.0, hi=4.0, rel=1e-5),
    _row("pow_secret_exponent", lambda x: jnp.power(x, 1.5), "log", lo=0.5, hi=20.0, rel=1e-4),
    # gelu = x/2 (1 + tanh(...)) or x/2 (1 + erf(x/sqrt 2)): |x|/2 times their error
    Case("gelu_tanh", jax.nn.gelu, args(u(41, lo=-6, hi=6)), atol=3e-5),
    Case("gelu_erf", lambda x: jax.nn.gelu(x, approximate=False), args(u(41, lo=-6, hi=6)), atol=3e-5),
    Case("silu", jax.nn.silu, args(u(41, lo=-6, hi=6)), atol=3e-5),
    Case("softplus", jax.nn.softplus, args(u(41, lo=-6, hi=6)), atol=2e-4),
    Case("softmax", lambda x: jax.nn.softmax(x, axis=-1), args(u(4, 10)), atol=1e-5),
    Case("log_softmax", lambda x: jax.nn.log_softmax(x, axis=-1), args(u(4, 10)), atol=2e-4),
    Case("logsumexp", lambda x: jax.nn.logsumexp(x, axis=-1), args(u(4, 10)), atol=2e-4),
    Case("layer_norm_rsqrt", lambda x: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5),
         args(u(4, 16)), atol=2e-3),
]

# jnp.prod (a tree of products) and scatter with set / mul / min / max: at indices fixed in
# the program (duplicates in order), at one secret or public index, at promised-unique
# secret indices.
_dup = jnp.array([0, 2, 2, 7])            # 7 is out of bounds: dropped, as in JAX
CASES += [
    Case("prod_axis", lambda x: jnp.prod(x, axis=1), args(u(4, 5, lo=-2, hi=2)), atol=64 * ULP, rtol=1e-4),
    Case("prod_all", jnp.prod, args(u(3, 4, lo=0.5, hi=1.5)), atol=64 * ULP, rtol=1e-4),
    Case("prod_axes_0_2_odd", lambda x: jnp.prod(x, axis=(0, 2)), args(u(3, 2, 3, lo=-1.5, hi=1.5)),
         atol=64 * ULP, rtol=1e-4),
    Case("prod_ints", lambda a: jnp.prod(a, axis=0), args(ints(5, 3, lo=-4, hi=5)), atol=0),
    Case("cumprod", lambda x: jnp.cumprod(x, axis=1), args(u(3, 7, lo=0.5, hi=1.5)), atol=64 * ULP, rtol=1e-4),
    Case("cumprod_reverse_ints", lambda a: jax.lax.cumprod(a, axis=0, reverse=True), args(ints(5, 2, lo=-3, hi=4)),
         atol=0),
    Case("cummax_cummin", lambda x: (jax.lax.cummax(x, axis=0, reverse=True), jax.lax.cummin(x, axis=1)),
         args(u(5, 6))),
    Case("prod_bools", lambda x: jnp.all(x > 0, axis=1) & jnp.prod(x > -1, axis=1).astype(bool),
         args(u(4, 6))),
    Case("scatter_set", lambda x, v: x.at[_dup].set(v), args(u(5, 3), u(4, 3))),
    Case("scatter_mul", lambda x, v: x.at[_dup].multiply(v), args(u(5, 3), u(4, 3)), atol=32 * ULP),
    Case("scatter_min", lambda x, v: x.at[_dup].min(v), args(u(5, 3), u(4, 3))),
    Case("scatter_max", lambda x, v: x.at[_dup].max(v), args(u(5, 3), u(4, 3))),
    Case("scatter_set_ints", lambda a, b: a.at[1:3].set(b), args(ints(5), ints(2))),
    Case("scatter_set_at_secret", lambda x, i, v: x.at[i].set(v), args(u(5, 3), _pos(3), u(3))),
    Case("scatter_mul_at_secret", lambda x, i, v: x.at[i].multiply(v), args(u(5, 3), _pos(1), u(3)),
         atol=32 * ULP),
    Case("scatter_max_at_secret", lambda x, i, v: x.at[i].max(v), args(u(5, 3), _pos(4), u(3))),
    Case("scatter_min_at_secret_unique", lambda x, i, v: x.at[i].min(v, unique_indices=True),
         args(u(6, 2), lambda r: np.array([4, 0, 2], np.int32), u(3, 2))),
]
# Secret indices along several axes (compiler/lower/multi_index.py): the label gather of
# a cross-entropy written by hand, x[i, j], their scatters, gradients and modes.
_fixed = lambda *v: (lambda r: np.array(v, np.int32))
CASES += [
    Case("gather_rows_at_secret_labels", lambda l, y: (l[jnp.arange(5), y], jax.grad(
        lambda l: jnp.sum(l[jnp.arange(5), y] ** 2))(l)), args(u(5, 4), _fixed(0, 3, 1, 2, 3))),
    Case("scatter_at_rows_and_secret_labels", lambda l, y: (
        l.at[jnp.arange(5), y].set(-3.0), l.at[jnp.arange(5), y].multiply(2.0), l.at[jnp.arange(5), y].max(1.0)),
         args(u(5, 4), _fixed(0, 3, 1, 2, 3)), atol=32 * ULP),
    Case("index_at_two_secret_indices", lambda m, i, j: (m[i, j], m[i[0], j[1]], m.at[i, j].add(1.0),
                                                         m.at[i[1], j[0]].set(9.0), m[:, None][i, :, j]),
         args(u(5, 4), _fixed(4, -1, 0), _fixed(1, 3, 1))),
    Case("take_at_two_secret_indices_fill_clip", lambda m, i, j: (
        m.at[i, j].get(mode="fill", fill_value=-5.0), m.at[i, j].get(mode="clip")),
         args(u(5, 4), _fixed(0, 7, 2, -9), _fixed(1, 3, 9, 0))),
    Case("dynamic_slices_at_two_secret_starts", lambda m, i, j: (
        jax.lax.dynamic_slice(m, (i, j), (2, 3)), jax.lax.dynamic_update_slice(m, jnp.ones((2, 2)), (i, j))),
         args(u(5, 4), lambda r: np.int32(4), lambda r: np.int32(1))),
    Case("bool_scatters_and_unique_of_a_given_size", lambda x, i: (
        (x > 0).at[i].set(True), (x > 0).at[jnp.array([1, 1, 3])].max(jnp.array([True, False, True])),
        jnp.unique(jnp.round(x), size=8, fill_value=-9.0, return_counts=True)),
         args(u(8), lambda r: np.int32(2)), atol=0),
    Case("cumlogsumexp", lambda x: (jax.lax.cumlogsumexp(x, axis=1), jax.lax.cumlogsumexp(x, axis=0, reverse=True)),
         args(lambda r: np.concatenate([r.uniform(-6, 6, (2, 6)), [[-20.0, 0, 3, -8, 1, 2]]])), atol=2e-4),
    Case("matmul_of_bools", lambda x: ((x > 0) @ (x > 0).T, jnp.einsum("ij,kj->ik", x > 3, x > 3)), args(u(4, 5)),
         atol=0),
    Case("int_scatter_add_at_two_secret_indices", lambda a, i, j: a.at[i, j].add(5),
         args(ints(5, 4), _fixed(4, 0, 4), _fixed(1, 3, 1)), atol=0),
]

# Integer floor division and remainder on secrets (by a constant: one truncation and
# comparisons; by a secret: long division), bitwise ops through boolean shares, shifts.
_i32_edges = lambda r: np.concatenate([r.integers(-1000, 1000, 12), [2 ** 31 - 1, -2 ** 31 + 1, 0, -7]]).astype(np.int32)
_divisors = lambda r: np.concatenate([r.integers(1, 40, 8), -r.integers(1, 40, 6), [1, -2 ** 31 + 1]]).astype(np.int32)
CASES += [
    Case("floordiv_const", lambda a: a // 7, args(_i32_edges), atol=0),
    Case("floordiv_negative_const", lambda a: a // -3, args(_i32_edges), atol=0),
    Case("remainder_const", lambda a: a % 7, args(_i32_edges), atol=0),
    Case("jnp_mod_const_array", lambda a: jnp.mod(a, jnp.array([3, 5, 7, 11] * 4)), args(_i32_edges), atol=0),
    Case("lax_div_rem_const", lambda a: (jax.lax.div(a, 6), jax.lax.rem(a, 6)), args(_i32_edges), atol=0),
    Case("floordiv_secret", lambda a, b: a // b, args(_i32_edges, _divisors), atol=0),
    Case("remainder_secret", lambda a, b: a % b, args(_i32_edges, _divisors), atol=0),
    Case("divmod_secret", lambda a, b: jnp.divmod(a, b), args(ints(8, lo=-500, hi=500), ints(8, lo=1, hi=20)),
         atol=0),
    Case("bitwise_and_or_xor", lambda a, b: (a & b, a | b, a ^ b), args(_i32_edges, _i32_edges), atol=0),
    Case("bitwise_with_constant", lambda a: (a & 0xF0, a | 5, a ^ -1), args(_i32_edges), atol=0),
    Case("bitwise_not", lambda a: ~a, args(_i32_edges), atol=0),
    Case("ufunc_bitwise", jnp.bitwise_xor, args(ints(6), ints(6)), atol=0),
    Case("shift_left", lambda a: a << 3, args(ints(9, lo=-10 ** 6, hi=10 ** 6)), atol=0),
    Case("shift_right_arithmetic", lambda a: a >> 3, args(_i32_edges), atol=0),
    Case("shift_right_logical", lambda a: jax.lax.shift_right_logical(a, 4), args(_i32_edges), atol=0),
    Case("shifts_by_secret_amounts", lambda a, s: (a << s, a >> s, jax.lax.shift_right_logical(a, s)),
         args(_i32_edges, lambda r: np.array([0, 1, 2, 3, 5, 8, 13, 21, 30, 31, 32, 40, 3, 31, 1, 33], np.int32)),
         atol=0),
]

# Remainders of floats (jnp % and fmod): exact at the rounded inputs (inputs here are
# multiples of 2^-6 and 2^-4, so float32 and fixed point hold them exactly); a divisor's
# own rounding is multiplied by the quotient.
_grid = lambda step, lo, hi, n: (lambda r: np.round(r.uniform(lo, hi, n) / step) * step)
_signed_divisor = lambda r: np.round(r.uniform(0.5, 10, 16) * 16) / 16 * np.where(r.uniform(size=16) < 0.5, -1, 1)
CASES += [
    Case("float_mod_const", lambda a: a % 3.5, args(_grid(2 ** -6, -100, 100, 16))),
    Case("float_fmod_const", lambda a: jnp.fmod(a, -2.25), args(_grid(2 ** -6, -100, 100, 16))),
    Case("float_mod_one", lambda a: a % 1.0, args(u(16, lo=-50, hi=50))),
    Case("float_mod_secret", lambda a, b: a % b, args(_grid(2 ** -6, -100, 100, 16), _signed_divisor)),
    Case("float_fmod_secret", lambda a, b: jnp.fmod(a, b), args(_grid(2 ** -6, -100, 100, 16), _signed_divisor)),
]
