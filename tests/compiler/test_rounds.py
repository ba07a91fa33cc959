"""Scheduling (compiler/passes/rounds.py): independent ops of one kind run as one
protocol call (the IR's `batch` attribute), products fuse with their only truncation
(`mul_trunc`, `dot_trunc`), and the runtime follows what the IR says."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler.ir import BATCH, IRParseError, parse_program, print_program
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.executor import run_program
from spu_lite.runtime.kernels import KernelContext
from spu_lite.runtime.profile import Profile

PROTOCOLS = ["aby3", "semi2k", "ref2k"]


def sgd_update(params, grads):
    """Every parameter ends in its own truncation: independent of one another."""
    return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)


def _params(seed):
    rng = np.random.default_rng(seed)
    shapes = {"w1": (30, 15), "b1": (15,), "w2": (15, 8), "b2": (8,), "w3": (8, 1), "b3": (1,)}
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def _calls(program):
    """(name, size) of each call of the top-level block."""
    ops, out, i = program.ops, [], 0
    while i < len(ops):
        n = ops[i].attrs.get(BATCH, 1)
        assert {op.name for op in ops[i:i + n]} == {ops[i].name}
        out.append((ops[i].name, n))
        i += n
    return out


def test_independent_truncations_form_one_batch():
    p, g = _params(0), _params(1)
    program = spu.compile(sgd_update, p, g).program
    assert ("trunc", 6) in _calls(program)
    assert "batch=6" in program.text
    assert print_program(parse_program(program.text)) == program.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_of_truncations_takes_the_rounds_of_one(protocol):
    p, g = _params(0), _params(1)
    got = spu.jit(sgd_update, protocol=protocol)(p, g)
    prof = spu.profile()
    one = spu.jit(lambda p: 0.01 * p, protocol=protocol)
    one(p["w1"])
    assert prof.ops["trunc"].calls == 6
    assert prof.ops["trunc"].rounds == spu.profile().ops["trunc"].rounds
    want = sgd_update(p, g)
    for k in p:   # p, g and 0.01 rounded to 2^-18 (|g| < 5) and one truncation: < 4 ulp
        np.testing.assert_allclose(got[k], want[k], atol=4 * 2 ** -18)


def test_truncations_of_a_dot_and_of_public_products_share_a_call():
    def f(x, w):
        return x @ w, x * 0.5, w * 0.25
    program = spu.compile(f, np.zeros((4, 3)), np.zeros((3, 3))).program
    assert _calls(program).count(("trunc", 3)) == 1 and "dot_trunc" not in program.text
    got = spu.jit(f, protocol="aby3")(np.ones((4, 3)), np.ones((3, 3)))
    np.testing.assert_allclose(got[0], 3 * np.ones((4, 3)), atol=1e-4)
    np.testing.assert_allclose(got[1], 0.5 * np.ones((4, 3)), atol=1e-5)
    np.testing.assert_allclose(got[2], 0.25 * np.ones((3, 3)), atol=1e-5)
    prof = spu.profile()
    assert prof.ops["trunc"].calls == 3 and prof.ops["trunc"].rounds == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_lone_product_fuses_with_its_truncation(protocol):
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    f = lambda x, w: jnp.tanh(x @ w)
    program = spu.compile(f, x, w).program
    names = [op.name for op in program.ops]
    assert "dot_trunc" in names and "dot" not in names and "trunc" not in names
    got = spu.jit(f, protocol=protocol)(x, w)
    assert spu.profile().ops["dot_trunc"].calls == 1
    np.testing.assert_allclose(got, f(x, w), atol=1e-3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_independent_products_and_comparisons_share_calls(protocol):
    rng = np.random.default_rng(4)
    a, b, c, d = (rng.normal(size=s) for s in [(6,), (6,), (2, 3), (2, 3)])
    f = lambda a, b, c, d: (a * b, c * d, a > b, c < 0.5)
    calls = _calls(spu.compile(f, a, b, c, d).program)
    assert ("mul_trunc", 2) in calls and ("less", 2) in calls
    got = spu.jit(f, protocol=protocol)(a, b, c, d)
    prof = spu.profile()
    spu.jit(lambda a, b: (a * b, a > b), protocol=protocol)(a, b)
    alone = spu.profile()
    for name in ("mul_trunc", "less"):
        assert prof.ops[name].calls == 2 and prof.ops[name].rounds == alone.ops[name].rounds
    for g, w in zip(got, f(a, b, c, d)):
        np.testing.assert_allclose(g, w, atol=1e-4)


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_independent_dots_share_a_round(protocol):
    """Two dots whose operands are ready together: one dot_many call; their
    truncations one call too (fusing them would cost a round more)."""
    rng = np.random.default_rng(2)
    x, w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=(4, 6))
    f = lambda x, w1, w2: ((x @ w1).T, x @ w2)
    assert ("dot", 2) in _calls(spu.compile(f, x, w1, w2).program)
    got = spu.jit(f, protocol=protocol)(x, w1, w2)
    prof = spu.profile()
    assert prof.ops["dot"].calls == 2 and prof.ops["dot"].rounds == 1
    for g, w in zip(got, f(x, w1, w2)):
        np.testing.assert_allclose(g, w, atol=1e-4)


def test_training_step_needs_fewer_rounds():
    """The breast-cancer MLP step: its parameter updates and the backward pass's weight
    gradients share rounds."""
    from spu_lite.examples import tutorials
    s = tutorials.breast_cancer_mlp()
    x, y = s.x_train[:10], s.y_train[:10]

    def step(params, x, y):
        return sgd_update(params, jax.grad(s.loss_fn)(params, x, y))
    got = spu.jit(step, protocol="aby3")(s.params, x, y)
    prof = spu.profile()
    trunc = prof.ops["trunc"]
    # about half the truncations share a round (the sums of products in the loss
    # gradient are truncated before their sums, batched with the others)
    assert trunc.calls >= 10 and trunc.rounds <= (trunc.calls + 1) // 2
    want = step(s.params, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_observer_sees_every_op_of_batches_and_fused_ops():
    f = lambda a, b, c: (a * b, b * c, jnp.tanh(a))
    args = [np.full(3, v) for v in (0.5, 0.25, 2.0)]
    program = spu.compile(f, *args).program
    cluster = InProcessCluster(ClusterConfig(protocol="ref2k"))
    party = cluster.parties[0]
    seen = []
    K = KernelContext(party.proto, program.fxp_bits, observer=lambda op, i, o: seen.append(
        (op, len(i), len(o))))
    inputs = [cluster.share(cluster.ring.encode(a, 18))[0] for a in args]
    outs = run_program(K, program, inputs, Profile())
    assert [s[0] for s in seen] == list(program.ops)
    assert all(n_in == len(op.inputs) and n_out == len(op.outputs) for op, n_in, n_out in seen)
    got = [cluster.ring.decode(o.parts[0], 18) for o in outs]
    np.testing.assert_allclose(got[1], 0.5, atol=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ops_of_one_kind_share_a_call(protocol):
    """less and eq are sign bits; mul and select one product each: a batch each."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 7))
    i, j = rng.integers(0, 3, size=(2, 4)).astype(np.int32)
    p = rng.integers(0, 2, size=7).astype(bool)
    f = lambda a, b, i, j, p: (a < b, i == j, i * j, jnp.where(p, a, b))
    program = spu.compile(f, a, b, i, j, p).program
    kinds = [{op.name for op in program.ops[k:k + op.attrs[BATCH]]}
             for k, op in enumerate(program.ops) if op.attrs.get(BATCH, 1) > 1]
    assert sorted(map(sorted, kinds)) == [["eq", "less"], ["mul", "select"]]
    got = spu.jit(f, protocol=protocol)(a, b, i, j, p)
    rounds = spu.profile().total.rounds
    spu.jit(lambda i, j, p, a, b: (i == j, jnp.where(p, a, b)), protocol=protocol)(i, j, p, a, b)
    assert rounds == spu.profile().total.rounds
    for g, w in zip(got, f(a, b, i, j, p)):     # exact, but inputs rounded to 2^-18
        np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), atol=2 ** -18)


