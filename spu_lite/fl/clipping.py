"""L2 clipping of an update, written in JAX so it runs under MPC (and in the clear).

    clip(u) = u                  if ||u|| <= C
              C * u / ||u||      otherwise

Fixed point forbids the obvious formula: a product (and a dot product's sum, which is
truncated once after the sum) must stay below 2^27 in magnitude (ring 64, 18
fractional bits), so ||u||^2 wraps around for ||u|| > 2^13.5 (norm 20000 came out
unclipped), and a factor C / ||u|| below 2^-18 is zero. So the update is scaled
BEFORE squaring, at a ladder of public scales, and the clipped update is built from
the right rung as a unit vector:

    v_j = u * 2^(k - 8j),   s_j = ||v_j||^2          j = 0 .. L
    (P = 2^-k the power of two with P <= C < 2P: every scale is a power of two, exact)
    rung j is sound  iff ||v_j|| < 2^11.5  (then s_j < 2^23: nothing wraps);
    judged from the next rung: ||v_j|| < 2^11.5  iff  s_(j+1) < 2^7, and the top rung
    L is sound by construction (L from the largest possible norm);
    j* = the finest sound rung;  clip(u) = u if j* = 0 and s_0 <= (C/P)^2,
                                  else C * y * (1.5 - 0.5 ||y||^2),
                                  y = v_j* * rsqrt(s_j*)  (a unit vector, and one
                                  Newton step on its norm for rsqrt's rounding).

Wrapped values only occur on unsound rungs, which are multiplied by a secret 0.
Rungs whose scale is at least 2^-18 scale u directly (a product that wraps is on an
unsound rung); coarser ones start from b = u * 2^-18 (an exact shift: it never wraps)
and chain, so the rungs a sound judgement rests on never wrap. The chosen rung
has s_j* in [1, 2^23] (rung 0 when clipping) or [2^7, 2^23], the domain of rsqrt
(rsqrt(s_j*) * C * v_j* = C * u / ||u||: the scale 2^(k-8j) cancels).
Precision: the clipped norm is C to ~1e-4 relative (measured in
tests/security/test_clipping.py over norms 1e-2 C .. 1e13).

Supported clip norms: 2^-6 <= C <= 2^11. Cost per update: L + 1 scalings (L if
1 <= C < 2), L + 2 products of the update by a secret scalar (L + 3 if C >= 2),
L + 1 dot products, and one batched comparison and rsqrt on L + 1 values; L = 1 for
the norms data owners may send in-process, <= 6 for any representable update.
Rounds do not grow with the number of updates.

`newton_rsqrt` computes 1/sqrt(t) for t in [1, bound] with secret comparisons and
multiplications only, for runtimes without a secret rsqrt:
  1. initial guess from K = ceil(log2(bound)) public thresholds: with
     j = #{k : t >= 2^k},  y0 = 0.8 * 2^(-j/2), so t * y0^2 lies in [0.64, 1.28);
  2. Newton steps y <- y * (1.5 - 0.5 * t * y^2) (quadratic convergence: the
     relative error goes 0.36 -> 0.11 -> 9e-3 -> 6e-5 -> 3e-9).
  Accuracy: a few units in the last place of y (2^-18 by default), i.e. relative
  error ~2^(j/2 - 18).
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

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


#: a rung is sound below this squared norm (2^11.5 squared); its successor's squared
#: norm then stays below SOUND_NEXT. Products stay below 2^27 (ring 64, 18 bits).
SOUND = 2.0 ** 23
SOUND_NEXT = 2.0 ** 7
RUNG_BITS = 8
FRAC = 18
MIN_CLIP, MAX_CLIP = 2.0 ** -6, 2.0 ** 11
#: |x| < 2^44: the fixed-point range of ring 64 with 18 fractional bits
MAX_ABS = 2.0 ** 44
#: the rsqrt domain clipping needs: [1, SOUND]
RSQRT_BOUND = SOUND


def scale_tree(tree, factor):
    """tree * factor for a shape-(1,) factor."""
    return jax.tree_util.tree_map(lambda x: x * factor.reshape((1,) * x.ndim) if x.ndim
                                  else x * factor[0], tree)


def _times(tree, e: int):
    """tree * 2^e (e >= -18: the constant is exact, the product a shift)."""
    return scale_tree(tree, jnp.full((1,), 2.0 ** e, jnp.float32))


def _rungs(tree, k: int, top: int) -> List:
    """v_j = u * 2^(k - 8j), j = 0..top. Exponents >= -18 scale u directly (such a
    product wraps only on an unsound rung); smaller ones start from the exact shift
    b = u * 2^-18 (never wraps) and chain, so the rungs they judge never wrap."""
    out, base = [], None
    for j in range(top + 1):
        e = k - RUNG_BITS * j
        if e == 0:
            out.append(tree)                       # 1 <= C < 2: rung 0 is u itself
        elif e >= -FRAC:
            out.append(_times(tree, e))
        elif e + FRAC >= -FRAC and (j == 0 or k - RUNG_BITS * (j - 1) >= -FRAC):
            base = _times(tree, -FRAC) if base is None else base
            out.append(_times(base, e + FRAC))
        else:
            out.append(_times(out[-1], -RUNG_BITS))
    return out


def rungs_needed(max_norm: float, scale: float) -> int:
    """L: the smallest top rung with max_norm * scale * 2^(-8L) < 2^11 (sound)."""
    return max(1, math.ceil((math.log2(max(max_norm * scale, 1.0)) - 11.0) / RUNG_BITS))


def clip_trees(trees: Sequence, clip_norm: float, rsqrt: Callable,
               max_norm: Optional[float] = None) -> List:
    """Every tree scaled to global L2 norm at most clip_norm (module docstring).

    rsqrt: 1/sqrt(t) for t in [1, RSQRT_BOUND]. max_norm: the largest norm an update
    can have (e.g. the bound data owners validate); default: any update of
    representable values (|x| < 2^44), which needs more rungs."""
    C = float(clip_norm)
    if not MIN_CLIP <= C <= MAX_CLIP:
        raise ValueError(f"clip_norm must be in [2^-6, 2^11] for fixed-point clipping, "
                         f"not {C}")
    trees = list(trees)
    if max_norm is None:
        n = max(sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(t)) for t in trees)
        max_norm = MAX_ABS * math.sqrt(max(n, 1))
    k = -math.floor(math.log2(C))               # P = 2^-k <= C < 2P; rung 0 is u / P
    c2 = (C * 2.0 ** k) ** 2                    # (C / P)^2 in [1, 4)
    top = rungs_needed(float(max_norm), 2.0 ** k)
    m, rungs = len(trees), [_rungs(t, k, top) for t in trees]      # [tree][rung]
    s = jnp.concatenate([squared_norm(v) for vs in rungs for v in vs]).reshape(m, top + 1)
    ok = (s[:, 1:] < SOUND_NEXT).astype(jnp.float32)               # rung j sound, j < top
    sound = [jnp.ones((m,), jnp.float32)]                          # the top rung is
    for j in range(top - 1, -1, -1):
        sound.insert(0, sound[0] * ok[:, j])
    first = [sound[0]] + [sound[j] - sound[j - 1] for j in range(1, top + 1)]   # j*
    keep = sound[0] * (s[:, 0] <= c2).astype(jnp.float32)          # ||u|| <= C: u itself
    r = rsqrt(jnp.clip(s, 1.0, SOUND).reshape(-1)).reshape(m, top + 1)
    add = lambda *ts: jax.tree_util.tree_map(lambda *xs: sum(xs[1:], xs[0]), *ts)
    # y = the unit vector when clipping; when not, u itself as v_0 * P if C < 2 (v_0 is
    # u scaled up exactly), else a separate term u * keep (v_0 lost u's low bits)
    fold = k >= 0
    coef = [[r[i, j] * first[j][i] * (1.0 - keep[i]) +
             (keep[i] * 2.0 ** -k if j == 0 and fold else 0.0)
             for j in range(top + 1)] for i in range(m)]
    ys = [add(*[scale_tree(v, coef[i][j].reshape(1)) for j, v in enumerate(vs)])
          for i, vs in enumerate(rungs)]
    # r_j* is on the 2^-18 grid (relative error up to 2^-6.5 when s_j* is near 2^23):
    # one Newton step on the norm, y * (1.5 - 0.5 ||y||^2), brings ||y|| to 1 - O(err^2)
    q = jnp.concatenate([squared_norm(y) for y in ys])
    fix = (1.0 - keep) * (C * (1.5 - 0.5 * q)) + (keep if fold else 0.0)
    out = [scale_tree(y, fix[i].reshape(1)) for i, y in enumerate(ys)]
    if not fold:
        out = [add(o, scale_tree(t, keep[i].reshape(1))) for i, (o, t) in
               enumerate(zip(out, trees))]
    return out
