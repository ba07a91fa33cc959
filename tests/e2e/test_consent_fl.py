"""Networked federated learning under consent: each data owner's node reveals only the
aggregate its operator agreed to."""
from __future__ import annotations

import jax
import pytest

import spu_lite as spu
from spu_lite.deploy import party
from spu_lite.deploy.approvals import ApprovalStore
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.deploy.policy import JobRefused
from spu_lite.fl import digits as D
from spu_lite.fl.networked import NetworkFederation, params_to_json

from .netcluster import running
from .test_consent import _approve
from .test_fl_network import fl_site

OWNERS = ["alice", "bob", "carol"]


@pytest.mark.slow
def test_owners_reveal_only_the_aggregate_they_approved(tmp_path):
    """Owners' policy: rules [outputs-only-to-me] (so the secure sum, which stays
    secret-shared, runs); opening it to the model owner needs each operator's approval,
    given once with `spu-lite approve` and valid for every later round. An identical
    opening program applied to one owner's update is refused."""
    path, env, dumps = fl_site(tmp_path, OWNERS, policy={"rules": ["outputs-only-to-me"]})
    task = D.digits_task(n_owners=3, seed=0)
    params = D.init_mlp(jax.random.PRNGKey(0))
    with running(path, tmp_path, env=env):
        net = NetworkCluster(path)
        try:
            fed = NetworkFederation(net, OWNERS, "fl_update",
                                    evaluate=D.evaluator(task.x_test, task.y_test))
            fed.loader_args = {"round": 1}
            with pytest.raises(JobRefused) as e:
                fed.run_round(params, 1)
            assert all(f"{n} (program" in str(e.value) for n in OWNERS)
            for name in OWNERS:                  # each operator reviews and approves
                pending = ApprovalStore(str(tmp_path / "state" / name)).pending()
                assert len(pending) == 1 and pending[0]["outputs"] == ["driver"] * len(params)
                assert pending[0]["mine_in_kept"]
                shown = _approve(path, name, pending[0]["digest"][:12], "--approve", "--no-cost")
                assert "a kept secret made from this party's data" in shown
            for r in range(1, 4):                # no further approvals needed
                fed.loader_args = {"round": r}
                params, rec = fed.run_round(params, r)
                fed.history.append(rec)
            # the approved opening, applied to a kept copy of alice's update alone
            one = spu.jit(lambda u: u, cluster=net, keep_secret=True)(
                party("alice")("fl_update")(params_to_json(params), shard=0, n_shards=3, round=9))
            with pytest.raises(JobRefused) as e:
                fed.backend.scale(one, 1.0)
            assert "alice (program" in str(e.value)
        finally:
            net.close()
    acc = fed.history["accuracy"]
    assert acc[-1] > acc[0]
