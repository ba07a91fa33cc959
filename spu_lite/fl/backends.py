"""Where aggregation runs: under MPC on the computing parties, or in the clear.

A backend offers three things:
  * `channel`: what a data owner (or a noise contributor) uses to hand in its
    input. For MPC it deals the value into one share per computing party with the
    owner's own PRG (`proto_cls.deal`) and wraps the shares in `spu.Secret` handles;
    the plaintext value never leaves the owner's code path.
  * `compile(fn, keep_secret)`: fn as a program of the computing parties
    (`spu.jit` on the backend's cluster), or plain JAX for the plaintext baseline.
  * `scale(tree, c)`: multiply an aggregate by a public constant (1/n, 1/total
    count) with full relative precision in fixed point, and reveal the result.

`PlainBackend` is ordinary FedAvg (a trusted server sees every update): the
baseline that secure aggregation is compared against.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Dict, List, Optional

import jax
import numpy as np

from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.prg import Prg, derive_key, new_key

from ..api import jit
from ..frontend import ir_type, public
from ..secret import Secret
from .clipping import newton_rsqrt
from .dp import NoiseContributor

_CLUSTER_KEYS = ("nparties", "field", "fxp_bits", "seed", "timeout")


def _as_1d(x, dtype) -> np.ndarray:
    """Scalars travel as shape-(1,) arrays (0-d inputs are not accepted everywhere)."""
    a = np.asarray(x, dtype)
    return a.reshape(1) if a.ndim == 0 else a


def _precise_factors(c: float) -> np.ndarray:
    """c as m * 2^-a * 2^-b with m in [0.5, 1): every factor is exact or has full
    relative precision in fixed point (1/1800 itself would lose 3 significant bits)."""
    m, e = math.frexp(c)
    a = min(max(-e, 0), 16)
    b = max(-e, 0) - a
    p = max(e, 0)
    return np.array([m * 2.0 ** p, 2.0 ** -a, 2.0 ** -b], np.float64)


def _scale_by_factors(tree, f):
    return jax.tree_util.tree_map(lambda x: ((x * f[0]) * f[1]) * f[2], tree)


class PlainChannel:
    """Input channel of the plaintext baseline: the value is handed over as is."""
    secure = False

    def share(self, tree, prg: Prg):
        return jax.tree_util.tree_map(lambda x: _as_1d(x, np.float32) if np.ndim(x) == 0
                                      else np.asarray(x, np.float32), tree)

    def share_int(self, value: int, prg: Prg):
        return _as_1d(value, np.int32)


class SecretChannel:
    """Input channel of an MPC cluster: deals a value into shares with the caller's PRG.

    In the in-process cluster every party's share ends up in one `spu.Secret`
    handle (the parties' memory); in a deployment share r would be sent to party r."""
    secure = True

    def __init__(self, cluster: InProcessCluster):
        self._cluster = cluster
        self._frac = cluster.config.fxp_bits

    def _deal(self, ring_value, prg, like: np.ndarray) -> Secret:
        c = self._cluster
        shares = c.proto_cls.deal(ring_value, c.nparties, prg, c.ring)
        return Secret(shares, ir_type(like, "secret", c.ring.bits, self._frac),
                      like.shape, like.dtype, c)

    def share(self, tree, prg: Prg):
        def one(x):
            a = _as_1d(x, np.float32)
            return self._deal(self._cluster.ring.encode(a, self._frac), prg, a)
        return jax.tree_util.tree_map(one, tree)

    def share_int(self, value: int, prg: Prg):
        a = _as_1d(value, np.int32)
        return self._deal(self._cluster.ring.encode_int(a), prg, a)


class PlainBackend:
    """Plaintext FedAvg: the aggregator sees every update (no MPC)."""
    secure = False
    protocol = None
    nparties = 1

    def __init__(self, seed: Optional[int] = None):
        self.channel = PlainChannel()
        self.max_abs = float(2 ** 44)
        self._seed = seed

    def compile(self, fn: Callable, keep_secret=()) -> Callable:
        jitted = jax.jit(fn)
        return lambda *a: jax.tree_util.tree_map(np.asarray, jitted(*a))

    def public(self, x):
        return x

    def rsqrt(self, bound: float) -> Callable:
        return jax.lax.rsqrt

    def scale(self, tree, c: float):
        return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64) * c, tree)

    def noise_contributors(self) -> List[NoiseContributor]:
        """Central DP: the (trusted) server draws all the noise."""
        return [NoiseContributor("server", _prg(self._seed, "noise/server"))]