def test_cost_report_lists_the_batches():
    from spu_lite.tools.cost import dry_run
    p, g = _params(0), _params(1)
    report = dry_run(spu.compile(sgd_update, p, g).program, "aby3")
    assert report.batches == {"trunc x6": 1}
    assert "trunc x6" in report.table()


@pytest.mark.parametrize("edit, error", [
    ("batch=6", "batch=9"),                      # runs past the block
    ("batch=6", "batch=true"),                   # not a count
    ("{batch=6, bits=18}", "{bits=18}"),         # no batch: fine, one op at a time
])
def test_the_parser_rejects_batch_marks_that_cannot_run(edit, error):
    p, g = _params(0), _params(1)
    text = spu.compile(sgd_update, p, g).text
    bad = text.replace(edit, error, 1)
    if "batch" in error:
        with pytest.raises(IRParseError, match="batch"):
            parse_program(bad)
    else:
        assert [op.attrs.get(BATCH, 1) for op in parse_program(bad).ops].count(6) == 0


HEAD = ("func @f(%0: secret<fxp<64,18>>[3], %1: secret<fxp<64,18>>[3]) -> (secret<bool>[3]) "
        "attributes {field=64, fxp_bits=18} {\n")


@pytest.mark.parametrize("second, error", [
    ("%3 = eq(%2, %2) : secret<bool>[3]", "reads its own results"),
    ("%3 = mul(%0, %1) : secret<fxp<64,36>>[3]", "cannot share a call"),
    ("%3 = eq(%0, %1) : secret<bool>[3]", None),
])
def test_the_parser_checks_what_a_batch_holds(second, error):
    text = HEAD + f"  %2 = less(%0, %1) {{batch=2}} : secret<bool>[3]\n  {second}\n  return %2\n}}\n"
    if error is None:
        assert parse_program(text).ops[0].attrs[BATCH] == 2
    else:
        with pytest.raises(IRParseError, match=error):
            parse_program(text)
