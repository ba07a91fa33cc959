"""Differential privacy for secure aggregation (DP-FedAvg with distributed noise).

Semantics (Mean aggregator, payload="update"):
  * every update u_i is clipped under MPC to L2 norm at most `clip_norm` C:
        u_i <- u_i * min(1, C / ||u_i||)
  * Gaussian noise of standard deviation sigma = noise_multiplier * C is added to the
    SUM of the clipped updates, inside MPC, before anything is revealed; the revealed
    mean is  (sum_i clip(u_i) + N(0, sigma^2 I)) / n,  so the noise std on the mean is
        noise_multiplier * clip_norm / n_updates.
  * on real nodes (spu_lite.fl.NetworkFederation) nobody knows the total noise: each of
    the m noise contributors (the computing parties) draws its own Gaussian of variance
    sigma^2 / (m - t) in its own process and secret-shares it as an input; the parties
    add the m shares under MPC. t is `collusion_threshold`: any t contributors that
    pool their draws still leave at least sigma^2 of unknown noise (t = 0 gives
    exactly sigma^2 in total).
  * in-process (spu_lite.fl.Federation) the same arithmetic runs, each contributor with
    its own PRG, but every draw is made by the coordinator's thread in the one Python
    process that also holds the data owners' plaintext and every party's shares: the
    simulation separates what each role is HANDED (the model owner gets only the
    aggregate), not what the process could read. It is for measuring accuracy and
    cost, not a trust boundary (docs/security.md, "Hardening").
  * the guarantee is user-level (one data owner's whole contribution to a round may be
    added or removed) and holds per round whatever the number of participants,
    because the sensitivity of the clipped sum is C. Over `rounds` rounds in which
    every data owner takes part (no sampling), the privacy loss is that of `rounds`
    Gaussian mechanisms with noise multiplier z; `epsilon()` reports it with the RDP
    accountant of Google's `dp-accounting` (optional dependency: pip install
    "spu-lite[dp]"), or None when that package is not installed.
  * caveats: noise is sampled in float64 from an AES-CTR keystream (Box-Muller) and
    rounded to the fixed-point grid (2^-18 by default); floating-point samplers are
    known to leak in the low bits (Mironov 2012), so treat the reported epsilon as the
    idealised mechanism's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from spu_lite.runtime.prg import Prg


@dataclass(frozen=True)
class DPConfig:
    """Clipping bound and noise of DP-FedAvg; see the module docstring for semantics.

    Args:
      clip_norm: C, the L2 bound every update is clipped to (under MPC).
      noise_multiplier: z; the noise std on the sum is z * C (on the mean z * C / n).
      delta: the delta at which `epsilon` is reported.
      collusion_threshold: t, the number of noise contributors that may pool their
        draws while the remaining noise still has variance sigma^2.
    """
    clip_norm: float
    noise_multiplier: float
    delta: float = 1e-5
    collusion_threshold: int = 0

    def __post_init__(self):
        if not self.clip_norm > 0:
            raise ValueError("DPConfig.clip_norm must be positive")
        if not self.noise_multiplier >= 0:
            raise ValueError("DPConfig.noise_multiplier must be >= 0")
        if not 0 < self.delta < 1:
            raise ValueError("DPConfig.delta must be in (0, 1)")
        if self.collusion_threshold < 0:
            raise ValueError("DPConfig.collusion_threshold must be >= 0")

    @property
    def sum_std(self) -> float:
        """Std of the total noise on the sum of clipped updates (z * C)."""
        return self.noise_multiplier * self.clip_norm

    def contributor_std(self, contributors: int) -> float:
        """Std of one contributor's draw: sigma / sqrt(m - t)."""
        honest = contributors - self.collusion_threshold
        if honest < 1:
            raise ValueError(f"collusion_threshold {self.collusion_threshold} needs more than "
                             f"{contributors} noise contributors")
        return self.sum_std / math.sqrt(honest)


def gaussian(prg: Prg, shape, std: float) -> np.ndarray:
    """N(0, std^2) samples (float64) from a PRG keystream by Box-Muller."""
    n = int(np.prod(shape, dtype=np.int64))
    bits = prg.uniform((2, n), np.uint64) >> np.uint64(11)          # 53 random bits each
    u1 = (bits[0].astype(np.float64) + 1.0) * 2.0 ** -53             # (0, 1]
    u2 = bits[1].astype(np.float64) * 2.0 ** -53                     # [0, 1)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return (std * z).reshape(shape)


class NoiseContributor:
    """One source of distributed noise, in-process (on real nodes each node draws its
    own with the `spu_lite.gaussian_noise` loader instead).

    Draws its Gaussian from its own PRG and secret-shares it through the same input
    channel data owners use, so no other role is handed the draw; but `contribute`
    runs in the caller's thread, so the draw exists in that process's memory."""

    def __init__(self, name: str, prg: Prg):
        self.name = name
        self._prg = prg

    def contribute(self, like, std: float, channel):
        """A sharing of fresh noise with the structure and shapes of `like`."""
        import jax
        noise = jax.tree_util.tree_map(
            lambda x: gaussian(self._prg, np.shape(x), std).astype(np.float32), like)
        return channel.share(noise, self._prg)


def epsilon(noise_multiplier: float, rounds: int, delta: float,
            sampling_rate: float = 1.0) -> Optional[float]:
    """(epsilon at `delta`) of `rounds` Gaussian mechanisms with noise multiplier z
    (Poisson-subsampled at `sampling_rate` if < 1), by dp-accounting's RDP accountant.

    Returns None if dp-accounting is not installed, inf if z == 0."""
    if rounds <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    try:
        import dp_accounting
        from dp_accounting import rdp
    except ImportError:
        return None
    event = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1.0:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
    return float(accountant.get_epsilon(delta))
