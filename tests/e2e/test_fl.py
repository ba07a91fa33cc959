"""Federated learning with secure aggregation (spu_lite.fl): aggregates, isolation of
the model owner, accuracy on digits, dropouts, malformed updates, DP noise."""
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import spu_lite.fl as fl
from spu_lite.fl import backends, digits as D, dp as dp_mod
from spu_lite.secret import Secret

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHAPES = {"w": (6, 4), "b": (4,)}


def zeros_model():
    return {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}


def random_update(seed, scale=0.1):
    r = np.random.default_rng(seed)
    return {k: (r.normal(size=s) * scale).astype(np.float32) for k, s in SHAPES.items()}


def fixed_owner(name, update, n=10, payload="update"):
    """A data owner whose 'training' adds a fixed update (or returns a fixed model)."""
    x, y = np.zeros((n, 1)), np.zeros(n)
    if payload == "model":
        return fl.DataOwner(name, x, y, train_fn=lambda p, *_: update)
    return fl.DataOwner(name, x, y, train_fn=lambda p, *_: jax.tree_util.tree_map(
        lambda a, b: np.asarray(a) + b, p, update))


def federation(owners, protocol="aby3", params=None, **kw):
    mo = fl.ModelOwner(params if params is not None else zeros_model())
    return mo, fl.Federation(mo, owners, protocol=protocol, progress=False, seed=1, **kw)


def close(a, b, atol=1e-4):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, atol=atol), a, b)


def tree_mean(trees, weights=None):
    w = np.ones(len(trees)) if weights is None else np.asarray(weights, np.float64)
    return jax.tree_util.tree_map(lambda *xs: sum(wi * x for wi, x in zip(w, xs)) / w.sum(), *trees)


# ---- aggregates ---------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_mean_matches_plaintext(protocol):
    ups = [random_update(i) for i in range(3)]
    mo, fed = federation([fixed_owner(f"o{i}", u) for i, u in enumerate(ups)], protocol)
    fed.run_round()
    close(mo.params, tree_mean(ups))
    fed.run_round()                                   # the model moves on: old + mean again
    close(mo.params, jax.tree_util.tree_map(lambda m: 2 * m, tree_mean(ups)))


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_weighted_mean_by_example_counts(protocol):
    ups, counts = [random_update(i) for i in range(3)], [10, 25, 1800]
    owners = [fixed_owner(f"o{i}", u, n) for i, (u, n) in enumerate(zip(ups, counts))]
    mo, fed = federation(owners, protocol, aggregator=fl.WeightedMean())
    fed.run_round()
    close(mo.params, tree_mean(ups, counts))


def test_plaintext_baseline_is_the_same_mean():
    ups = [random_update(i) for i in range(3)]
    mo, fed = federation([fixed_owner(f"o{i}", u) for i, u in enumerate(ups)], protocol=None)
    fed.run_round()
    close(mo.params, tree_mean(ups), atol=1e-6)


def test_reptile_custom_aggregator_on_models():
    old = random_update(10, scale=1.0)
    models = [random_update(i, scale=1.0) for i in range(3)]
    owners = [fixed_owner(f"o{i}", m, payload="model") for i, m in enumerate(models)]
    mo, fed = federation(owners, params=old, aggregator=fl.reptile(0.25))
    assert fed.payload == "model"
    fed.run_round()
    want = jax.tree_util.tree_map(lambda o, m: o + 0.25 * (m - o), old, tree_mean(models))
    close(mo.params, want)


def test_user_supplied_aggregator_runs_under_mpc():
    ups = [random_update(i) for i in range(3)]
    coord_max = fl.Custom(lambda ps, g: jax.tree_util.tree_map(
        lambda *xs: jnp.max(jnp.stack(xs), axis=0), *ps), name="max")
    mo, fed = federation([fixed_owner(f"o{i}", u) for i, u in enumerate(ups)],
                         aggregator=coord_max)
    fed.run_round()
    close(mo.params, jax.tree_util.tree_map(lambda *xs: np.max(xs, axis=0), *ups))


@pytest.mark.parametrize("protocol,rsqrt", [("aby3", "auto"), ("semi2k", "newton")])
def test_clipping_to_l2_bound_under_mpc(protocol, rsqrt):
    big = jax.tree_util.tree_map(lambda x: x * 40, random_update(0))        # norm ~ 20
    small = random_update(1, scale=0.01)                                      # norm ~ 0.05
    ups = [big, small, random_update(2)]
    mo, fed = federation([fixed_owner(f"o{i}", u) for i, u in enumerate(ups)], protocol,
                         aggregator=fl.Mean(clip_norm=1.0), rsqrt=rsqrt)
    fed.run_round()

    def clip(u):
        n = np.sqrt(sum(np.sum(np.square(v, dtype=np.float64)) for v in u.values()))
        return {k: v * min(1.0, 1.0 / n) for k, v in u.items()}
    close(mo.params, tree_mean([clip(u) for u in ups]), atol=2e-4)


