"""L2 clipping of an update, written in JAX so it runs under MPC (and in the clear).

    clip(u) = u * min(1, C / ||u||) = u * rsqrt(max(||u||^2 / C^2, 1))

The sum of squares is one secret dot product (a single truncation after the sum);
`max(., 1)` keeps rsqrt on [1, bound], where fixed point is accurate; a comparison
makes the factor exactly 1 for updates already inside the ball.

`newton_rsqrt` computes 1/sqrt(t) for t in [1, bound] with secret comparisons and
multiplications only, for runtimes without a secret rsqrt:
  1. initial guess from K = ceil(log2(bound)) public thresholds: with
     j = #{k : t >= 2^k},  y0 = 0.8 * 2^(-j/2), so t * y0^2 lies in [0.64, 1.28);
  2. Newton steps y <- y * (1.5 - 0.5 * t * y^2) (quadratic convergence: the
     relative error goes 0.36 -> 0.11 -> 9e-3 -> 6e-5 -> 3e-9).
  Accuracy: a few units in the last place of y (2^-18 by default), i.e. relative
  error ~2^(j/2 - 18): 4e-5 for ||u|| < 10 C, ~2% at ||u|| = 4096 C.
  Cost: one comparison of n*K values, ~4 multiplications per step on n values
  (n = number of updates, all clipped together).
"""
from __future__ import annotations

import math
from typing import Callable, List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

NEWTON_STEPS = 5


def squared_norm(tree):
    """Global squared L2 norm of a pytree, as a shape-(1,) array."""
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(x * x) for x in leaves).reshape(1)


def newton_rsqrt(t, bound: float, steps: int = NEWTON_STEPS):
    """1/sqrt(t) elementwise for a vector t with entries in [1, bound], without a
    secret rsqrt; see the module docstring."""
    k_max = max(1, math.ceil(math.log2(max(bound, 2.0))))
    k = np.arange(1, k_max + 1, dtype=np.float64)
    thresholds = (2.0 ** k).astype(np.float32)
    steps_down = (0.8 * (2.0 ** (-k / 2) - 2.0 ** (-(k - 1) / 2))).astype(np.float32)
    above = (t[:, None] >= thresholds[None, :]).astype(jnp.float32)     # [n, K] secret bits
    y = 0.8 + jnp.sum(above * steps_down[None, :], axis=1)
    for _ in range(steps):
        y = y * (1.5 - 0.5 * ((t * y) * y))
    return y


def clip_factors(trees: Sequence, clip_norm: float, rsqrt: Callable):
    """min(1, clip_norm / ||tree_i||) for every tree, as one vector (all trees are
    handled by the same few vectorised ops, so the rounds do not grow with n)."""
    ratio = jnp.concatenate([squared_norm(t) for t in trees]) * (1.0 / float(clip_norm) ** 2)
    return jnp.where(ratio > 1.0, rsqrt(jnp.maximum(ratio, 1.0)), 1.0)


def scale_tree(tree, factor):
    """tree * factor for a shape-(1,) factor."""
    return jax.tree_util.tree_map(lambda x: x * factor.reshape((1,) * x.ndim) if x.ndim
                                  else x * factor[0], tree)


def clip_trees(trees: Sequence, clip_norm: float, rsqrt: Callable) -> List:
    """Every tree scaled to global L2 norm at most clip_norm."""
    f = clip_factors(trees, clip_norm, rsqrt)
    return [scale_tree(t, f[i:i + 1]) for i, t in enumerate(trees)]
