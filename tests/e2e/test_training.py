"""Secure training end to end: the two seed tutorials, optimizers, losses, memory."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import spu_lite as spu
from spu_lite.examples import datasets
from spu_lite.examples import tutorials
from spu_lite.train import Trainer, make_epoch


def _train(s, protocol):
    """A tutorial setup trained with its own hyperparameters (protocol None: plaintext)."""
    return Trainer(s.loss_fn, s.optimizer, protocol=protocol).fit(
        s.params, s.x_train, s.y_train, s.epochs, s.batch_size, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_breast_cancer_auc_matches_plaintext(protocol):
    s = tutorials.breast_cancer_mlp()
    (p_plain, _), (p_mpc, hist) = _train(s, None), _train(s, protocol)
    auc_plain, auc_mpc = tutorials.auc(s, p_plain), tutorials.auc(s, p_mpc)
    assert auc_plain > 0.95
    assert abs(auc_mpc - auc_plain) <= 0.005
    assert len(hist["loss"]) == s.epochs and hist["loss"][-1] < hist["loss"][0]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_mnist_style_accuracy_within_two_points(protocol):
    s = tutorials.mnist_mlp()
    (p_plain, _), (p_mpc, _) = _train(s, None), _train(s, protocol)
    acc_plain, acc_mpc = tutorials.accuracy(s, p_plain), tutorials.accuracy(s, p_mpc)
    assert acc_plain > 0.4
    assert abs(acc_mpc - acc_plain) <= 0.02


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_digits_cnn_accuracy_within_two_points(protocol):
    """A convolutional network (conv, relu, max_pool, dense; softmax cross-entropy)
    trained inside MPC: forward and gradients of conv and max_pool under the protocol."""
    s = tutorials.digits_cnn()
    (p_plain, _), (p_mpc, hist) = _train(s, None), _train(s, protocol)
    acc_plain, acc_mpc = tutorials.accuracy(s, p_plain), tutorials.accuracy(s, p_mpc)
    assert acc_plain > 0.8
    assert abs(acc_mpc - acc_plain) <= 0.02
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]


@pytest.mark.parametrize("name,opt", [("sgd", optax.sgd(0.05)), ("momentum", optax.sgd(0.05, momentum=0.9))])
def test_optimizers_inside_mpc_match_plaintext(name, opt):
    s = tutorials.breast_cancer_mlp()
    xb, yb = s.x_train[None, :20], s.y_train[None, :20]
    epoch = make_epoch(s.loss_fn, opt)
    st = opt.init(s.params)
    want = epoch(s.params, st, xb, yb)
    got = spu.jit(epoch, protocol="aby3", seed=3)(s.params, st, xb, yb)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), atol=2e-3)


def test_adam_inside_mpc_matches_plaintext_when_gradients_are_representable():
    """Adam keeps v = b2 v + (1 - b2) g^2; at 18 fractional bits (1 - b2) g^2 underflows
    to 0 for |g| < ~0.06 and the update degrades towards lr * g / eps (README: Training).
    With gradients of a sensible fixed-point size it matches plaintext."""
    rng = np.random.default_rng(0)
    x, w_true = rng.normal(size=(32, 4)), np.array([1.5, -2.0, 0.5, 3.0])
    y = x @ w_true
    loss = lambda w, x, y: jnp.mean((x @ w - y) ** 2)
    opt = optax.adam(0.05)
    epoch = make_epoch(loss, opt)
    w0 = np.zeros(4)
    st = opt.init(w0)
    xb, yb = x.reshape(4, 8, 4), y.reshape(4, 8)
    want = epoch(w0, st, xb, yb)
    got = spu.jit(epoch, protocol="aby3", seed=3)(w0, st, xb, yb)
    np.testing.assert_allclose(got[0], want[0], atol=1e-3)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-3)


@pytest.mark.parametrize("loss", ["mse", "sigmoid_bce", "softmax_ce"])
def test_loss_gradients(loss):
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(6, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    fns = {"mse": lambda z, y: jnp.mean((z - y) ** 2),
           "sigmoid_bce": lambda z, y: optax.sigmoid_binary_cross_entropy(z, y).mean(),
           "softmax_ce": lambda z, y: optax.softmax_cross_entropy(z, y).mean()}
    f = jax.value_and_grad(fns[loss])
    want = f(logits, labels)
    got = spu.jit(f, protocol="aby3", seed=1)(logits, labels)
    np.testing.assert_allclose(got[0], want[0], atol=5e-3)
    np.testing.assert_allclose(got[1], want[1], atol=5e-3)


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.slow
def test_200_step_training_loop_keeps_memory_flat():
    s = tutorials.mnist_mlp(n_train=64 * 10, inputs=784)
    trainer = Trainer(s.loss_fn, s.optimizer, protocol="semi2k")
    trainer.fit(s.params, s.x_train, s.y_train, epochs=2, batch_size=64, progress=False)  # warm up
    before = _rss_mb()
    trainer.fit(s.params, s.x_train, s.y_train, epochs=20, batch_size=64, progress=False)  # 200 steps
    assert _rss_mb() - before < 150, "memory grew over 200 training steps"


def test_progress_and_history():
    s = tutorials.breast_cancer_mlp()
    evaluate = lambda p: {"auc": tutorials.auc(s, p)}
    _, hist = Trainer(s.loss_fn, s.optimizer, protocol="semi2k").fit(
        s.params, s.x_train[:40], s.y_train[:40], epochs=2, batch_size=10, evaluate=evaluate,
        progress=True)
    assert [r.epoch for r in hist.records] == [1, 2]
    assert all(0 <= a <= 1 for a in hist["auc"]) and len(hist["seconds.total"]) == 2
    import matplotlib
    matplotlib.use("Agg")
    assert hist.plot(["loss"]) is not None


def test_idx_loader_round_trip(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    datasets.save_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), imgs)
    datasets.save_idx(str(tmp_path / "train-labels-idx1-ubyte"), labels)
    x, y = datasets.load_mnist(str(tmp_path))
    np.testing.assert_allclose(x, imgs.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        datasets.load_idx(str(tmp_path / "bad"))


def test_digits_stand_in_is_mnist_shaped():
    x_tr, x_te, y_tr, y_te = datasets.digits_28x28()
    assert x_tr.shape[1] == 784 and 0 <= x_tr.min() and x_tr.max() <= 1
    assert set(np.unique(y_tr)) == set(range(10))
