"""Training under MPC: an epoch is one secure program (a scan over batches), the
parameters and optimizer state stay secret between epochs, and only the mean loss
of each epoch is revealed (for the progress bar and the history).

    trainer = spu.train.Trainer(loss_fn, optax.sgd(0.01), protocol="aby3")
    params, history = trainer.fit(params, x, y, epochs=10, batch_size=10)
    history.plot("loss")

`loss_fn(params, x, y) -> scalar` is ordinary JAX. The same Trainer runs in plaintext
with protocol=None, so plaintext and MPC results can be put side by side.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import jax
import numpy as np
import optax

from .api import jit
from .frontend import Public, public
from .history import EpochRecord, History
from .secret import reveal


def public_count(opt_state):
    """opt_state with optax's step counters (every `count` field: ScaleByAdamState,
    ScaleByScheduleState, ...) marked public. A step counter is data-independent (it is
    the number of steps taken), so every party may see it; kept secret, the bias
    correction 1 - b^count divides the moments by a secret, which takes them back to f
    bits (docs/fixed-point.md). Pass the state through it on every call:
    `step(params, public_count(opt_state), x, y)`."""
    def mark(path, leaf):
        last = path[-1] if path else None
        if getattr(last, "name", None) == "count" and not isinstance(leaf, Public):
            return public(np.asarray(leaf))
        return leaf
    return jax.tree_util.tree_map_with_path(mark, opt_state)


def batches(x: np.ndarray, batch_size: int) -> np.ndarray:
    """[n, ...] -> [n // batch_size, batch_size, ...]; a last partial batch is dropped."""
    nb = len(x) // batch_size
    if nb == 0:
        raise ValueError(f"batch size {batch_size} exceeds the {len(x)} examples")
    return np.asarray(x[: nb * batch_size]).reshape((nb, batch_size) + x.shape[1:])


def train_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """step((params, opt_state), (x, y)) -> ((params, opt_state), loss): one optimizer
    step, in the form jax.lax.scan takes. The one training loop of spu-lite: the
    Trainer scans it over an epoch's batches under MPC, a federation's data owners
    (spu_lite.fl.LocalTrainer) over sampled minibatches in plaintext."""
    def step(carry, batch):
        p, s = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, *batch)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), loss
    return step


def make_epoch(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """epoch(params, opt_state, xb, yb) -> (params, opt_state, mean loss), a scan over batches."""
    step = train_step(loss_fn, optimizer)

    def epoch(params, opt_state, xb, yb):
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xb, yb))
        return params, opt_state, losses.mean()
    return epoch


class Trainer:
    def __init__(self, loss_fn: Callable, optimizer: optax.GradientTransformation,
                 protocol: Optional[str] = "aby3", **config):
        """protocol=None trains in plaintext (jax.jit) with the very same epoch function."""
        self.optimizer = optimizer
        self.protocol = protocol
        epoch = make_epoch(loss_fn, optimizer)
        if protocol is None:
            self.epoch = jax.jit(epoch)
        else:
            self.epoch = jit(epoch, protocol=protocol, keep_secret=(0, 1), **config)

    def fit(self, params, x, y, epochs: int, batch_size: int, evaluate: Optional[Callable] = None,
            progress: bool = True, reveal_params: bool = True):
        """Train; returns (params, History). evaluate(params) -> dict runs on the revealed
        parameters after each epoch (only if reveal_params; it reveals them, so use it
        when the model owner is entitled to the model)."""
        xb, yb = batches(x, batch_size), batches(y, batch_size)
        opt_state = self.optimizer.init(params)
        history = History(self.protocol or "plaintext", unit="epoch")
        bar = _progress(epochs, progress, self.protocol)
        for e in range(epochs):
            t0 = time.perf_counter()
            state = opt_state if self.protocol is None else public_count(opt_state)
            params, opt_state, loss = self.epoch(params, state, xb, yb)
            record = EpochRecord(e + 1, {"loss": float(loss)},
                                 {"total": time.perf_counter() - t0})
            if evaluate is not None and reveal_params:
                record.metrics.update(evaluate(reveal(params)))
            history.append(record)
            bar.set_postfix(loss=f"{float(loss):.4f}")
            bar.update(1)
        bar.close()
        return (reveal(params) if reveal_params else params), history


def _progress(total: int, enabled: bool, protocol):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=f"train ({protocol or 'plaintext'})", unit="epoch",
                disable=not enabled, leave=False)