class SecureBackend:
    """The computing parties of an in-process spu-lite cluster.

    Args:
      protocol: "aby3", "semi2k" or "ref2k" (plaintext reference, no security).
      cluster: an existing InProcessCluster (default: a new one for this federation).
      rsqrt: how clipping computes 1/||u||: "native" (the runtime's rsqrt),
        "newton" (comparisons + Newton iterations, see clipping.py) or "auto"
        (native if the runtime has an accurate secret rsqrt, else newton).
      **config: ClusterConfig fields (nparties, field, fxp_bits, seed, timeout) and
        runtime options.
    """
    secure = True

    def __init__(self, protocol: str = "aby3", cluster: Optional[InProcessCluster] = None,
                 rsqrt: str = "auto", **config):
        if cluster is None:
            kw = {k: config.pop(k) for k in list(config) if k in _CLUSTER_KEYS}
            cluster = InProcessCluster(ClusterConfig(protocol=protocol, options=dict(config), **kw))
        self.cluster = cluster
        self.protocol = cluster.config.protocol
        self.nparties = cluster.nparties
        self.channel = SecretChannel(cluster)
        frac = cluster.config.fxp_bits
        self.max_abs = cluster.ring.max_abs_real(frac) / 4     # headroom for sums of updates
        if rsqrt not in ("auto", "native", "newton"):
            raise ValueError("rsqrt must be 'auto', 'native' or 'newton'")
        self._rsqrt_mode = rsqrt
        self._scale = self.compile(_scale_by_factors)

    def compile(self, fn: Callable, keep_secret=()) -> Callable:
        cfg = self.cluster.config
        return jit(fn, protocol=self.protocol, cluster=self.cluster, keep_secret=keep_secret,
                   field=cfg.field, fxp_bits=cfg.fxp_bits)

    def public(self, x):
        return public(x)

    def rsqrt(self, bound: float) -> Callable:
        """1/sqrt(t) for secret t in [1, bound] (what clipping needs)."""
        mode = self._rsqrt_mode
        if mode == "auto":
            mode = "native" if native_rsqrt_ok(self.protocol) else "newton"
        if mode == "native":
            return jax.lax.rsqrt
        return lambda t: newton_rsqrt(t, bound)

    def scale(self, tree, c: float):
        """Reveal tree * c (tree secret, c public)."""
        return self._scale(tree, self.public(_precise_factors(c)))

    def noise_contributors(self) -> List[NoiseContributor]:
        """Distributed DP: one contributor per computing party, each with its own PRG."""
        seed = self.cluster.config.seed
        return [NoiseContributor(f"P{r}", _prg(seed, f"noise/P{r}")) for r in range(self.nparties)]


def _prg(seed: Optional[int], label: str) -> Prg:
    return Prg(new_key()) if seed is None else Prg(derive_key(str(seed).encode(), label))


_NATIVE: Dict[str, bool] = {}


def native_rsqrt_ok(protocol: str) -> bool:
    """Whether the runtime evaluates a secret rsqrt accurately on [1, 1e6] (probed once
    per protocol on a throw-away cluster, so a failure cannot break anyone's cluster)."""
    if protocol not in _NATIVE:
        from spu_lite.runtime.fxp import nonlinear
        ok = False
        if "rsqrt" in getattr(nonlinear, "FUNCTIONS", {}):
            t = np.array([1.0, 2.0, 10.0, 1e3, 1e6])
            try:
                probe = InProcessCluster(ClusterConfig(protocol=protocol))
                got = jit(jax.lax.rsqrt, protocol=protocol, cluster=probe)(t)
                ok = bool(np.all(np.abs(got * np.sqrt(t) - 1.0) < 1e-2))
            except Exception:  # noqa: BLE001 - any failure means: do not rely on it
                ok = False
            if not ok:
                warnings.warn(f"the runtime's secret rsqrt is missing or inaccurate for "
                              f"{protocol}; clipping uses the Newton fallback", RuntimeWarning)
        _NATIVE[protocol] = ok
    return _NATIVE[protocol]
