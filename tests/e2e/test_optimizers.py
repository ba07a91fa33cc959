"""Stock optax optimizers inside spu.jit, written as optax's docs write them, against
plaintext: each parameter's update after 1, 5 and 20 steps within 5% of plaintext's.

Gradients span about 1e-4 .. 10 (features scaled from 7e-4 to 50). Adam's second
moment (1 - b2) g^2 is 1e-11 at g = 1e-4: at 18 fractional bits it was 0 and the
update lr * m / eps (loss 0.693 -> 383.9). The moments now get wide formats
(compiler/lower/wide.py, docs/fixed-point.md).
"""
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import spu_lite as spu
from spu_lite.compiler.lower.wide import PrecisionWarning
from spu_lite.examples import tutorials
from spu_lite.train import Trainer, make_epoch, public_count

SCALES = np.array([7e-4, 1e-2, 0.1, 1.0, 5.0, 50.0])        # logistic: |g| 1e-4 .. 10
MLP_SCALES = np.array([0.05, 0.1, 0.3, 1.0, 3.0, 6.0])      # MLP: |g| 2.5e-4 .. 1.6
OPTIMIZERS = {"adam": lambda: optax.adam(1e-3), "adamw": lambda: optax.adamw(1e-3),
              "rmsprop": lambda: optax.rmsprop(1e-3)}


def _data(scales=SCALES, n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, scales.size)) * scales
    y = (x @ (1 / scales) + rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def _logistic(params, x, y):
    z = x @ params["w"] + params["b"]
    return optax.sigmoid_binary_cross_entropy(z, y).mean()


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(4)(x)))[:, 0]


def _mlp_loss(params, x, y):
    return optax.sigmoid_binary_cross_entropy(MLP().apply(params, x), y).mean()


