"""arctan, arctan2, arcsin and arccos, all from one kernel: atan of a ratio in [0, 1].

atan2(y, x): t = min(|x|, |y|) / max(|x|, |y|) in [0, 1], r = atan(t) by an odd
polynomial, then the octant: r -> pi/2 - r if |y| > |x|, r -> pi - r if x < 0, and the
sign of y. atan(x) = atan2(x, 1); arcsin(x) = atan2(x, sqrt(1 - x^2)) and arccos(x) =
atan2(sqrt(1 - x^2), x). Everything is jnp code inlined with Lowerer.inline_fn, so the
secret reciprocal of max(|x|, |y|) and the square root keep their own formats and
domain checks (a reciprocal of a max below 0.1 is a spu.check domain finding).

The polynomial: t P(t^2) of degree 15, least squares on Chebyshev nodes of [0, 1]
(fit error 1.2e-7, coefficients below 1), evaluated by Horner: 8 products in sequence.
Cost of atan2: 3 comparisons, 1 reciprocal, 9 products, 4 selects.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .context import rule

_DEGREE = 15


def _fit() -> np.ndarray:
    """Coefficients c_k of atan(t) ~ sum_k c_k t^(2k+1) on [0, 1]."""
    t = 0.5 + 0.5 * np.cos(np.pi * (np.arange(4096) + 0.5) / 4096)   # Chebyshev nodes
    powers = np.stack([t ** (2 * k + 1) for k in range((_DEGREE + 1) // 2)], axis=1)
    return np.linalg.lstsq(powers, np.arctan(t), rcond=None)[0]


_COEFFS = _fit()


def _atan_unit(t):
    """atan(t) for t in [0, 1]: t P(t^2) by Horner."""
    t2 = t * t
    p = jnp.full_like(t, _COEFFS[-1])
    for c in _COEFFS[-2::-1]:
        p = p * t2 + c
    return t * p


def atan2(y, x):
    ax, ay = jnp.abs(x), jnp.abs(y)
    hi = jnp.maximum(ax, ay)
    r = _atan_unit(jnp.minimum(ax, ay) / jnp.where(hi > 0, hi, 1.0))   # (0, 0): 0, as JAX
    r = jnp.where(ay > ax, np.pi / 2 - r, r)
    r = jnp.where(x < 0, np.pi - r, r)
    return jnp.where(y < 0, -r, r)


@rule("atan2")
def _atan2(L, eqn, y, x):
    return L.inline_fn(atan2, eqn, [y, x])


@rule("atan")
def _atan(L, eqn, x):
    return L.inline_fn(lambda a: atan2(a, jnp.ones_like(a)), eqn, [x])


@rule("asin")
def _asin(L, eqn, x):
    """Domain |x| <= 1 (float JAX: nan outside)."""
    return L.inline_fn(lambda a: atan2(a, jnp.sqrt(1.0 - a * a)), eqn, [x])


@rule("acos")
def _acos(L, eqn, x):
    return L.inline_fn(lambda a: atan2(jnp.sqrt(1.0 - a * a), a), eqn, [x])
