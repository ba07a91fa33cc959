"""Federated learning on real node processes: every node trains on its own digits shard,
shares its update itself, and the driver (the model owner) receives only the mean."""
import os

import jax
import numpy as np
import pytest

from spu_lite.runtime.ring import Ring
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.fl import digits as D
from spu_lite.fl.aggregators import Mean
from spu_lite.fl.networked import NetworkFederation, params_from_json, params_to_json

from .netcluster import make_cluster_file, running

LOADER = '''
import numpy as np, jax, optax
from spu_lite.fl import digits as D
from spu_lite.fl.aggregators import Mean
from spu_lite.fl.trainer import LocalTrainer
from spu_lite.fl.networked import params_from_json

TASK = D.digits_task(n_owners=3, seed=0)
TRAINER = LocalTrainer(D.cross_entropy, optax.sgd(0.1), steps=25, batch_size=32)
DUMP = {}

def update(params, shard, n_shards, round):
    params = params_from_json(params)
    x, y = TASK.owners[shard]
    new, _ = TRAINER(params, x, y, jax.random.PRNGKey(1000 * round + shard))
    up = jax.tree_util.tree_map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64), new, params)
    np.save(f"{__import__('os').environ['FL_DUMP']}/update-{shard}-{round}.npy",
            np.concatenate([np.ravel(v) for k, v in sorted(up.items())]))
    return up

def count(shard, n_shards, round):     # shards are equal; declared counts differ, to test weighting
    return np.array([len(TASK.owners[shard][1]) * (shard + 1)], np.int64)
'''


def fl_site(tmp_path, parties, loaders=("fl_update",), **entry):
    """Cluster file of real nodes whose parties register LOADER's functions (fl_site.py,
    on the nodes' path) under `loaders`, plus cluster-file keys `entry` for each party.
    Returns (path, env for the nodes, the folder where owners dump their updates)."""
    (tmp_path / "fl_site.py").write_text(LOADER)
    dumps = tmp_path / "updates"
    dumps.mkdir()
    funcs = {"fl_update": "fl_site:update", "fl_count": "fl_site:count"}

    def edit(doc):
        for e in doc["parties"]:
            e["loaders"] = {name: funcs[name] for name in loaders}
            e.update(entry)
    path = make_cluster_file(tmp_path, parties, trust=False, edit=edit)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()]), "FL_DUMP": str(dumps)}
    return path, env, dumps


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One set of three real nodes for the networked FL tests (starting nodes is the
    slow part); each test connects its own driver and uses its own round numbers, so
    the owners' dumped updates do not collide."""
    tmp_path = tmp_path_factory.mktemp("fl_site")
    path, env, dumps = fl_site(tmp_path, ["alice", "bob", "carol"], loaders=("fl_update", "fl_count"))
    with running(path, tmp_path, env=env):
        yield path, dumps, tmp_path


def test_builtin_noise_loader():
    """spu_lite.gaussian_noise: noise shaped like the JSON shapes, fresh per call, bad
    arguments refused."""
    from spu_lite.deploy.loaders import LoaderError, named
    fn = named("spu_lite.gaussian_noise", {}, "alice")
    a = fn({"w": [300, 20], "b": [20]}, 0.5)
    assert a["w"].shape == (300, 20) and a["b"].shape == (20,) and a["w"].dtype == np.float32
    assert abs(float(a["w"].std()) - 0.5) < 0.03
    assert not np.array_equal(fn([5], 1.0), fn([5], 1.0))
    for bad in (([2, -1], 1.0), ("x", 1.0), ([2], -1.0), ([2], float("nan"))):
        with pytest.raises(LoaderError):
            fn(*bad)


def test_params_json_round_trip():
    p = D.init_mlp(jax.random.PRNGKey(0))
    back = params_from_json(params_to_json(p))
    for k in p:
        np.testing.assert_array_equal(back[k], p[k])


