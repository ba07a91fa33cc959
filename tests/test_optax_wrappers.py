"""optax wrappers as their docs use them.

inject_hyperparams: the numeric hyperparameters in the state are public and fixed when
compiling (spu_lite/optim_state.py), so adam's eps and bias correction compile as for
optax.adam(lr). As secret inputs eps = 1e-8 was 0 and `1 - b1^count` a secret divisor:
parameters off by 10^4 after one step.

MultiSteps in a Python loop of steps: its counts are constants of the program, folded
when compiling (compiler/lower/lower.py), so `where(emit, new, old)` and the cond around
the update pick their side when compiling and the inner Adam's moments stay wide
(before: updates of 500 where plaintext's were 0.05)."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import spu_lite as spu
from spu_lite.compiler.lower.wide import PrecisionWarning

r = np.random.default_rng(4)
X = r.normal(size=(32, 5)).astype(np.float32)
Y = (X @ r.normal(size=5) + 0.1 * r.normal(size=32)).astype(np.float32)
PARAMS = {"w": np.zeros(5, np.float32), "b": np.zeros((), np.float32)}


def loss(p, x, y):
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def stepper(tx):
    def train_step(p, state, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        updates, state = tx.update(g, state, p)
        return optax.apply_updates(p, updates), state, value
    return train_step


@pytest.mark.parametrize("protocol", ["ref2k", "aby3"])
def test_state_passed_in_follows_plaintext_and_a_new_rate_compiles_again(protocol):
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
    step = stepper(tx)
    secure, plain = spu.jit(step, protocol=protocol), jax.jit(step)
    p1 = p2 = PARAMS
    s1 = s2 = tx.init(PARAMS)
    for k in range(4):
        if k == 2:             # inject_hyperparams' documented way to change the rate
            s1.hyperparams["learning_rate"] = jnp.float32(0.01)
            s2.hyperparams["learning_rate"] = np.float32(0.01)
        p1, s1, _ = plain(p1, s1, X, Y)
        p2, s2, _ = secure(p2, s2, X, Y)
    for a, b in zip(jax.tree_util.tree_leaves(p2), jax.tree_util.tree_leaves(p1)):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert len(secure._cache) == 2                  # one program per rate
    assert float(s2.hyperparams["learning_rate"]) == pytest.approx(0.01)


def test_a_scheduled_rate_stays_an_input_one_program():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=optax.linear_schedule(0.1, 0.01, 4))
    step = stepper(tx)
    secure, plain = spu.jit(step, protocol="ref2k"), jax.jit(step)
    p1 = p2 = PARAMS
    s1 = s2 = tx.init(PARAMS)
    for _ in range(4):
        p1, s1, _ = plain(p1, s1, X, Y)
        p2, s2, _ = secure(p2, s2, X, Y)
    np.testing.assert_allclose(p2["w"], p1["w"], atol=1e-4)
    assert len(secure._cache) == 1


def test_nnx_optimizer_with_injected_rate():
    def train_step(model, opt, x, y):
        value, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x)[:, 0] - y) ** 2))(model)
        opt.update(model, grads)
        return value
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
    models = [nnx.Linear(5, 1, rngs=nnx.Rngs(0)) for _ in range(2)]
    opts = [nnx.Optimizer(m, tx, wrt=nnx.Param) for m in models]
    plain, secure = nnx.jit(train_step), spu.jit(train_step, protocol="aby3")
    for _ in range(3):
        want, got = plain(models[0], opts[0], X, Y), secure(models[1], opts[1], X, Y)
        np.testing.assert_allclose(got, want, rtol=1e-3)
    np.testing.assert_allclose(models[1].kernel.value, models[0].kernel.value, atol=1e-3)


def test_multisteps_adam_in_one_function_follows_plaintext():
    tx = optax.MultiSteps(optax.adam(0.05), every_k_schedule=2)

    def steps(p, x, y):
        state = tx.init(p)
        for _ in range(4):
            g = jax.grad(loss)(p, x, y)
            updates, state = tx.update(g, state, p)
            p = optax.apply_updates(p, updates)
        return p
    want = jax.jit(steps)(PARAMS, X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)       # moments kept wide
        got = spu.jit(steps, protocol="aby3")(PARAMS, X, Y)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("public", [True, False])
def test_staircase_schedule_steps_at_its_boundaries(public):
    """floor(count / k) is exact at every multiple of k, public or secret count: the
    schedule read 0.1 at count 10 (floor(10 / 10) = 0, the quotient an ulp low)."""
    sched = optax.exponential_decay(0.1, 10, 0.9, staircase=True)
    counts = np.arange(0, 71, 5, dtype=np.int32)
    got = spu.jit(sched, protocol="aby3", check=False)(spu.public(counts) if public else counts)
    np.testing.assert_allclose(got, sched(counts), rtol=2e-4)


def test_losses_with_halves_are_not_taken_for_moments():
    """`0.5 q^2 + 0.5 l` of values computed in the step (optax.huber_loss with delta 0.5)
    has the shape of a moving average but no state: no PrecisionWarning."""
    p, t = r.normal(size=8).astype(np.float32), r.normal(size=8).astype(np.float32)
    huber = lambda p, t: optax.huber_loss(p, t, delta=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        got = spu.jit(huber, protocol="aby3")(p, t)
    np.testing.assert_allclose(got, huber(p, t), atol=1e-4)
