"""Lowering rules for small dense linear algebra: `cholesky`, `triangular_solve`, `lu`
and `custom_linear_solve` (jnp.linalg.cholesky / solve / inv / det / slogdet,
jax.scipy.linalg.cho_factor / cho_solve / solve_triangular / lu_factor / lu_solve).

Each is written as ordinary jnp code on the equation's static shapes, traced to a
jaxpr and inlined, so every step is an op the IR already has (with its formats and
domain checks): the secret square roots and divisions are `rsqrt` and `recip_parts`
of secret values, the rest products and sums.

    cholesky, n x n          n steps, each one rsqrt and one dot (column j of L from
                             the j columns before it): ~n x (rsqrt's rounds + 2)
    triangular_solve, n x n  one batched recip_parts of the diagonal, then n steps of
                             a dot and a quotient (forward substitution)
    lu, n x n                partial pivoting as LAPACK does it (the first row of the
                             largest |pivot|), obliviously: per step a secret argmax,
                             its one-hot, the swap as products, one quotient by the
                             pivot and a rank-1 update; pivots and permutation are secret integers
    lu_pivots_to_permutation the swaps applied to 0..m-1, each by a one-hot product
    custom_linear_solve      its `solve` jaxpr, inlined (jnp.linalg.solve's form)

Both are sequential in n, so they suit the small matrices of closed-form models
(normal equations of tens of features), not large ones. A matrix that is not
positive definite makes cholesky's rsqrt read a value <= 0: garbage, which
`spu.check` reports as an rsqrt input outside its domain.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .context import rule


def _cholesky_lower(a):
    """Lower-triangular L with L L^T = a (a symmetric positive definite), by columns:
    L[j, j] = sqrt(s), L[j+1:, j] = (a[j+1:, j] - L[j+1:, :j] L[j, :j]) / sqrt(s), with
    s = a[j, j] - |L[j, :j]|^2, both from one rsqrt(s)."""
    n = a.shape[-1]
    cols = []                                   # cols[k]: column k of L, rows k..n-1
    for j in range(n):
        s = a[..., j, j]
        below = a[..., j + 1:, j]
        if j:
            row = jnp.stack([c[..., j - k] for k, c in enumerate(cols)], axis=-1)  # L[j, :j]
            s = s - jnp.sum(row * row, axis=-1)
            if j + 1 < n:
                block = jnp.stack([c[..., j + 1 - k:] for k, c in enumerate(cols)], axis=-1)
                below = below - jnp.einsum("...ik,...k->...i", block, row)
        r = jax.lax.rsqrt(s)
        cols.append(jnp.concatenate([(s * r)[..., None], below * r[..., None]], axis=-1))
    zeros = jnp.zeros(a.shape[:-2], a.dtype)
    full = [jnp.concatenate([jnp.broadcast_to(zeros[..., None], a.shape[:-2] + (k,)), c],
                            axis=-1) if k else c for k, c in enumerate(cols)]
    return jnp.stack(full, axis=-1)             # column k is full[k]


def _forward(a, b, unit_diagonal: bool):
    """x with a x = b, a lower triangular (..., n, n), b (..., n, k): forward
    substitution, the diagonal's reciprocal factors taken once."""
    n = a.shape[-1]
    d = None if unit_diagonal else jnp.diagonal(a, axis1=-2, axis2=-1)
    rows = []
    for i in range(n):
        t = b[..., i, :]
        if i:
            done = jnp.stack(rows, axis=-2)                       # (..., i, k)
            t = t - jnp.einsum("...j,...jk->...k", a[..., i, :i], done)
        # a quotient, not t * (1/d): 1/d at f bits is 0 for d >= 2^20; the divisions by
        # slices of one diagonal share one recip_parts (rules_math._reciprocal_parts)
        rows.append(t if d is None else t / d[..., i, None])
    return jnp.stack(rows, axis=-2)


