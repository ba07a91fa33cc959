"""The two training tutorials as reusable setups (tests, notebooks and benchmarks
share them, so they measure the same thing):

- breast_cancer_mlp(): SecretFlow SPU's "NN training on breast cancer": Flax MLP
  [30, 15, 8, 1] with relu, loss mean((pred - y)^2 / 2), SGD 0.01, batch 10, 10 epochs;
  Alice holds features 0-14, Bob features 15-29 and the labels.
- mnist_mlp(): PySyft's "encrypted training on MNIST": MLP 784-128-64-10 with relu,
  MSE on one-hot labels, SGD 0.02, batch 64, 10 epochs over 640 training items; on
  sklearn's 8x8 digits upsampled to 28x28 (see datasets.digits_28x28).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import datasets


class MLP(nn.Module):
    features: tuple = (30, 15, 8, 1)     # first entry: input width (not a layer)

    @nn.compact
    def __call__(self, x):
        for f in self.features[1:-1]:
            x = nn.relu(nn.Dense(f)(x))
        return nn.Dense(self.features[-1])(x)


@dataclass
class Setup:
    model: nn.Module
    loss_fn: Callable
    optimizer: Any
    params: Any
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    epochs: int
    batch_size: int


def breast_cancer_mlp(seed: int = 1) -> Setup:
    model = MLP((30, 15, 8, 1))

    def loss_fn(params, x, y):
        d = model.apply(params, x) - y
        return jnp.mean(d * d / 2.0)
    x_tr, x_te, y_tr, y_te = datasets.breast_cancer()
    params = model.init(jax.random.PRNGKey(seed), jnp.ones((10, 30)))
    return Setup(model, loss_fn, optax.sgd(0.01), params, x_tr, y_tr, x_te, y_te, 10, 10)


def split_features(x: np.ndarray):
    """Alice's columns 0-14 and Bob's 15-29 (the model sees their concatenation)."""
    return x[:, :15], x[:, 15:]


def auc(setup: Setup, params) -> float:
    from sklearn.metrics import roc_auc_score
    scores = np.asarray(setup.model.apply(params, setup.x_test)).ravel()
    return float(roc_auc_score(setup.y_test.ravel(), scores))


def mnist_mlp(seed: int = 0, n_train: int = 640, inputs: int = 784) -> Setup:
    model = MLP((inputs, 128, 64, 10))

    def loss_fn(params, x, y):
        d = model.apply(params, x) - jax.nn.one_hot(y, 10)
        return jnp.mean(d * d)
    x_tr, x_te, y_tr, y_te = datasets.digits_28x28()
    params = model.init(jax.random.PRNGKey(seed), jnp.ones((1, inputs)))
    return Setup(model, loss_fn, optax.sgd(0.02), params, x_tr[:n_train], y_tr[:n_train],
                 x_te, y_te, 10, 64)


class CNN(nn.Module):
    """28x28 digits: a strided 5x5 convolution (4 maps of 8x8), relu, 2x2 max pooling,
    a dense layer to 10 scores."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], 28, 28, 1)
        x = nn.relu(nn.Conv(4, (5, 5), strides=(3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def digits_cnn(seed: int = 0, n_train: int = 640) -> Setup:
    """The convolutional counterpart of mnist_mlp, on the same 28x28 digits, with softmax
    cross-entropy (about 0.85 test accuracy after 6 epochs)."""
    model = CNN()

    def loss_fn(params, x, y):
        # one-hot labels: the integer-label form gathers at secret indices
        return optax.softmax_cross_entropy(model.apply(params, x), jax.nn.one_hot(y, 10)).mean()
    x_tr, x_te, y_tr, y_te = datasets.digits_28x28()
    params = model.init(jax.random.PRNGKey(seed), jnp.ones((1, 784)))
    return Setup(model, loss_fn, optax.sgd(0.2), params, x_tr[:n_train], y_tr[:n_train],
                 x_te, y_te, 6, 32)


def accuracy(setup: Setup, params) -> float:
    pred = np.argmax(np.asarray(setup.model.apply(params, setup.x_test)), axis=1)
    return float((pred == setup.y_test).mean())
