"""Clipping holds for every representable norm (issue 12, part 6). Before: with clip
norm 1, norm 9000 clipped to 0.996, 20000 came out unclipped and 1e5 as 12.2 (the
sum of squares wrapped around the ring)."""
import os

import jax
import numpy as np
import pytest

from spu_lite.fl import clipping
from spu_lite.fl.aggregators import Mean
from spu_lite.fl.backends import SecureBackend
from spu_lite.fl.clipping import RSQRT_BOUND, clip_trees

NORMS = [0.01, 0.5, 0.999, 1.001, 3.0, 9000.0, 20000.0, 1e5, 1e7, 1e10, 1e13]


def _updates(norms, clip, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in norms:
        w, b = rng.normal(size=(5, 3)), rng.normal(size=4)
        scale = n * clip / np.sqrt((w ** 2).sum() + (b ** 2).sum())
        out.append({"w": (w * scale).astype(np.float32), "b": (b * scale).astype(np.float32)})
    return out


def _flat(t):
    return np.concatenate([np.ravel(np.asarray(t["b"], np.float64)),
                           np.ravel(np.asarray(t["w"], np.float64))])


@pytest.mark.parametrize("protocol,rsqrt,clip", [("aby3", "auto", 1.0),
                                                 ("semi2k", "newton", 0.05),
                                                 ("aby3", "newton", 300.0)])
def test_every_representable_norm_is_clipped(protocol, rsqrt, clip):
    """Norms from 1e-2 C to 1e13 (values up to ~5e12, inside the fixed-point range
    |x| < 2^44): the clipped update has norm min(||u||, C) to 1e-3 relative and
    points the same way; updates inside the ball are returned as they are."""
    backend = SecureBackend(protocol, rsqrt=rsqrt, seed=3)
    norms = [n for n in NORMS if n * clip < 2 ** 43.5]
    ups = _updates(norms, clip)
    fn = backend.compile(lambda ts: clip_trees(ts, clip, backend.rsqrt(RSQRT_BOUND)))
    got = fn(ups)
    for n, u, g in zip(norms, ups, got):
        u, g = _flat(u), _flat(g)
        want = min(np.linalg.norm(u), clip)
        grid = np.sqrt(u.size) * 2.0 ** -18        # the input's own fixed-point rounding
        assert abs(np.linalg.norm(g) - want) <= 1e-3 * want + grid, (n, np.linalg.norm(g), want)
        if want > 1000 * grid:
            assert np.dot(u, g) / (np.linalg.norm(u) * np.linalg.norm(g)) > 1 - 1e-4, n
        if n < 1:
            np.testing.assert_allclose(g, u, atol=2e-5 * max(1.0, np.abs(u).max()))


def test_clipping_in_the_clear_matches():
    ups = _updates(NORMS, 1.0)
    got = jax.jit(lambda ts: clip_trees(ts, 1.0, jax.lax.rsqrt))(ups)
    for u, g in zip(ups, got):
        u, g = _flat(u), _flat(g)
        np.testing.assert_allclose(g, u * min(1.0, 1.0 / np.linalg.norm(u)), rtol=1e-4,
                                   atol=1e-7)


def test_clip_norm_limits_are_pinned():
    """Supported clip norms: [2^-6, 2^11], just inside works, just outside is refused."""
    for c in (2.0 ** -6, 2.0 ** 11):
        Mean(clip_norm=c)
        backend = SecureBackend("ref2k", seed=1)
        ups = _updates([0.5, 4.0], c)
        got = backend.compile(lambda ts: clip_trees(ts, c, jax.lax.rsqrt))(ups)
        assert abs(np.linalg.norm(_flat(got[1])) - c) < 1e-3 * c
    for c in (2.0 ** -6.1, 2.0 ** 11.1):
        with pytest.raises(ValueError, match="clip_norm"):
            Mean(clip_norm=c)
        with pytest.raises(ValueError, match="clip_norm"):
            clip_trees(_updates([1.0], 1.0), c, jax.lax.rsqrt)


def test_rungs_follow_the_norm_bound():
    """Owners refuse norms >= 4096 (in-process and on nodes): one rung above the first
    suffices; clipping without that bound (clip_trees' default) takes more."""
    assert clipping.rungs_needed(4096.0, 1.0) == 1
    assert clipping.rungs_needed(2.0 ** 44 * 2 ** 10, 1.0) == 6


LOADER = '''
import numpy as np
def update(params, shard, n_shards, norm):
    rng = np.random.default_rng(shard)
    u = {k: rng.normal(size=np.shape(v["__array__"])) for k, v in params.items()}
    s = norm[shard] / np.sqrt(sum((a ** 2).sum() for a in u.values()))
    return {k: (a * s).astype(np.float32) for k, a in u.items()}
'''


@pytest.mark.slow
def test_networked_owners_validate_and_clip_like_in_process_ones(tmp_path):
    """A data owner's node checks its update as an in-process owner does: a norm of
    20000 is refused (the driver learns the rule, not the norm); an honest norm of 3000
    is clipped to C under MPC, so the mean stays within the DP bound."""
    from spu_lite.deploy.driver import NetworkCluster
    from spu_lite.fl.networked import NetworkFederation
    from spu_lite.runtime.net.client import JobError
    from tests.e2e.netcluster import log_of, make_cluster_file, running

    (tmp_path / "big_site.py").write_text(LOADER)

    def edit(doc):
        for entry in doc["parties"]:
            entry["loaders"] = {"up": "big_site:update"}
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], seed=None, trust=False,
                             edit=edit)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    params = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(3, np.float32)}
    norms = [3000.0, 0.5, 20000.0]
    with running(path, tmp_path, env=env):
        net = NetworkCluster(path)
        try:
            fed = NetworkFederation(net, ["alice", "bob", "carol"], "up",
                                    aggregator=Mean(clip_norm=1.0))
            fed.loader_args = {"norm": norms}
            with pytest.raises(JobError, match="L2 norm bound") as err:
                fed.run_round(params, 1)
            assert "20000" not in str(err.value)
            norms[2] = 1.0
            fed.loader_args = {"norm": norms}
            new, _ = fed.run_round(params, 2)
        finally:
            net.close()
    assert "L2 norm 2e+04" in log_of(tmp_path, "carol")     # the detail stays with carol
    ups = []
    for shard, n in enumerate(norms):
        rng = np.random.default_rng(shard)
        u = {k: rng.normal(size=np.shape(v)) for k, v in params.items()}
        s = n / np.sqrt(sum((a ** 2).sum() for a in u.values()))
        ups.append(np.concatenate([np.ravel(u["b"] * s), np.ravel(u["w"] * s)]))
    want = np.mean([u * min(1.0, 1.0 / np.linalg.norm(u)) for u in ups], axis=0)
    got = np.concatenate([np.ravel(new["b"]), np.ravel(new["w"])])
    np.testing.assert_allclose(got, want, atol=1e-3)
