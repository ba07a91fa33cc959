"""Local training on a data owner's own data, in plaintext JAX/optax.

    trainer = LocalTrainer(loss_fn, optax.sgd(0.1), steps=20, batch_size=32)
    new_params, metrics = trainer(params, x, y, key)

`loss_fn(params, x, y) -> scalar`. Each call starts a fresh optimizer state (as in
FedAvg) and runs `steps` minibatch steps (batches sampled with replacement) inside
one jax.jit-compiled loop. One trainer may serve many data owners; data of the same
shape share one compilation.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..train import train_step


class LocalTrainer:
    """`steps` minibatch steps of `optimizer` on `loss_fn`.

    Args:
      loss_fn: loss_fn(params, x, y) -> scalar (ordinary JAX).
      optimizer: an optax GradientTransformation (default: SGD, learning rate 0.1).
      steps: optimizer steps per round.
      batch_size: examples per step (capped at the owner's number of examples).
    """

    def __init__(self, loss_fn: Callable, optimizer: optax.GradientTransformation = None,
                 steps: int = 10, batch_size: int = 32):
        if steps < 1 or batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        self.loss_fn = loss_fn
        self.optimizer = optimizer if optimizer is not None else optax.sgd(0.1)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self._run = jax.jit(self._train, static_argnums=(4,))

    def _train(self, params, x, y, key, batch_size):
        opt_state = self.optimizer.init(params)
        train = train_step(self.loss_fn, self.optimizer)

        def step(carry, k):
            idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])
            return train(carry, (x[idx], y[idx]))

        (params, _), losses = jax.lax.scan(step, (params, opt_state),
                                           jax.random.split(key, self.steps))
        return params, jnp.mean(losses)

    def __call__(self, params, x, y, key) -> Tuple[object, Dict[str, float]]:
        """Train from `params` on (x, y); returns (new params as numpy, {"loss": mean loss})."""
        bs = min(self.batch_size, int(np.shape(x)[0]))
        new, loss = self._run(params, jnp.asarray(x), jnp.asarray(y), key, bs)
        return jax.tree_util.tree_map(np.asarray, new), {"loss": float(loss)}