def _trainer(loss_fn, make_opt, steps):
    """The last step's updates after `steps` steps of the stock optax loop."""
    opt = make_opt()

    def train(params, x, y):
        opt_state = opt.init(params)
        for _ in range(steps):
            grads = jax.grad(loss_fn)(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return updates
    return train


def _compare(loss_fn, params, name, steps, protocol, scales=SCALES):
    x, y = _data(scales)
    train = _trainer(loss_fn, OPTIMIZERS[name], steps)
    want = jax.tree_util.tree_leaves(jax.jit(train)(params, x, y))
    got = jax.tree_util.tree_leaves(spu.jit(train, protocol=protocol)(params, x, y))
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert np.all(np.abs(g - w) <= 0.05 * np.abs(w) + 1e-7), (g, w)


def _logistic_params():
    return {"w": np.zeros(SCALES.size), "b": np.zeros(())}


def _mlp_params():
    return MLP().init(jax.random.PRNGKey(0), np.ones((1, MLP_SCALES.size)))


def _grads(loss_fn, params, scales):
    g = jax.grad(loss_fn)(params, *_data(scales))
    return np.concatenate([np.abs(np.ravel(v)) for v in jax.tree_util.tree_leaves(g)])


def test_gradients_span_the_range():
    g = _grads(_logistic, _logistic_params(), SCALES)
    assert g.min() < 2e-4 and g.max() > 5
    g = _grads(_mlp_loss, _mlp_params(), MLP_SCALES)
    assert 1e-4 < g.min() < 5e-4 and g.max() > 1


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("steps", [1, 5])
def test_logistic_regression_updates_match_plaintext(name, steps):
    _compare(_logistic, _logistic_params(), name, steps, "aby3")


# Both protocols at 1 and 5 steps; 20 steps (a 20x unrolled program, 5-14 s each) once
# per model, on a different protocol each: the logistic case on aby3, the MLP on semi2k.
LOGISTIC_SLOW = [("semi2k", 1), ("semi2k", 5), ("aby3", 20)]        # aby3 1, 5: above
MLP_SLOW = [("aby3", 1), ("aby3", 5), ("semi2k", 1), ("semi2k", 5), ("semi2k", 20)]


@pytest.mark.slow
@pytest.mark.parametrize("protocol,steps", LOGISTIC_SLOW)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_match_plaintext_on_both_protocols(name, steps, protocol):
    _compare(_logistic, _logistic_params(), name, steps, protocol)


@pytest.mark.slow
@pytest.mark.parametrize("protocol,steps", MLP_SLOW)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flax_mlp_updates_match_plaintext(name, steps, protocol):
    _compare(_mlp_loss, _mlp_params(), name, steps, protocol, MLP_SCALES)


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_gradient_limit_of_the_moment_formats(name, protocol):
    """The measured limit of the wide moment formats (docs/fixed-point.md): updates are
    right for |g| up to 40 and wrap now and then from about 44 on, always at 64 (the
    ring product of (1 - b)(g^2 - v) at 44 fractional bits passes the truncation's
    2^62); spu.check reports the overflow. Checked well inside (28) on both protocols,
    outside (64) on ref2k. The documented assumption, |g| < 16, keeps a margin."""
    opt = OPTIMIZERS[name]()

    def two_steps(g):
        st = opt.init(g)
        u, st = opt.update(g, st)
        return opt.update(g * 0.5, st)[0]
    g = np.array([1e-3, 1.0, 16.0, 28.0])
    got = np.asarray(spu.jit(two_steps, protocol=protocol)(g), np.float64)
    np.testing.assert_allclose(got, two_steps(g), rtol=1e-2)
    bad = np.asarray(spu.jit(two_steps, protocol="ref2k")(np.array([64.0])), np.float64)
    assert abs(bad[0] / two_steps(np.array([64.0]))[0] - 1) > 0.5


# ---- optimizer state that arrives from outside the program ------------------------------

def _epoch_args(name="adam", batches=4):
    """spu.train's epoch (a lax.scan of optax steps) on the logistic data, its state from
    opt.init outside the program: moments and count arrive as secret inputs."""
    opt = OPTIMIZERS[name]()
    x, y = _data()
    epoch = make_epoch(_logistic, opt)
    params = dict(_logistic_params(), b=np.array(0.1))   # at b = 0 a batch's gradient of b
    # is exactly 0, MPC's is +-1 ulp, and Adam turns any gradient's sign into +-lr
    return epoch, (params, opt.init(params), x.reshape(batches, -1, SCALES.size),
                   y.reshape(batches, -1))


def test_plain_count_is_public_and_a_secret_one_is_warned_and_checked():
    """optax's count in a state passed as plain arrays goes public by itself (the
    standard `step(params, opt_state, x, y)` loop needs nothing more); a count that is
    secret (here: swapped in from a secret argument) makes the bias correction divide
    the second moment by a secret, which takes it back to f bits: a compile-time
    warning names the line, and spu.check reports the wrong outputs as "precision"."""
    epoch, args = _epoch_args()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        assert "public<int<32>>[]" in spu.jit(epoch).lower(*args).text or \
            "public<int<64>>[]" in spu.jit(epoch).lower(*args).text

    def secret_count(params, st, xb, yb, count):
        return epoch(params, (st[0]._replace(count=count),) + tuple(st[1:]), xb, yb)
    with pytest.warns(PrecisionWarning, match=r"train\.py:\d+.*Secret handle"):
        report = spu.check(secret_count, *args, np.int32(0))
    assert not report.ok
    assert any(f.kind == "precision" and f.op == "out[1]" for f in report.findings), str(report)


def test_epoch_scan_keeps_moments_wide():
    """spu.train's epoch (a lax.scan) with the count public: the moments are loop carries
    at state formats (rules_control's fixpoint) and come back at them, kept secret."""
    epoch, (params, st, xb, yb) = _epoch_args()
    want = jax.jit(epoch)(params, st, xb, yb)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        got = spu.jit(epoch, protocol="aby3", keep_secret=(1,))(params, public_count(st), xb, yb)
    nu = got[1][0].nu["w"]
    assert nu.ir_type.dtype.frac > 40                    # not 18: 1e-11 keeps its digits
    for g, w in zip(jax.tree_util.tree_leaves(spu.reveal(got[1])),
                    jax.tree_util.tree_leaves(want[1])):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert np.all(np.abs(g - w) <= 0.05 * np.abs(w) + 1e-9), (g, w)
    u, u_want = got[0]["w"], want[0]["w"]                # one epoch from zeros: the updates
    assert np.all(np.abs(u - u_want) <= 0.05 * np.abs(u_want)), (u, u_want)


def test_fori_loop_of_steps_matches_plaintext():
    """opt.init inside the program and a lax.fori_loop of steps: the count is public from
    its constant start, the moments are carries at state formats, nothing is warned."""
    opt = optax.adam(1e-3)
    x, y = _data()

    def train(params, x, y):
        def body(i, carry):
            p, st = carry
            u, st = opt.update(jax.grad(_logistic)(p, x, y), st, p)
            return optax.apply_updates(p, u), st
        return jax.lax.fori_loop(0, 5, body, (params, opt.init(params)))[0]
    p0 = dict(_logistic_params(), b=np.array(0.1))
    want = jax.jit(train)(p0, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        got = spu.jit(train, protocol="aby3")(p0, x, y)
    for g, w, w0 in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                        jax.tree_util.tree_leaves(p0)):
        u_g, u_w = np.asarray(g, np.float64) - w0, np.asarray(w, np.float64) - w0
        assert np.all(np.abs(u_g - u_w) <= 0.05 * np.abs(u_w)), (u_g, u_w)


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_kept_secret_step_loop_matches_plaintext(name):
    """The loop users write: one spu.jit step per batch, params and opt_state kept secret
    between calls (opt.init outside). optax's moments are encoded at their state formats
    (spu_lite/optim_state.py), the count passed public: 5 steps within 5% of plaintext."""
    opt = OPTIMIZERS[name]()
    x, y = _data()

    def step(params, opt_state, x, y):
        grads = jax.grad(_logistic)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, updates
    mpc = spu.jit(step, protocol="aby3", keep_secret=(0, 1))
    plain = jax.jit(step)
    p_m = p_w = _logistic_params()
    s_m = s_w = opt.init(p_w)
    for _ in range(5):
        p_w, s_w, u_w = plain(p_w, s_w, x, y)
        p_m, s_m, u_m = mpc(p_m, public_count(s_m), x, y)
    for g, w in zip(jax.tree_util.tree_leaves(u_m), jax.tree_util.tree_leaves(u_w)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert np.all(np.abs(g - w) <= 0.05 * np.abs(w) + 1e-7), (g, w)


def test_moment_input_outside_its_state_format_is_warned():
    """A moving average of squares whose state arrives at f bits (not an optax state the
    encoding recognises): warned at compile time, not silently wrong."""
    def step(v, g):
        return (1 - 0.999) * g ** 2 + 0.999 * v      # as optax writes it
    with pytest.warns(PrecisionWarning, match="moving average of squares"):
        spu.jit(step, protocol="ref2k")(np.zeros(3), np.ones(3))


@pytest.mark.slow
def test_trainer_adam_reaches_plaintext_auc():
    """spu.train.Trainer with stock optax.adam on the breast-cancer tutorial (aby3):
    2 epochs at lr 1e-2 (AUC 0.987 both ways; 10 epochs at 1e-3 reach 0.986 in 5x the time)."""
    s = tutorials.breast_cancer_mlp()
    opt = optax.adam(1e-2)
    fit = lambda protocol: Trainer(s.loss_fn, opt, protocol=protocol).fit(
        s.params, s.x_train, s.y_train, 2, s.batch_size, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        (p_plain, _), (p_mpc, _) = fit(None), fit("aby3")
    auc_plain, auc_mpc = tutorials.auc(s, p_plain), tutorials.auc(s, p_mpc)
    assert auc_plain > 0.95
    assert abs(auc_mpc - auc_plain) <= 0.01, (auc_mpc, auc_plain)


def test_wide_value_carried_but_not_averaged_returns_to_f_bits():
    """Only a carry the body averages keeps a state format: a moment carried into a
    loop that adds 1e6 per step (bound far past the state's) goes back to 18 bits."""
    def f(g):
        v = (1 - 0.999) * g ** 2 + 0.999 * jnp.zeros_like(g)
        return jax.lax.fori_loop(0, 3, lambda i, c: c + 1e6, v)
    g = np.array([0.5, 1.0])
    np.testing.assert_allclose(np.asarray(spu.jit(f, protocol="ref2k")(g)), f(g), rtol=1e-6)


# Gradients of a few ulps (2^-18 = 3.8e-6): the rounding noise of a parameter whose
# exact gradient is 0, e.g. a bias before a BatchNorm. Plaintext Adam moves each by lr.
TINY_G = np.array([1e-4, 3e-5, 1e-5, 7.6e-6, 5e-6, 3e-6], np.float32)


def test_adam_on_gradients_of_a_few_ulps_inside_one_call():
    """Moments inside one spu.jit: the second moment keeps the bits its own bound
    allows, so a 1-ulp gradient's (1 - b2) g^2 = 2^-46 is not 0 (it was at 44 bits, and
    m_hat / eps made the update 4 lr). Now 0.8-1.0 lr (eps is floored at 2^-20)."""
    opt = optax.adam(1e-2)

    def first_update(p, g):
        return opt.update(g, opt.init(p), p)[0]
    ratio = np.asarray(spu.jit(first_update)(np.zeros(6), TINY_G), np.float64) / -1e-2
    assert np.all((0.78 < ratio) & (ratio <= 1.0)), ratio     # 36 runs: 0.800 .. 0.993


def test_adam_state_passed_in_floor_of_the_second_moment():
    """State passed in (optax's loop as its docs write it) arrives at the state format
    (44 bits for v): a gradient of >= 1e-5 (2.6 ulps) moves within 15% of lr (measured
    over 108 runs: 0.89-0.99 lr), one of 2 ulps by 0.7-0.9 lr, one of <= 1.3 ulps, whose
    (1 - b2) g^2 is below v's resolution, by up to 4 lr (docs/fixed-point.md, 'Floor').
    A fresh seeded cluster makes the shares' rounding, and so the ratios, repeatable."""
    from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
    opt = optax.adam(1e-2)

    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, u
    f = spu.jit(step, cluster=InProcessCluster(ClusterConfig(protocol="aby3", seed=0)))
    p, s = np.zeros(6), opt.init(np.zeros(6))
    ratios = []
    for _ in range(3):
        p, s, u = f(p, s, TINY_G)
        ratios.append(np.asarray(u, np.float64) / -1e-2)
    ratios = np.array(ratios)
    np.testing.assert_allclose(ratios[:, :3], 1.0, atol=0.15)      # 1e-4, 3e-5, 1e-5
    assert np.all((0.6 < ratios[:, 3]) & (ratios[:, 3] < 1.0))      # 7.6e-6: 2 ulps
    assert ratios[:, 5].max() > 2 and ratios.max() < 4.1           # 3e-6: under v's ulp
