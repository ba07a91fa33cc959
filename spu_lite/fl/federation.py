"""Federated learning with secure aggregation: the round loop.

    fed = Federation(model_owner, data_owners, aggregator=Mean(), protocol="aby3")
    history = fed.fit(rounds=20, evaluate_every=2)

Each round:
  1. the model owner's current model goes to every data owner (it is public to them);
  2. the data owners train locally in parallel threads, validate their payloads and
     deal them into secret shares (an owner that raises or misses the deadline is
     skipped with a warning; a malformed payload raises UpdateError naming the owner,
     or is skipped with on_malformed="skip");
  3. the computing parties aggregate the shares under MPC (plus distributed noise
     with DP) and reveal only the aggregate;
  4. the model owner applies the aggregate, and evaluates every `evaluate_every` rounds.

The Federation is the coordinator of the computing parties: it handles secret
handles and public metadata, and hands the model owner nothing but the aggregate.
protocol=None runs plaintext FedAvg (a trusted server) for comparison.

In-process, every role is an object of one Python process: data owners' plaintext,
every party's shares and PRG keys, and the DP noise draws (made by this coordinator's
thread) all live in the same memory. The simulation separates what each role is
handed, not what the process can read; the separation docs/federated.md describes
holds on real nodes (NetworkFederation). See docs/security.md, "Hardening".
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np

from .aggregators import Aggregator, Mean
from .backends import PlainBackend, SecureBackend
from .dp import epsilon as dp_epsilon
from .history import History, RoundRecord
from .owners import DataOwner, ModelOwner, SharedUpdate
from .validation import UpdateError, check_structure

log = logging.getLogger("spu_lite.fl.owner")


class Federation:
    """A model owner, its data owners, an aggregator and the computing parties.

    Args:
      model_owner: the ModelOwner.
      data_owners: DataOwners with unique names.
      aggregator: Mean() (default), WeightedMean(), Custom(fn), reptile(eps), ...
      protocol: "aby3" (default), "semi2k", "ref2k", or None for plaintext FedAvg.
      payload: "update" (new - old, default) or "model"; must agree with the
        aggregator's requirement, if it has one.
      timeout: seconds a data owner has (from the start of the round) to train and
        share; late owners are skipped for the round.
      min_participants: a round with fewer usable updates raises RuntimeError.
        Default: 2 (or 1 for a single data owner), because the aggregate of a single
        update IS that update.
      on_malformed: "raise" (default) or "skip" for updates that fail validation.
      progress: show a tqdm progress bar.
      backend: an explicit PlainBackend / SecureBackend (overrides protocol/config).
      rsqrt: clipping's rsqrt under MPC: "auto", "native" or "newton".
      **config: cluster configuration (nparties, field, fxp_bits, seed, timeout of
        the MPC links is `mpc_timeout`), passed to the SecureBackend.
    """

    def __init__(self, model_owner: ModelOwner, data_owners: Sequence[DataOwner],
                 aggregator: Optional[Aggregator] = None, protocol: Optional[str] = "aby3",
                 payload: Optional[str] = None, timeout: float = 600.0,
                 min_participants: Optional[int] = None, on_malformed: str = "raise",
                 progress: bool = True,
                 backend=None, rsqrt: str = "auto", **config):
        if not isinstance(model_owner, ModelOwner):
            raise TypeError("model_owner must be a ModelOwner")
        self.data_owners = list(data_owners)
        names = [o.name for o in self.data_owners]
        if not names:
            raise ValueError("a federation needs at least one data owner")
        if len(set(names)) != len(names):
            raise ValueError(f"data owner names must be unique, got {names}")
        self.aggregator = aggregator if aggregator is not None else Mean()
        want = self.aggregator.payload
        if payload is not None and want is not None and payload != want:
            raise ValueError(f"{self.aggregator!r} aggregates {want}s, not {payload}s")
        self.payload = payload or want or "update"
        if self.payload not in ("update", "model"):
            raise ValueError("payload must be 'update' or 'model'")
        if on_malformed not in ("raise", "skip"):
            raise ValueError("on_malformed must be 'raise' or 'skip'")
        self.model_owner = model_owner
        self.timeout = float(timeout)
        self.min_participants = (min(2, len(names)) if min_participants is None
                                 else int(min_participants))
        self.on_malformed = on_malformed
        self.progress = progress
        if "mpc_timeout" in config:
            config["timeout"] = config.pop("mpc_timeout")
        if backend is None:
            backend = (PlainBackend(config.get("seed")) if protocol is None
                       else SecureBackend(protocol, rsqrt=rsqrt, **config))
        self.backend = backend
        dp = self.aggregator.dp
        noisy = dp is not None and dp.noise_multiplier > 0
        self._noise = backend.noise_contributors() if noisy else []
        label = backend.protocol or "plaintext"
        self.history = History(f"{label}, {self.aggregator!r}")
        self.round = 0

    # -- one round ---------------------------------------------------------------------
    def _collect(self, params) -> Tuple[List[SharedUpdate], Dict[str, str]]:
        """Every data owner trains and shares, in parallel, before the deadline.

        Owners run in daemon threads: one that hangs is abandoned (its late result is
        discarded) and cannot keep the process alive."""
        agg, backend = self.aggregator, self.backend
        kw = dict(channel=backend.channel, payload=self.payload, weighted=agg.weighted,
                  max_abs=backend.max_abs, max_norm=agg.max_norm)
        deadline = time.perf_counter() + self.timeout
        running = [(o, _start(o, params, kw)) for o in self.data_owners]
        shared, dropped = [], {}
        for owner, (thread, box) in running:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
            if thread.is_alive():
                dropped[owner.name] = f"timed out after {self.timeout:g} s"
                continue
            try:
                if "error" in box:
                    raise box["error"]
                check_structure(owner.name, box["result"].payload, params, self.payload)
                shared.append(box["result"])
            except UpdateError as e:
                if self.on_malformed == "raise":
                    raise
                dropped[owner.name] = f"malformed update: {e}"
            except Exception as e:  # noqa: BLE001 - a failing data owner drops out
                # its text may quote the owner's data: the model owner sees only the type
                log.warning("data owner %r raised %s: %s", owner.name, type(e).__name__, e)
                dropped[owner.name] = f"raised {type(e).__name__}"
        for name, why in dropped.items():
            warnings.warn(f"round {self.round}: data owner {name!r} dropped out ({why}); the "
                          f"round continues with {len(shared)} of {len(self.data_owners)} "
                          f"data owners", RuntimeWarning, stacklevel=3)
        return shared, dropped

    def run_round(self, evaluate: bool = True) -> RoundRecord:
        """Run one round; returns (and records) its RoundRecord."""
        self.round += 1
        t0 = time.perf_counter()
        params = self.model_owner.global_model()
        shared, dropped = self._collect(params)
        if len(shared) < max(1, self.min_participants):
            raise RuntimeError(f"round {self.round}: only {len(shared)} data owner(s) delivered "
                               f"an update (min_participants={self.min_participants}); "
                               f"dropped: {dropped}")
        t1 = time.perf_counter()
        aggregate = self._aggregate(params, shared)
        participants = [s.owner for s in shared]
        del shared
        t2 = time.perf_counter()
        self.model_owner.receive_aggregate(aggregate, self.payload)
        metrics = self.model_owner.evaluate() if evaluate else {}
        t3 = time.perf_counter()
        dp = self.aggregator.dp
        released = len(self.history) + 1          # aggregates revealed so far, this one included
        eps = dp_epsilon(dp.noise_multiplier, released, dp.delta) if dp is not None else None
        record = RoundRecord(self.round, participants, dropped,
                             {"local": t1 - t0, "aggregate": t2 - t1, "evaluate": t3 - t2,
                              "total": t3 - t0}, metrics, eps)
        self.history.append(record)
        return record

    def _aggregate(self, params, shared: List[SharedUpdate]):
        """Noise contributions, then the aggregator's programs; the revealed aggregate
        reshaped like the global model."""
        dp = self.aggregator.dp
        noise = []
        if self._noise:
            std = dp.contributor_std(len(self._noise))
            noise = [c.contribute(params, std, self.backend.channel) for c in self._noise]
        weights = [s.weight for s in shared] if self.aggregator.weighted else None
        out = self.aggregator.aggregate(self.backend, [s.payload for s in shared], weights,
                                        params, noise)
        return jax.tree_util.tree_map(lambda a, p: np.asarray(a, np.float32).reshape(np.shape(p)),
                                      out, params)

    # -- the loop ------------------------------------------------------------------------
    def fit(self, rounds: int, evaluate_every: int = 1,
            callback: Optional[Callable[[RoundRecord], Optional[bool]]] = None) -> History:
        """Run `rounds` rounds; evaluate every `evaluate_every` rounds and after the
        last. callback(record) runs after each round; returning True stops early.
        Returns the History (also kept in self.history)."""
        if rounds < 1 or evaluate_every < 1:
            raise ValueError("rounds and evaluate_every must be positive")
        bar = _progress(rounds, self.progress, self.history.label)
        try:
            for i in range(rounds):
                rec = self.run_round(evaluate=(i + 1) % evaluate_every == 0 or i + 1 == rounds)
                bar.update(1)
                post = {k: f"{v:.4g}" for k, v in rec.metrics.items()}
                if rec.epsilon is not None:
                    post["eps"] = f"{rec.epsilon:.3g}"
                if rec.dropped:
                    post["dropped"] = len(rec.dropped)
                if post:
                    bar.set_postfix(post)
                if callback is not None and callback(rec):
                    break
        finally:
            bar.close()
        return self.history

    def epsilon(self, delta: Optional[float] = None) -> Optional[float]:
        """(epsilon, delta)-DP of the rounds run so far (None without DP or without
        the dp-accounting package)."""
        dp = self.aggregator.dp
        if dp is None:
            return None
        return dp_epsilon(dp.noise_multiplier, len(self.history), delta or dp.delta)


def _start(owner: DataOwner, params, kw) -> Tuple[threading.Thread, Dict]:
    """owner.contribute(params, **kw) in a daemon thread; the result or error lands in box."""
    box: Dict = {}

    def target():
        try:
            box["result"] = owner.contribute(params, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the coordinator
            box["error"] = e
    thread = threading.Thread(target=target, name=f"fl-data-owner-{owner.name}", daemon=True)
    thread.start()
    return thread, box


def _progress(total: int, enabled: bool, label: str):
    if enabled:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm          # tqdm.auto warns in notebooks without ipywidgets
    return tqdm(total=total, desc=f"federated ({label})", unit="round", disable=not enabled,
                leave=False)
