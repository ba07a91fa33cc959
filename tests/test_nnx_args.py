"""flax nnx objects as spu.jit arguments: changed in place, as nnx.jit changes them
(spu_lite/nnx_args.py). nnx's training loop returns only the loss; before, the caller's
model under spu.jit never changed -- a training loop that silently did not train."""
import jax
import numpy as np
import optax
import pytest
from flax import nnx

import spu_lite as spu
from spu_lite.codec import InputError


class Net(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(4, 8, rngs=rngs)
        self.ln = nnx.LayerNorm(8, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.ln(self.l1(x))))[:, 0]


def loss_fn(model, x, y):
    return optax.sigmoid_binary_cross_entropy(model(x), y).mean()


def train_step(model, optimizer, x, y):            # as flax's nnx docs write it
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


def _data():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.float32)


def _trained(step, steps=3):
    model = Net(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    x, y = _data()
    losses = [float(step(model, opt, x, y)) for _ in range(steps)]
    return model, opt, losses


def _params(model):
    return [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))]


def test_docs_training_loop_updates_model_and_optimizer():
    model, opt, losses = _trained(spu.jit(train_step, protocol="aby3"))
    model0, opt0, losses0 = _trained(nnx.jit(train_step))
    np.testing.assert_allclose(losses, losses0, atol=1e-4)
    assert losses[-1] < losses[0] - 0.03                       # it trains
    assert int(opt.step[...]) == 3
    for p, p0 in zip(_params(model), _params(model0)):
        np.testing.assert_allclose(p, p0, atol=1e-3)



def test_metrics_written_back_compute_as_under_nnx_jit():
    """The flax MNIST tutorial's nnx.MultiMetric: its variables come back as jax arrays,
    as nnx.jit leaves them (numpy's float32 total over int32 count was a float64 mean)."""
    def step(metrics, x):
        metrics.update(loss=x.mean(), logits=x[:, :3], labels=np.arange(x.shape[0]) % 3)
    x = _data()[0]
    results = []
    for jit in (nnx.jit, lambda f: spu.jit(f, protocol="ref2k")):
        metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average("loss"))
        jit(step)(metrics, x)
        results.append(metrics.compute())
    want, got = results
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_allclose(got[k], want[k], atol=1e-5)

def test_unchanged_nnx_arguments_add_no_outputs():
    model, x = Net(nnx.Rngs(0)), _data()[0]
    before = _params(model)
    compiled = spu.jit(lambda m, x: m(x), protocol="ref2k").lower(model, x)
    assert compiled.mutations == [] and len(compiled.program.results) == 1
    spu.jit(lambda m, x: m(x), protocol="ref2k")(model, x)
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(model)))


def test_kept_secret_variables_stay_secret_between_calls():
    model = Net(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    x, y = _data()
    step = spu.jit(train_step, protocol="aby3", keep_secret=True)
    step(model, opt, x, y)
    assert isinstance(model.l1.kernel.get_value(), spu.Secret)
    loss = step(model, opt, x, y)
    model0, _, losses0 = _trained(nnx.jit(train_step), steps=2)
    assert abs(float(spu.reveal(loss)) - losses0[-1]) < 1e-4


def test_a_new_variable_inside_the_function_is_an_error():
    def grow(model, x):
        model.extra = nnx.Param(x.sum())
        return model(x)
    with pytest.raises(InputError, match="changed its structure"):
        spu.jit(grow, protocol="ref2k")(Net(nnx.Rngs(0)), _data()[0])


def test_check_compares_the_changed_variables_too():
    model = Net(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    before = _params(model)
    report = spu.check(train_step, model, opt, *_data())
    assert report.ok, str(report)
    assert str(report).count("out[") > 10                      # the loss and the updates
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(model)))   # untouched


class Dropped(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(4, 8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x, rngs=None):
        return self.drop(self.lin(x), rngs=rngs)


def test_dropout_draws_a_new_mask_every_call_as_nnx_jit():
    """The stream's counter advances in the caller's Rngs as under nnx.jit: a fresh mask
    per call (before: the same mask every call, a dropout that never changed)."""
    def forward(model, x):
        return model(x)

    x = np.ones((2, 4), np.float32)
    ours, theirs = Dropped(nnx.Rngs(0, dropout=1)), Dropped(nnx.Rngs(0, dropout=1))
    f, g = spu.jit(forward, protocol="ref2k"), nnx.jit(forward)
    masks = []
    for _ in range(3):
        a, b = np.asarray(f(ours, x)), np.asarray(g(theirs, x))
        np.testing.assert_allclose(a, b, atol=1e-4)
        masks.append(tuple((a != 0).ravel()))
    assert len(set(masks)) == 3
    assert int(ours.drop.rngs.count[...]) == int(theirs.drop.rngs.count[...]) == 3


def test_an_rngs_argument_advances_too():
    def forward(model, rngs, x):
        return model(x, rngs=rngs)

    x = np.ones((2, 4), np.float32)
    model = Dropped(nnx.Rngs(0))
    ours, theirs = nnx.Rngs(dropout=5), nnx.Rngs(dropout=5)
    f, g = spu.jit(forward, protocol="aby3"), nnx.jit(forward)
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(f(model, ours, x)), np.asarray(g(model, theirs, x)),
                                   atol=1e-3)
    assert int(ours.dropout.count[...]) == int(theirs.dropout.count[...]) == 2


def test_compiled_programs_per_function_are_bounded(monkeypatch):
    """Every new counter value compiles again; the function keeps only the most recently
    used programs, not one per training step."""
    from spu_lite import api
    monkeypatch.setattr(api, "_CACHE_SIZE", 3)
    model, x = Dropped(nnx.Rngs(0, dropout=1)), np.ones((2, 4), np.float32)
    f = spu.jit(lambda m, v: m(v), protocol="ref2k")
    for _ in range(5):
        f(model, x)
    assert len(f._cache) == 3 and int(model.drop.rngs.count[...]) == 5