def _triangular_solve(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    """lax.linalg.triangular_solve's contract, reduced to forward substitution:
    op(a) x = b (left_side) or x op(a) = b, op(a) = a^T if transpose_a."""
    sw = lambda m: jnp.swapaxes(m, -1, -2)                        # noqa: E731
    if transpose_a:
        a, lower = sw(a), not lower
    if not left_side:                           # x A = b  <=>  A^T x^T = b^T
        return sw(_triangular_solve(sw(a), sw(b), left_side=True, lower=not lower,
                                    transpose_a=False, unit_diagonal=unit_diagonal))
    if not lower:                               # reverse rows and columns: upper -> lower
        flip = lambda m: jnp.flip(m, axis=(-2, -1))               # noqa: E731
        return jnp.flip(_forward(flip(a), jnp.flip(b, axis=-2), unit_diagonal), axis=-2)
    return _forward(a, b, unit_diagonal)


def _lu(a):
    """(lu, pivots, permutation) of lax.linalg.lu for a (..., n, n): P a = L U with
    partial pivoting. The pivot row is chosen by a secret argmax and moved by products
    with its one-hot vector e over rows j..n-1 (rows j and i swap: every row of the
    block gains e_i (row_j - pivot_row), then row j becomes the pivot row), so nothing
    about the data's order is revealed; the permutation is tracked the same way."""
    m, n = a.shape[-2:]
    k = min(m, n)
    perm = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32), a.shape[:-2] + (m,))
    pivots = []
    for j in range(k):
        block = a[..., j:, :]                                     # (..., m-j, n)
        idx = jnp.argmax(jnp.abs(block[..., :, j]), axis=-1)      # first largest |pivot|
        e = jax.nn.one_hot(idx, m - j, dtype=a.dtype)             # (..., m-j)
        ei = jax.nn.one_hot(idx, m - j, dtype=jnp.int32)
        row = jnp.einsum("...i,...in->...n", e, block)            # the pivot row
        block = block + e[..., :, None] * (block[..., :1, :] - row[..., None, :])
        block = jnp.concatenate([row[..., None, :], block[..., 1:, :]], axis=-2)
        perm = _swap_in(perm, j, ei)
        pivots.append(idx.astype(jnp.int32) + j)
        if j + 1 < m:                                             # eliminate below
            l = block[..., 1:, j] / row[..., j][..., None]     # keeps l's bits (recip_parts)
            rest = block[..., 1:, j + 1:] - l[..., :, None] * row[..., None, j + 1:]
            below = jnp.concatenate([block[..., 1:, :j], l[..., None], rest], axis=-1)
            block = jnp.concatenate([row[..., None, :], below], axis=-2)
        a = jnp.concatenate([a[..., :j, :], block], axis=-2)
    return a, jnp.stack(pivots, axis=-1), perm


def _swap_in(perm, j: int, e):
    """perm with entries j and i exchanged, i given by the one-hot e over j..m-1."""
    p = perm[..., j:]
    at = jnp.sum(e * p, axis=-1)
    p = p + e * (p[..., :1] - at[..., None])
    return jnp.concatenate([perm[..., :j], at[..., None], p[..., 1:]], axis=-1)


def _pivots_to_permutation(pivots, m: int):
    """lax.linalg.lu_pivots_to_permutation: apply the swaps (j, pivots[j]) in order to
    0..m-1, each as products with a one-hot of the (secret) pivot."""
    perm = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32), pivots.shape[:-1] + (m,))
    for j in range(pivots.shape[-1]):
        perm = _swap_in(perm, j, jax.nn.one_hot(pivots[..., j] - j, m - j, dtype=jnp.int32))
    return perm


@rule("cholesky")
def _cholesky(L, eqn, a):
    # the primitive's result above the diagonal is unspecified; jnp masks it
    return L.inline_fn(_cholesky_lower, eqn, [a])


@rule("triangular_solve")
def _triangular(L, eqn, a, b):
    p = eqn.params
    if p.get("conjugate_a") and jnp.iscomplexobj(jnp.zeros((), eqn.invars[0].aval.dtype)):
        raise NotImplementedError("complex triangular_solve")
    fn = lambda a, b: _triangular_solve(a, b, left_side=bool(p["left_side"]),  # noqa: E731
                                        lower=bool(p["lower"]),
                                        transpose_a=bool(p["transpose_a"]),
                                        unit_diagonal=bool(p["unit_diagonal"]))
    return L.inline_fn(fn, eqn, [a, b])


@rule("lu")
def _lu_rule(L, eqn, a):
    return L.inline_fn(_lu, eqn, [a])


@rule("custom_linear_solve")
def _custom_linear_solve(L, eqn, *args):
    """x = solve(b): the solve jaxpr with its constants (operands are the constants of
    matvec, vecmat, solve, transpose_solve in that order, then b)."""
    n = eqn.params["const_lengths"]
    start = n.matvec + n.vecmat
    consts = list(args[start:start + n.solve])
    b = list(args[sum(n):])
    return L.inline(eqn.params["jaxprs"].solve, consts + b)


@rule("lu_pivots_to_permutation")
def _pivots_rule(L, eqn, pivots):
    m = int(eqn.params["permutation_size"])
    return L.inline_fn(lambda p: _pivots_to_permutation(p, m), eqn, [pivots])