@pytest.mark.slow
def test_networked_secure_fedavg_learns_and_the_model_owner_sees_only_the_mean(site, tmp_path):
    path, dumps, _ = site
    wire = tmp_path / "wire"
    os.environ["SPU_LITE_WIRE_DUMP"] = str(wire)        # the driver's frames, in the clear
    task = D.digits_task(n_owners=3, seed=0)
    params = D.init_mlp(jax.random.PRNGKey(0))
    clip = 2.0          # clipping under MPC, through a secret kept at the nodes
    try:
        net = NetworkCluster(path)
        revealed = []                       # every plaintext the driver obtains from the nodes
        real_run = net.run

        def recording_run(*a, **k):
            out = real_run(*a, **k)
            revealed.append([Ring(64).decode(o, 18) for o in out if isinstance(o, np.ndarray)])
            return out
        net.run = recording_run
        try:
            fed = NetworkFederation(net, ["alice", "bob", "carol"], "fl_update",
                                    evaluate=D.evaluator(task.x_test, task.y_test),
                                    aggregator=Mean(clip_norm=clip))
            rounds = 6
            for r in range(1, rounds + 1):
                fed.loader_args = {"round": r}
                params, rec = fed.run_round(params, r)
                fed.history.append(rec)
        finally:
            net.close()
    finally:
        os.environ.pop("SPU_LITE_WIRE_DUMP", None)
    acc = fed.history["accuracy"]
    assert acc[-1] > 0.85 and acc[-1] > acc[0]
    # what the driver's process obtains per round: the mean of the clipped updates (the
    # clipped sum stays at the nodes; only its scaled value is revealed)
    revealed = [outs for outs in revealed if outs]
    assert len(revealed) == rounds
    ring = Ring(64)
    for r, outs in enumerate(revealed, start=1):
        got = np.concatenate([o.ravel() for o in outs])       # leaves in sorted key order
        ups = [np.load(dumps / f"update-{i}-{r}.npy") for i in range(3)]
        ups = [u * min(1.0, clip / np.linalg.norm(u)) for u in ups]        # clipped
        np.testing.assert_allclose(got, np.mean(ups, axis=0), atol=1e-3)
        for u in ups:
            assert np.abs(got - u).max() > 1e-2            # no output is an individual update
    # and no frame it received carries an update in the clear, in float or fixed point
    seen = (wire / "driver.recv").read_bytes()
    for f in sorted(dumps.glob("update-*.npy")):
        u = np.load(f)
        big = u[np.abs(u) > 1e-3][:50]          # distinctive values (zeros are everywhere)
        assert len(big) > 10
        enc = ring.encode(big, 18)
        assert [v for v in big if v.tobytes() in seen] == [], f.name
        assert [v for v in enc if v.tobytes() in seen] == [], f.name


@pytest.mark.slow
def test_networked_dp_noise_is_drawn_at_the_nodes(site):
    """Mean(dp=...) on real nodes: every computing node draws its share of the Gaussian
    noise itself (built-in loader) and shares it; the revealed mean is the clipped mean
    plus noise of std noise_multiplier * clip_norm / n per coordinate."""
    from spu_lite.fl.dp import DPConfig

    path, dumps, _ = site
    params = D.init_mlp(jax.random.PRNGKey(0))
    clip, z, r = 2.0, 1.0, 11
    net = NetworkCluster(path)
    try:
        fed = NetworkFederation(net, ["alice", "bob", "carol"], "fl_update",
                                aggregator=Mean(dp=DPConfig(clip_norm=clip, noise_multiplier=z)))
        fed.loader_args = {"round": r}
        new, rec = fed.run_round(params, 1)
    finally:
        net.close()
    got = np.concatenate([np.ravel(np.asarray(new[k]) - np.asarray(params[k])) for k in sorted(params)])
    ups = [np.load(dumps / f"update-{i}-{r}.npy") for i in range(3)]
    clipped = np.mean([u * min(1.0, clip / np.linalg.norm(u)) for u in ups], axis=0)
    noise = got - clipped
    assert noise.size > 1000
    np.testing.assert_allclose(noise.std(), z * clip / 3, rtol=0.1)
    assert abs(noise.mean()) < 0.1 * z * clip / 3
    assert rec.epsilon is None or rec.epsilon > 0


@pytest.mark.slow
def test_networked_weighted_mean(site):
    """WeightedMean on real nodes: each owner shares its update and its example count
    (two loaders); the driver obtains sum_i n_i u_i / sum_i n_i."""
    from spu_lite.fl.aggregators import WeightedMean

    path, dumps, _ = site
    params = D.init_mlp(jax.random.PRNGKey(0))
    r = 21
    with pytest.raises(ValueError, match="weight_loader"):
        NetworkFederation(None, ["alice", "bob"], "fl_update", aggregator=WeightedMean())
    net = NetworkCluster(path)
    try:
        fed = NetworkFederation(net, ["alice", "bob", "carol"], "fl_update",
                                aggregator=WeightedMean(), weight_loader="fl_count")
        fed.loader_args = {"round": r}
        new, _ = fed.run_round(params, 1)
    finally:
        net.close()
    got = np.concatenate([np.ravel(np.asarray(new[k]) - np.asarray(params[k])) for k in sorted(params)])
    task = D.digits_task(n_owners=3, seed=0)
    n = np.array([len(task.owners[i][1]) * (i + 1) for i in range(3)], np.float64)
    assert len(set(n)) > 1                                 # the weights matter
    ups = [np.load(dumps / f"update-{i}-{r}.npy") for i in range(3)]
    want = sum(w * u for w, u in zip(n, ups)) / n.sum()
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert np.abs(got - np.mean(ups, axis=0)).max() > 1e-3  # not the unweighted mean
