"""Round sharing for truncations (compiler/passes/rounds.py and the executor's batched
runs): independent truncations become adjacent and run as one protocol call."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu


def sgd_update(params, grads):
    """Every parameter ends in its own truncation: independent of one another."""
    return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)


def _params(seed):
    rng = np.random.default_rng(seed)
    shapes = {"w1": (30, 15), "b1": (15,), "w2": (15, 8), "b2": (8,), "w3": (8, 1), "b3": (1,)}
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def _names(program):
    return [op.name for op in program.ops]


def test_independent_truncations_become_adjacent():
    p, g = _params(0), _params(1)
    names = _names(spu.compile(sgd_update, p, g).program)
    assert names.count("trunc") == 6
    first = names.index("trunc")
    assert names[first:first + 6] == ["trunc"] * 6


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_adjacent_truncations_share_one_round(protocol):
    p, g = _params(0), _params(1)
    got = spu.jit(sgd_update, protocol=protocol)(p, g)
    prof = spu.profile()
    assert prof.ops["trunc"].calls == 6 and prof.ops["trunc"].rounds == 1
    want = sgd_update(p, g)
    for k in p:   # p, g and 0.01 rounded to 2^-18 (|g| < 5) and one truncation: < 4 ulp
        np.testing.assert_allclose(got[k], want[k], atol=4 * 2 ** -18)


def test_a_fused_pair_stays_together_while_others_move():
    def f(x, w):
        return x @ w, x * 0.5, w * 0.25          # a fused dot+trunc, two lone products
    program = spu.compile(f, np.zeros((4, 3)), np.zeros((3, 3))).program
    ops = program.ops
    i = [op.name for op in ops].index("dot")
    assert ops[i + 1].name == "trunc" and ops[i + 1].inputs[0] is ops[i].outputs[0]
    truncs = [j for j, op in enumerate(ops) if op.name == "trunc" and j != i + 1]
    assert len(truncs) == 2 and truncs[1] == truncs[0] + 1      # the other two: adjacent
    got = spu.jit(f, protocol="aby3")(np.ones((4, 3)), np.ones((3, 3)))
    np.testing.assert_allclose(got[0], 3 * np.ones((4, 3)), atol=1e-4)
    np.testing.assert_allclose(got[1], 0.5 * np.ones((4, 3)), atol=1e-5)
    np.testing.assert_allclose(got[2], 0.25 * np.ones((3, 3)), atol=1e-5)
    assert spu.profile().ops["trunc"].rounds == 1


def test_training_step_needs_fewer_rounds():
    """The breast-cancer MLP step: its parameter updates and the backward pass's weight
    gradients share rounds."""
    from spu_lite import tutorials
    s = tutorials.breast_cancer_mlp()
    x, y = s.x_train[:10], s.y_train[:10]

    def step(params, x, y):
        return sgd_update(params, jax.grad(s.loss_fn)(params, x, y))
    got = spu.jit(step, protocol="aby3")(s.params, x, y)
    prof = spu.profile()
    trunc_rounds = prof.ops["trunc"].rounds
    # about half the truncations share a round (15 in 8 rounds: the sums of products
    # in the loss gradient are truncated before their sums, batched with the others)
    assert prof.ops["trunc"].calls >= 10 and trunc_rounds <= (prof.ops["trunc"].calls + 1) // 2
    want = step(s.params, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_independent_dots_share_a_round(protocol):
    """Dots whose operands are all ready run as one dot_many call, fused ones included."""
    rng = np.random.default_rng(2)
    x, w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=(4, 6))
    f = lambda x, w1, w2: ((x @ w1).T, x @ w2)           # one plain dot, one fused with its trunc
    got = spu.jit(f, protocol=protocol)(x, w1, w2)
    prof = spu.profile()
    assert prof.ops["dot"].calls == 2 and prof.ops["dot"].rounds == 1
    for g, w in zip(got, f(x, w1, w2)):
        np.testing.assert_allclose(g, w, atol=1e-4)