def test_fit_history_metrics_timings_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    ups = [random_update(i) for i in range(2)]
    mo = fl.ModelOwner(zeros_model(), evaluator_fn=lambda p: {"w_sum": np.sum(p["w"])})
    fed = fl.Federation(mo, [fixed_owner(f"o{i}", u) for i, u in enumerate(ups)],
                        protocol="semi2k", progress=True, seed=0)
    seen = []
    hist = fed.fit(rounds=5, evaluate_every=2, callback=seen.append)
    assert [r.round for r in seen] == [1, 2, 3, 4, 5] and len(hist) == 5
    rounds, values = hist.series("w_sum")
    assert rounds == [2, 4, 5]                               # every 2 rounds and the last
    np.testing.assert_allclose(values, [r * np.sum(tree_mean(ups)["w"]) for r in rounds],
                               atol=1e-3)
    assert all(r.participants == ["o0", "o1"] and r.seconds["total"] > 0 for r in hist.records)
    assert hist.seconds_per_round("aggregate") > 0 and hist["epsilon"] == []
    assert hist.to_dict()["records"][1]["metrics"] == hist.records[1].metrics
    assert hist.plot("w_sum").get_xlabel() == "round"
    stop = fl.Federation(mo, fed.data_owners, protocol=None, progress=False)
    assert len(stop.fit(rounds=10, callback=lambda rec: rec.round == 3)) == 3


# ---- what the model owner sees -----------------------------------------------------

