"""The two kinds of participants: data owners and the model owner.

A `DataOwner` holds its data, trains the global model locally in plaintext, checks
its update, and deals it into secret shares with its own PRG. What leaves it is a
`SharedUpdate`: secret handles plus public metadata (name, timings).

The `ModelOwner` holds the global model and an evaluation function on its own data.
It has no reference to data owners, shares or the backend: its only inputs are the
revealed aggregate (`receive_aggregate`) -- never an individual update.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import jax
import numpy as np

from spu_lite.runtime.prg import Prg, derive_key, new_key

from .trainer import LocalTrainer
from .validation import UpdateError, check_structure, validate_count, validate_update

log = logging.getLogger("spu_lite.fl.owner")


def _to_numpy(tree):
    return jax.tree_util.tree_map(lambda x: np.array(x, np.float32), tree)


@dataclass
class SharedUpdate:
    """What a data owner hands to the computing parties for one round.

    payload: pytree of secret handles (plaintext arrays only in the plaintext
    baseline); weight: the secret example count (weighted aggregators only)."""
    owner: str
    payload: Any
    weight: Any = None
    seconds: Dict[str, float] = field(default_factory=dict)


class DataOwner:
    """A participant that trains on its own data and contributes secret updates.

    Args:
      name: unique name (used in warnings, errors and the history).
      x, y: the owner's training data (never leave this object).
      trainer: a LocalTrainer (plaintext JAX/optax local training), or
      train_fn: train_fn(params, x, y, key) -> new params, a custom local training
        (TF Encrypted's model_fn); exactly one of trainer / train_fn.
      seed: seeds the owner's JAX key and share PRG (tests only; default: OS randomness).
    """

    def __init__(self, name: str, x, y, trainer: Optional[LocalTrainer] = None,
                 train_fn: Optional[Callable] = None, seed: Optional[int] = None):
        if (trainer is None) == (train_fn is None):
            raise ValueError("give a DataOwner exactly one of trainer= or train_fn=")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"data owner {name!r}: x and y need the same, non-zero length")
        self.name = str(name)
        self._x, self._y = np.asarray(x), np.asarray(y)
        self._train = trainer if trainer is not None else train_fn
        seed_int = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        self._key = jax.random.PRNGKey(seed_int)
        self._prg = Prg(new_key()) if seed is None else Prg(derive_key(str(seed).encode(),
                                                                        f"fl/{name}"))

    @property
    def num_examples(self) -> int:
        return len(self._x)

    def local_update(self, global_params, payload: str = "update"):
        """Train locally from the global model; returns the plaintext payload
        (the update new - old, or the new model) as a numpy pytree."""
        self._key, key = jax.random.split(self._key)
        out = self._train(global_params, self._x, self._y, key)
        with_metrics = isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)
        new = out[0] if with_metrics else out
        if payload == "model":
            return new
        check_structure(self.name, new, global_params, "trained model")
        return jax.tree_util.tree_map(lambda n, o: np.asarray(n, np.float64) - np.asarray(o),
                                      new, global_params)

    def contribute(self, global_params, channel, payload: str = "update",
                   weighted: bool = False, max_abs: float = 2.0 ** 40,
                   max_norm: Optional[float] = None) -> SharedUpdate:
        """Train, validate, then secret-share the payload (and the example count).

        Raises UpdateError (naming this owner) before anything is shared if the
        payload is malformed."""
        t0 = time.perf_counter()
        value = self.local_update(global_params, payload)
        t1 = time.perf_counter()
        try:
            value = validate_update(self.name, value, global_params, max_abs, max_norm,
                                    what=payload)
            count = validate_count(self.name, self.num_examples) if weighted else None
        except UpdateError as e:
            log.warning("%s", e.detail)        # the detail stays with this owner
            raise
        shared = channel.share(value, self._prg)
        weight = channel.share_int(count, self._prg) if weighted else None
        del value
        return SharedUpdate(self.name, shared, weight,
                            {"train": t1 - t0, "share": time.perf_counter() - t1})

    def __repr__(self):
        return f"DataOwner({self.name!r}, {self.num_examples} examples)"


class ModelOwner:
    """Holds the global model; receives only revealed aggregates.

    Args:
      params: the initial global model (a pytree of arrays).
      evaluator_fn: evaluator_fn(params) -> dict of metrics, on the model owner's own
        data (TF Encrypted's evaluator_fn); optional.
      server_lr: for payload="update", params <- params + server_lr * aggregate.
      name: for display.
    """

    def __init__(self, params, evaluator_fn: Optional[Callable] = None,
                 server_lr: float = 1.0, name: str = "model-owner"):
        self._params = _to_numpy(params)
        self.evaluator_fn = evaluator_fn
        self.server_lr = float(server_lr)
        self.name = name

    @property
    def params(self):
        """A copy of the current global model."""
        return jax.tree_util.tree_map(np.copy, self._params)

    def global_model(self):
        """The model sent to the data owners at the start of a round (public to them)."""
        return self.params

    def receive_aggregate(self, aggregate, payload: str = "update") -> None:
        """Apply the revealed aggregate: add it (update) or adopt it (model)."""
        aggregate = _to_numpy(aggregate)
        if payload == "update":
            self._params = jax.tree_util.tree_map(lambda p, a: p + self.server_lr * a,
                                                  self._params, aggregate)
        elif payload == "model":
            self._params = aggregate
        else:
            raise ValueError(f"unknown payload {payload!r}")

    def evaluate(self) -> Dict[str, float]:
        """evaluator_fn on the current model ({} without one)."""
        if self.evaluator_fn is None:
            return {}
        return {k: float(v) for k, v in dict(self.evaluator_fn(self.params)).items()}

    def __repr__(self):
        return f"ModelOwner({self.name!r})"
