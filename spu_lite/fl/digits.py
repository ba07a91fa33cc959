"""A small federated task for tests and tutorials: sklearn's bundled 8x8 digits
(1797 images, nothing downloaded), split across data owners, and an MLP in plain JAX.

    task = digits_task(n_owners=3, non_iid=False)
    params = init_mlp(jax.random.PRNGKey(0))
    accuracy(params, task.x_test, task.y_test)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..examples import datasets


@dataclass
class DigitsTask:
    """Train split per owner, a held-out test set (the model owner's), and the
    pooled training data (for the centralised baseline)."""
    owners: List[Tuple[np.ndarray, np.ndarray]]
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def x_train(self) -> np.ndarray:
        return np.concatenate([x for x, _ in self.owners])

    @property
    def y_train(self) -> np.ndarray:
        return np.concatenate([y for _, y in self.owners])


def digits_task(n_owners: int = 3, test_size: float = 0.25, non_iid: Optional[float] = None,
                seed: int = 0) -> DigitsTask:
    """Digits scaled to [0, 1], a stratified test split, the rest dealt to owners.

    non_iid: None for a uniform random (IID) split, else the concentration alpha of
    a Dirichlet label skew (smaller: more skewed; 0.5 is strongly non-IID)."""
    x_tr, x_te, y_tr, y_te = datasets.digits(test_size, random_state=seed)
    rng = np.random.default_rng(seed)
    if non_iid is None:
        parts = np.array_split(rng.permutation(len(x_tr)), n_owners)
    else:
        parts = [[] for _ in range(n_owners)]
        for label in range(10):
            idx = rng.permutation(np.flatnonzero(y_tr == label))
            cuts = (np.cumsum(rng.dirichlet([non_iid] * n_owners)) * len(idx)).astype(int)[:-1]
            for part, chunk in zip(parts, np.split(idx, cuts)):
                part.extend(chunk.tolist())
        parts = [np.array(sorted(p), dtype=np.int64) for p in parts]
    return DigitsTask([(x_tr[p], y_tr[p]) for p in parts], x_te, y_te)


def init_mlp(key, sizes: Sequence[int] = (64, 32, 10)):
    """{'w0','b0','w1','b1',...} with Glorot-uniform weights and zero biases."""
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, k = jax.random.split(key)
        lim = float(np.sqrt(6.0 / (a + b)))
        params[f"w{i}"] = np.asarray(jax.random.uniform(k, (a, b), minval=-lim, maxval=lim))
        params[f"b{i}"] = np.zeros(b, np.float32)
    return params


def mlp_apply(params, x):
    """Logits of the MLP (relu hidden layers)."""
    n = len(params) // 2
    h = x
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = jax.nn.relu(h)
    return h


def cross_entropy(params, x, y):
    """Mean softmax cross-entropy of the MLP on integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(mlp_apply(params, x), y).mean()


def accuracy(params, x, y) -> float:
    return float(jnp.mean(jnp.argmax(mlp_apply(params, x), axis=-1) == y))


def evaluator(x_test, y_test):
    """An evaluator_fn for the model owner: accuracy and loss on its test set."""
    def evaluate(params):
        return {"accuracy": accuracy(params, x_test, y_test),
                "loss": float(cross_entropy(params, x_test, y_test))}
    return evaluate


def train_centralised(params, x, y, trainer, rounds: int, seed: int = 0):
    """Plaintext training on the pooled data with the same trainer and as many
    optimizer steps as `rounds` rounds of one data owner: the reference accuracy."""
    key = jax.random.PRNGKey(seed)
    for _ in range(rounds):
        key, k = jax.random.split(key)
        params, _ = trainer(params, x, y, k)
    return params