class RecordingModelOwner(fl.ModelOwner):
    """Records every argument passed into any of its methods."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.received = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if callable(attr) and not name.startswith("__") and name != "received":
            rec = super().__getattribute__("received")

            def wrapped(*args, **kwargs):
                rec.append((name, args, kwargs))
                return attr(*args, **kwargs)
            return wrapped
        return attr


class RecordingDataOwner(fl.DataOwner):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.sent = []

    def local_update(self, global_params, payload="update"):
        u = super().local_update(global_params, payload)
        self.sent.append(jax.tree_util.tree_map(np.array, u))
        return u


def _leaves_of(obj):
    return [np.asarray(l) for l in jax.tree_util.tree_leaves(obj)
            if isinstance(l, (np.ndarray, jax.Array, float))]


def test_model_owner_receives_only_the_revealed_aggregate():
    rng = np.random.default_rng(0)

    def train(p, x, y, key):                     # stands in for local SGD: a fresh update
        return jax.tree_util.tree_map(lambda a: a + rng.normal(size=a.shape) * 0.1, p)
    owners = [RecordingDataOwner(f"o{i}", np.zeros((5, 1)), np.zeros(5), train_fn=train)
              for i in range(3)]
    mo = RecordingModelOwner(random_update(9, scale=1.0),
                             evaluator_fn=lambda p: {"norm": np.linalg.norm(p["w"])})
    fed = fl.Federation(mo, owners, protocol="aby3", progress=False)
    fed.fit(rounds=2)

    updates = [u for o in owners for u in o.sent]
    assert len(updates) == 6
    calls = [(n, a, k) for n, a, k in mo.received]
    assert {n for n, _, _ in calls} <= {"global_model", "receive_aggregate", "evaluate",
                                          "evaluator_fn"}
    received = [l for _, a, k in calls for l in _leaves_of((a, k))]
    for _, a, k in calls:
        for leaf in jax.tree_util.tree_leaves((a, k), is_leaf=lambda x: isinstance(x, Secret)):
            assert not isinstance(leaf, (Secret, fl.SharedUpdate))
    # nothing the model owner received (nor anything it stores) equals an individual update
    stored = _leaves_of(vars(mo)) + received
    for u in updates:
        for ul in jax.tree_util.tree_leaves(u):
            assert not any(s.shape == ul.shape and np.allclose(s, ul, atol=1e-3) for s in stored)
    # ... but what it did receive is exactly the mean of each round's updates
    aggs = [a[0] for n, a, _ in calls if n == "receive_aggregate"]
    assert len(aggs) == 2
    for r, agg in enumerate(aggs):
        close(agg, tree_mean([o.sent[r] for o in owners]), atol=1e-4)


# ---- accuracy ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("non_iid", [None, 1.0], ids=["iid", "non_iid"])
def test_digits_secure_fedavg_within_3_points_of_centralised(non_iid):
    task = D.digits_task(3, non_iid=non_iid)
    trainer = fl.LocalTrainer(D.cross_entropy, optax.sgd(0.3), steps=25, batch_size=32)
    p0 = D.init_mlp(jax.random.PRNGKey(0))
    central = D.accuracy(D.train_centralised(p0, task.x_train, task.y_train, trainer, 20),
                         task.x_test, task.y_test)
    owners = [fl.DataOwner(f"o{i}", x, y, trainer=trainer, seed=i)
              for i, (x, y) in enumerate(task.owners)]
    mo = fl.ModelOwner(p0, evaluator_fn=D.evaluator(task.x_test, task.y_test))
    hist = fl.Federation(mo, owners, fl.WeightedMean(), protocol="aby3",
                         progress=False).fit(rounds=20, evaluate_every=5)
    acc = hist.last_metrics["accuracy"]
    assert central > 0.93
    assert acc >= central - 0.03, (acc, central)
    assert hist.series("accuracy")[0] == [5, 10, 15, 20]
    assert len(hist) == 20 and hist.seconds_per_round() < 1.0


# ---- robustness --------------------------------------------------------------------

def test_owner_that_raises_is_skipped_with_a_warning():
    ups = [random_update(i) for i in range(3)]

    def broken(p, *_):
        raise ConnectionError("lost connection")
    owners = [fixed_owner("alice", ups[0]), fixed_owner("bob", ups[1]),
              fl.DataOwner("carol", np.zeros((3, 1)), np.zeros(3), train_fn=broken)]
    mo, fed = federation(owners)
    with pytest.warns(RuntimeWarning, match="'carol' dropped out.*ConnectionError.*2 of 3"):
        rec = fed.run_round()
    assert rec.participants == ["alice", "bob"] and "carol" in rec.dropped
    close(mo.params, tree_mean(ups[:2]))


def test_owner_that_times_out_is_skipped_with_a_warning():
    ups = [random_update(i) for i in range(3)]

    def slow(p, *_):
        time.sleep(2.0)
        return p
    owners = [fixed_owner("alice", ups[0]), fixed_owner("bob", ups[1]),
              fl.DataOwner("dave", np.zeros((3, 1)), np.zeros(3), train_fn=slow)]
    mo, fed = federation(owners, timeout=0.5)
    t0 = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="'dave' dropped out.*timed out"):
        rec = fed.run_round()
    assert time.perf_counter() - t0 < 1.8
    assert rec.dropped.keys() == {"dave"}
    close(mo.params, tree_mean(ups[:2]))


def test_round_without_enough_participants_fails_clearly():
    def broken(p, *_):
        raise RuntimeError("disk full")
    owners = [fixed_owner("a", random_update(0))] + [
        fl.DataOwner(n, np.zeros((3, 1)), np.zeros(3), train_fn=broken) for n in "bc"]
    mo, fed = federation(owners)               # default min_participants=2: a lone update
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="only 1 data owner"):
        fed.run_round()                        # would be revealed as the "aggregate"
    close(mo.params, zeros_model(), atol=0)


BAD = {
    "shape": ({"w": np.zeros((4, 6)), "b": np.zeros(4)},
              r"\['w'\] has shape \(4, 6\), expected \(6, 4\)"),
    "structure": ({"w": np.zeros((6, 4))}, "tree structure"),
    "nan": ({"w": np.full((6, 4), np.nan), "b": np.zeros(4)}, r"update\['w'\] contains NaN"),
    "inf": ({"w": np.zeros((6, 4)), "b": np.array([0, np.inf, 0, 0])}, "NaN or inf"),
    "range": ({"w": np.full((6, 4), 1e20), "b": np.zeros(4)}, "fixed-point range"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_malformed_update_is_refused_before_anything_is_shared(kind, monkeypatch):
    bad, match = BAD[kind]
    shared = []
    orig = backends.SecretChannel.share
    monkeypatch.setattr(backends.SecretChannel, "share",
                        lambda self, tree, prg: shared.append(tree) or orig(self, tree, prg))
    owner = fl.DataOwner("mallory", np.zeros((3, 1)), np.zeros(3), train_fn=lambda p, *_: bad)
    mo, fed = federation([owner])
    with pytest.raises(fl.UpdateError, match="data owner 'mallory'.*" + match) as e:
        fed.run_round()
    assert e.value.owner == "mallory"
    assert shared == []
    close(mo.params, zeros_model(), atol=0)


def test_malformed_update_can_be_skipped():
    ups = [random_update(i) for i in range(2)]
    owners = [fixed_owner("alice", ups[0]), fixed_owner("bob", ups[1]),
              fl.DataOwner("mallory", np.zeros((3, 1)), np.zeros(3),
                           train_fn=lambda p, *_: BAD["nan"][0])]
    mo, fed = federation(owners, on_malformed="skip")
    with pytest.warns(RuntimeWarning, match="'mallory' dropped out.*malformed.*NaN"):
        fed.run_round()
    close(mo.params, tree_mean(ups))


def test_clipping_refuses_updates_too_large_for_fixed_point():
    huge = {"w": np.full((6, 4), 1000.0, np.float32), "b": np.zeros(4, np.float32)}
    _, fed = federation([fixed_owner("eve", huge)], aggregator=fl.Mean(clip_norm=1.0))
    with pytest.raises(fl.UpdateError, match="'eve'.*L2 norm"):
        fed.run_round()


def test_configuration_errors():
    o = [fixed_owner("a", random_update(0))]
    with pytest.raises(ValueError, match="unique"):
        federation(o + o)
    with pytest.raises(ValueError, match="models, not updates"):
        federation(o, aggregator=fl.reptile(0.1), payload="update")
    with pytest.raises(ValueError, match="contradicts"):
        fl.Mean(clip_norm=2.0, dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=1.0))
    with pytest.raises(ValueError, match="collusion"):
        fl.DPConfig(1.0, 1.0, collusion_threshold=3).contributor_std(3)


# ---- differential privacy ----------------------------------------------------------

@pytest.mark.parametrize("threshold", [0, 1])
def test_dp_noise_has_the_configured_std_and_no_party_knows_it(threshold, monkeypatch):
    draws = []
    orig = dp_mod.gaussian
    monkeypatch.setattr(dp_mod, "gaussian", lambda prg, shape, std: draws.append(
        orig(prg, shape, std)) or draws[-1])
    shapes = {"w": (50, 80)}
    params = {"w": np.zeros(shapes["w"], np.float32)}
    owners = [fl.DataOwner(f"o{i}", np.zeros((2, 1)), np.zeros(2), train_fn=lambda p, *_: p)
              for i in range(4)]
    cfg = fl.DPConfig(clip_norm=2.0, noise_multiplier=0.6, collusion_threshold=threshold)
    mo, fed = federation(owners, params=params, aggregator=fl.Mean(dp=cfg))
    rec = fed.run_round()
    noise = mo.params["w"].ravel()
    want = 0.6 * 2.0 / 4                          # noise_multiplier * clip_norm / n_updates
    total_var = want ** 2 * 3 / (3 - threshold)   # each of 3 parties: sigma^2 / (3 - t)
    assert abs(noise.std() / np.sqrt(total_var) - 1) < 0.06
    assert abs(noise.mean()) < 4 * np.sqrt(total_var / noise.size)
    # three computing parties each drew one share of the noise; their sum is what was added
    assert len(draws) == 3
    np.testing.assert_allclose(sum(draws).ravel() / 4, noise, atol=1e-4)
    for d in draws:
        assert abs(d.std() / (cfg.sum_std / np.sqrt(3 - threshold)) - 1) < 0.06
        assert np.corrcoef(d.ravel(), noise)[0, 1] < 0.8      # no single draw is the total
    if threshold == 1:                     # a party that knows its own draw still misses sigma^2
        assert all(np.var(noise * 4 - d.ravel()) > 0.9 * cfg.sum_std ** 2 for d in draws)
    if rec.epsilon is not None:
        assert rec.epsilon == pytest.approx(fl.epsilon(0.6, 1, cfg.delta))


def test_epsilon_from_the_rdp_accountant():
    pytest.importorskip("dp_accounting")
    e1, e10 = fl.epsilon(1.0, 1, 1e-5), fl.epsilon(1.0, 10, 1e-5)
    assert 0 < e1 < e10 < 25
    assert fl.epsilon(4.0, 10, 1e-5) < e10
    assert fl.epsilon(0.0, 10, 1e-5) == float("inf")


def test_dp_fedavg_on_digits_records_epsilon():
    task = D.digits_task(3)
    trainer = fl.LocalTrainer(D.cross_entropy, optax.sgd(0.3), steps=10)
    owners = [fl.DataOwner(f"o{i}", x, y, trainer=trainer, seed=i)
              for i, (x, y) in enumerate(task.owners)]
    mo = fl.ModelOwner(D.init_mlp(jax.random.PRNGKey(0)),
                       evaluator_fn=D.evaluator(task.x_test, task.y_test))
    agg = fl.Mean(dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=0.1))
    hist = fl.Federation(mo, owners, agg, protocol="aby3", progress=False).fit(4, evaluate_every=2)
    assert hist.last_metrics["accuracy"] > 0.5
    eps = hist["epsilon"]
    if eps:                                        # dp-accounting installed
        assert len(eps) == 4 and eps == sorted(eps)


# ---- the notebook -------------------------------------------------------------------

def test_fl_notebook_is_generated_from_its_script():
    import importlib.util
    import nbformat
    spec = importlib.util.spec_from_file_location("make_fl_notebook",
                                                  ROOT / "notebooks" / "make_fl_notebook.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nb = nbformat.read(ROOT / "notebooks" / "04_federated_secure_aggregation.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in mod.build().cells]
