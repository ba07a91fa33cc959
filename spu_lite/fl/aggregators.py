"""Aggregators: how the computing parties combine the data owners' payloads.

Every aggregator is ordinary JAX code compiled by the backend (spu.jit on the
computing parties, or plain JAX for the plaintext baseline), and returns only the
revealed aggregate:

  Mean(clip_norm=None, dp=None)   sum_i clip(u_i) (+ noise) / n
  WeightedMean(clip_norm=None)    sum_i n_i clip(u_i) / sum_i n_i, n_i = example counts
                                  (the counts are secret inputs; only their total is
                                  revealed, to scale the sum in the clear)
  Custom(fn, clip_norm=None)      fn(payloads, global_params) under MPC, e.g.
  reptile(eps)                    Reptile: old + eps * (mean(models) - old)

Clipping (`clip_norm`) bounds each update's L2 norm under MPC before anything is
summed (clipping.py); `dp` (a DPConfig) clips and adds distributed Gaussian noise
(dp.py). Clipping and noise only make sense for payload="update".
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp

from .clipping import MAX_CLIP, MIN_CLIP, RSQRT_BOUND, clip_trees, scale_tree
from .dp import DPConfig

#: in-process data owners refuse updates whose norm is at least this when clipping
#: (clipping itself holds for any representable norm; the bound saves rungs, see
#: clipping.py)
MAX_NORM_WHEN_CLIPPING = 4096.0


def tree_sum(trees: Sequence):
    """Leaf-wise sum of a non-empty list of pytrees."""
    return jax.tree_util.tree_map(lambda *xs: sum(xs[1:], xs[0]), *trees)


class Aggregator:
    """Base class. Subclasses implement `aggregate`.

    Attributes:
      payload: "update", "model", or None (either) -- what the data owners send.
      weighted: whether example counts are needed.
      clip_norm: L2 bound applied to every payload under MPC (None: no clipping).
      dp: DPConfig if noise is added (Mean only).
    """
    payload: Optional[str] = None
    weighted = False
    name = "aggregator"

    def __init__(self, clip_norm: Optional[float] = None, dp: Optional[DPConfig] = None):
        if dp is not None:
            if clip_norm is not None and clip_norm != dp.clip_norm:
                raise ValueError(f"clip_norm={clip_norm} contradicts dp.clip_norm={dp.clip_norm}")
            clip_norm = dp.clip_norm
        if clip_norm is not None and not MIN_CLIP <= clip_norm <= MAX_CLIP:
            raise ValueError(f"clip_norm must be in [2^-6, 2^11] (fixed-point clipping), "
                             f"not {clip_norm}")
        self.clip_norm = clip_norm
        self.dp = dp
        if clip_norm is not None:
            self.payload = "update"        # clipping (and noise) only make sense on updates
        self._programs: Dict = {}

    @property
    def max_norm(self) -> Optional[float]:
        """Largest update norm the data owners may send (None: only the value range)."""
        return MAX_NORM_WHEN_CLIPPING if self.clip_norm is not None else None

    def _clipper(self, backend) -> Callable:
        """list of payloads -> list of clipped payloads (identity without clip_norm)."""
        if self.clip_norm is None:
            return list
        rsqrt = backend.rsqrt(RSQRT_BOUND)
        # owners refuse norms >= max_norm (validation.py; on networked nodes through the
        # built-in spu_lite.validated_update loader), so fewer rungs do
        return lambda trees: clip_trees(list(trees), self.clip_norm, rsqrt, self.max_norm)

    def _program(self, backend, key: str, make: Callable, keep_secret=()):
        """The compiled program `key` of this aggregator on `backend` (made once)."""
        k = (id(backend), key)            # the backend is kept alive below, so ids stay unique
        if k not in self._programs:
            self._programs[k] = (backend, backend.compile(make(), keep_secret=keep_secret))
        return self._programs[k][1]

    def aggregate(self, backend, payloads: List, weights: Optional[List], global_params,
                  noise: Sequence = ()):
        """The revealed aggregate (numpy pytree shaped like global_params).

        Args:
          backend: PlainBackend or SecureBackend.
          payloads: one pytree per participating data owner (secret handles under MPC).
          weights: example counts (secret), if `weighted`.
          global_params: the current global model (public).
          noise: noise contributions (secret), if dp.
        """
        raise NotImplementedError

    def __repr__(self):
        extra = f", clip_norm={self.clip_norm}" if self.clip_norm else ""
        extra += f", dp={self.dp}" if self.dp else ""
        return f"{type(self).__name__}({extra.lstrip(', ')})"


class Mean(Aggregator):
    """Unweighted mean of the payloads: (sum_i clip(u_i) + noise) / n."""
    name = "mean"

    def __init__(self, clip_norm: Optional[float] = None, dp: Optional[DPConfig] = None):
        super().__init__(clip_norm, dp)

    def aggregate(self, backend, payloads, weights, global_params, noise=()):
        def make():
            clip = self._clipper(backend)
            return lambda ps, ns: tree_sum(clip(ps) + list(ns))
        total = self._program(backend, "sum", make, keep_secret=True)(list(payloads), list(noise))
        return backend.scale(total, 1.0 / len(payloads))


class WeightedMean(Aggregator):
    """Mean weighted by the data owners' example counts (FedAvg's n_k / n).

    Two programs: (1) S = sum_i n_i clip(u_i) stays secret, N = sum_i n_i is
    revealed; (2) S * (1/N) is revealed. Besides the aggregate, the total number of
    examples N is revealed."""
    weighted = True
    name = "weighted_mean"

    def __init__(self, clip_norm: Optional[float] = None):
        super().__init__(clip_norm, None)

    def aggregate(self, backend, payloads, weights, global_params, noise=()):
        def make():
            clip = self._clipper(backend)

            def weighted_sum(ps, ws):          # ws: int counts of shape (1,)
                scaled = [scale_tree(p, w.astype(jnp.float32)) for p, w in zip(clip(ps), ws)]
                return tree_sum(scaled), sum(ws[1:], ws[0])
            return weighted_sum
        prog = self._program(backend, "weighted_sum", make, keep_secret=(0,))
        total, count = prog(list(payloads), list(weights))
        return backend.scale(total, 1.0 / float(count.reshape(-1)[0]))


class Custom(Aggregator):
    """A user-supplied aggregation compiled under MPC.

    Args:
      fn: fn(payloads: list of pytrees, global_params: pytree) -> pytree shaped like
        global_params; ordinary JAX over the secret payloads (and the public global
        model); only its result is revealed.
      payload: what fn expects from the data owners ("update" or "model").
      clip_norm: if set, payloads are clipped (under MPC) before fn sees them.
      name: for the history and progress display.
    """

    def __init__(self, fn: Callable, payload: str = "update", clip_norm: Optional[float] = None,
                 name: str = "custom"):
        super().__init__(clip_norm, None)
        if payload not in ("update", "model"):
            raise ValueError("payload must be 'update' or 'model'")
        if clip_norm is not None and payload != "update":
            raise ValueError("clipping applies to updates; use payload='update'")
        self.fn = fn
        self.payload = payload
        self.name = name

    def aggregate(self, backend, payloads, weights, global_params, noise=()):
        def make():
            clip = self._clipper(backend)
            return lambda ps, g: self.fn(clip(ps), g)
        prog = self._program(backend, "custom", make)
        return prog(list(payloads), backend.public(global_params))


def reptile(eps: float) -> Custom:
    """Reptile meta-learning step under MPC: new = old + eps * (mean(models) - old).

    The data owners send their locally trained models (payload="model")."""
    def interpolate(models, old):
        mean = jax.tree_util.tree_map(lambda *m: sum(m[1:], m[0]) / len(m), *models)
        return jax.tree_util.tree_map(lambda o, m: o + eps * (m - o), old, mean)
    return Custom(interpolate, payload="model", name=f"reptile(eps={eps})")
