"""Cross-silo federated learning on a networked cluster (spu_lite.deploy).

Each computing node is also a data owner (e.g. three hospitals, each running one
party process next to its own data); the model owner is the driver. Every round:

  1. the driver sends the current global model (public) to every owner's node, as
     JSON arguments of a loader the owner registered itself (`loaders:` in the
     cluster file: the owner decides what code touches its data);
  2. each node trains locally in plaintext and secret-shares its update itself
     (a party-owned input: the update never leaves the node in the clear);
  3. the nodes average the updates under MPC; only the mean is revealed, to the
     driver (the model owner).

The driver's process only ever receives the aggregate (tests/e2e/test_fl_network.py
checks the raw frames it receives). Aggregators of updates from spu_lite.fl work here
too -- Mean with clipping (under MPC, through secrets kept at the nodes between the
sum and the scaling), Mean(dp=DPConfig(...)) with distributed noise (every computing
node draws its share with the built-in `spu_lite.gaussian_noise` loader and shares it
itself, so nobody knows the total noise), WeightedMean (each owner also shares its
example count, through a second loader), and Custom(payload="update").

Consent (spu_lite/deploy/policy.py): every round runs the same programs -- the secure
sum, whose result stays secret-shared at the nodes, then its opening to the driver --
with the same digests, whatever the model and the loader arguments. A data owner whose
policy is `rules: [outputs-only-to-me]` runs the sum; the opening reads a kept secret
made from its update, so the first round is refused and recorded as pending until its
operator approves it (`spu-lite approve`). From then on the node reveals exactly that
aggregate and nothing else: the same opening applied to any other kept secret (say,
one owner's update alone) has another digest and is refused
(tests/e2e/test_consent_fl.py).

A node-side loader looks like

    def local_update(params_json, shard, n_shards, steps, lr):
        params = params_from_json(params_json)
        ... train on this node's data ...
        return update                       # pytree of arrays shaped like params
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence

import jax
import numpy as np

from ..api import jit
from ..deploy.handles import party
from ..deploy.loaders import VALIDATED_UPDATE
from ..frontend import public
from .aggregators import Aggregator, Mean
from .backends import _precise_factors, _scale_by_factors
from .dp import epsilon as dp_epsilon
from .history import History, RoundRecord
from .params_json import params_from_json, params_to_json  # noqa: F401 (re-exported)


def _shapes(tree) -> object:
    """The shapes of a pytree of arrays as JSON (nested dicts of shape lists)."""
    if isinstance(tree, dict):
        return {str(k): _shapes(v) for k, v in tree.items()}
    return [int(d) for d in np.shape(tree)]



class NetworkBackend:
    """The computing nodes of a networked cluster, for spu_lite.fl aggregators."""
    secure = True

    def __init__(self, cluster):
        self.cluster = cluster
        self.nparties = cluster.nparties
        self.max_abs = cluster.ring.max_abs_real(cluster.spec.fxp_bits) / 4   # room for sums
        self._scale = self.compile(_scale_by_factors)

    def compile(self, fn: Callable, keep_secret=()) -> Callable:
        return jit(fn, cluster=self.cluster, keep_secret=keep_secret)

    def public(self, x):
        return public(x)

    def rsqrt(self, bound: float) -> Callable:
        return jax.lax.rsqrt

    def scale(self, tree, c: float):
        """Reveal tree * c (tree secret -- here a secret kept at the nodes -- c public)."""
        return self._scale(tree, public(_precise_factors(c)))

    def noise_contributors(self):
        """Distributed DP: every computing node draws its own share of the noise (the
        built-in `spu_lite.gaussian_noise` loader) and secret-shares it itself."""
        return [self.cluster.spec.names[r] for r in range(self.nparties)]


class NetworkFederation:
    """FedAvg of updates with secure aggregation on networked nodes.

    Args:
      cluster: a spu_lite.deploy NetworkCluster (the caller is the model owner).
      owners: names of the nodes that contribute an update each round.
      loader: the name of the update loader every owner registered at its node.
      loader_args: extra JSON arguments for the loader (e.g. steps, learning rate);
        every owner also gets `shard` (its index) and `n_shards`.
      evaluate: evaluate(params) -> dict of metrics (the model owner's own test data).
      aggregator: an spu_lite.fl aggregator of updates (default: Mean()).
      weight_loader: for weighted aggregators (WeightedMean): the name of a loader every
        owner registered that returns its example count (an int array of shape (1,));
        called with the same arguments as `loader` except the model.
    """

    def __init__(self, cluster, owners: Sequence[str], loader: str,
                 loader_args: Optional[Dict] = None, evaluate: Optional[Callable] = None,
                 aggregator: Optional[Aggregator] = None, weight_loader: Optional[str] = None):
        if len(owners) < 2:
            raise ValueError("secure aggregation needs at least 2 data owners "
                             "(the mean of one update is that update)")
        self.aggregator = aggregator or Mean()
        if self.aggregator.payload == "model":
            raise ValueError(f"{self.aggregator!r}: networked federations aggregate updates")
        if self.aggregator.weighted and not weight_loader:
            raise ValueError(f"{self.aggregator!r} needs weight_loader: the name of a loader "
                             f"returning each owner's example count")
        self.weight_loader = weight_loader
        self.cluster, self.owners, self.loader = cluster, list(owners), loader
        self.loader_args = dict(loader_args or {})
        self.evaluate = evaluate
        self.backend = NetworkBackend(cluster)
        dp = self.aggregator.dp
        self._noise = self.backend.noise_contributors() if dp and dp.noise_multiplier > 0 else []
        self.history = History()

    def run_round(self, params, index: int) -> tuple:
        t0 = time.perf_counter()
        as_json = params_to_json(params)
        # each owner's node runs its own loader and validates the update as an in-process
        # owner does (range with headroom for the sum, the norm bound if any) before sharing
        updates = [party(name)(VALIDATED_UPDATE)(self.loader, as_json, self.backend.max_abs,
                                                 self.aggregator.max_norm, shard=i,
                                                 n_shards=len(self.owners), **self.loader_args)
                   for i, name in enumerate(self.owners)]
        noise = []
        if self._noise:          # each node's share of N(0, sigma^2), drawn and shared there
            std = self.aggregator.dp.contributor_std(len(self._noise))
            noise = [party(node)("spu_lite.gaussian_noise")(_shapes(params), std=std)
                     for node in self._noise]
        weights = None
        if self.aggregator.weighted:    # each owner's example count, shared by the owner too
            weights = [party(name)(self.weight_loader)(shard=i, n_shards=len(self.owners),
                                                       **self.loader_args)
                       for i, name in enumerate(self.owners)]
        mean = self.aggregator.aggregate(self.backend, updates, weights, params, noise)
        t1 = time.perf_counter()
        new = jax.tree_util.tree_map(lambda p, u: np.asarray(p) + np.asarray(u), params, mean)
        metrics = self.evaluate(new) if self.evaluate else {}
        t2 = time.perf_counter()
        dp = self.aggregator.dp
        eps = dp_epsilon(dp.noise_multiplier, len(self.history) + 1, dp.delta) if dp else None
        record = RoundRecord(round=index, participants=list(self.owners), metrics=metrics,
                             seconds={"aggregate": t1 - t0, "evaluate": t2 - t1, "total": t2 - t0},
                             epsilon=eps)
        return new, record

    def epsilon(self, delta: Optional[float] = None) -> Optional[float]:
        """(epsilon, delta)-DP of the rounds run so far (None without DP, or without the
        dp-accounting package)."""
        dp = self.aggregator.dp
        if dp is None:
            return None
        return dp_epsilon(dp.noise_multiplier, len(self.history), delta or dp.delta)

    def fit(self, params, rounds: int):
        """Run `rounds` rounds; returns (final params, History)."""
        for r in range(1, rounds + 1):
            params, record = self.run_round(params, r)
            self.history.append(record)
        return params, self.history
