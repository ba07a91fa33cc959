"""Consent on real node processes: a node runs a job only if its policy allows it, the
driver is told who refused and why, `spu-lite approve` turns a refusal into a run, every
job is in the node's job log, and the semi2k dealer never receives a program."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.deploy import cluster_file, joblog, party
from spu_lite.deploy.approvals import ApprovalStore
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.deploy.launcher import node_command
from spu_lite.deploy.policy import (JobRefused, JobView, Policy, decide, parse_policy,
                                    program_digest)
from spu_lite.frontend import InputError

from .netcluster import make_cluster_file, running, with_policies

IR = """func @f(%0: secret<fxp<64,18>>[3]) -> (secret<fxp<64,18>>[3]) attributes {field=64, fxp_bits=18} {
  %1 = neg(%0) : secret<fxp<64,18>>[3] loc("a.py:3:1 (f)")
  return %1
}"""


def _approve(path, name, *args):
    return subprocess.run([sys.executable, "-m", "spu_lite", "approve", "--cluster", path,
                           "--party", name, *args], capture_output=True, text=True,
                          timeout=300, check=True).stdout


def _log(path, name):
    spec = cluster_file.load(path)
    return joblog.read(os.path.join(spec.parties[spec.rank(name)].state_dir, "jobs.jsonl"))


# -- the digest and the decision, without processes ----------------------------------------

def test_digest_ignores_source_locations_and_sees_bindings_and_routing():
    d = program_digest(IR, [["mine", "patients", 0]], ["driver"])
    moved = IR.replace('loc("a.py:3:1 (f)")', 'loc("b.py:40:7 (f)")')
    assert program_digest(moved, [["mine", "patients", 0]], ["driver"]) == d
    others = [program_digest(IR.replace("neg", "abs"), [["mine", "patients", 0]], ["driver"]),
              program_digest(IR, [["mine", "labs", 0]], ["driver"]),
              program_digest(IR, [["party", "bob"]], ["driver"]),
              program_digest(IR, [["mine", "patients", 0]], ["alice"]),
              program_digest(IR, [["mine", "patients", 0]], ["kept"]),
              program_digest(IR, [["mine", "patients", 0]], ["driver"], {"exp_mode": "pade"})]
    assert len({d, *others}) == 7


def test_policies_decide_as_documented():
    def view(inputs, outputs, opens=0, kept=False):
        return JobView("alice", "f", IR, inputs, outputs, {}, opens, kept)
    mine_to_me, mine_to_driver = view([["mine", "p", 0]], ["alice"]), view([["mine", "p", 0]], ["driver"])
    others = view([["party", "bob"]], ["driver"])
    allow, log = Policy(), parse_policy("log", "alice")
    rules = parse_policy({"rules": ["outputs-only-to-me", "reads-none-of-mine"]}, "alice")
    assert not decide(allow, mine_to_me, {})[0]
    assert decide(allow, mine_to_driver, {mine_to_driver.digest: "approve"}) == (True, "approved")
    assert decide(log, mine_to_driver, {mine_to_driver.digest: "deny"}) == (True, "policy log")
    assert decide(rules, mine_to_me, {}) == (True, "rule outputs-only-to-me")
    assert decide(rules, others, {}) == (True, "rule reads-none-of-mine")
    ok, why = decide(rules, mine_to_driver, {})
    assert not ok and "output 0 goes to the driver" in why and "reads loader p" in why
    assert not decide(rules, view([["mine", "p", 0]], ["alice"], opens=1), {})[0]
    assert not decide(rules, view([["kept", "ab", 0]], ["driver"], kept=True), {})[0]
    assert not decide(rules, mine_to_me, {mine_to_me.digest: "deny"})[0]   # deny wins
    for bad in ("yes", {"rules": []}, {"rules": ["anything-goes"]}, ["log"]):
        with pytest.raises(ValueError, match="policy"):
            parse_policy(bad, "alice")


def test_cluster_file_policy_default_and_errors(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"],
                             edit=with_policies(alice={"rules": ["outputs-only-to-me"]}))
    spec = cluster_file.load(path)
    assert spec.parties[0].policy == Policy("rules", ("outputs-only-to-me",))
    assert spec.parties[1].policy == Policy("log")               # what keygen writes
    assert spec.parties[0].state_dir == str(tmp_path / "state" / "alice")
    import yaml
    doc = yaml.safe_load(open(path))
    del doc["parties"][2]["policy"]
    assert cluster_file.parse(doc, str(tmp_path)).parties[2].policy == Policy("allowlist")
    doc["parties"][2]["policy"] = "trust-everyone"
    with pytest.raises(cluster_file.ClusterFileError, match="carol: policy must be"):
        cluster_file.parse(doc, str(tmp_path))


# -- real node processes ----------------------------------------------------------------------

@pytest.mark.slow
def test_allowlist_refuses_until_the_operator_approves(tmp_path):
    """alice (allowlist) refuses `lambda x: x` on her input; the driver's error names her;
    approved with `spu-lite approve`, the same program runs, in later calls too. bob and
    carol (policy log) run and log every job."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], edit=with_policies(alice="allowlist"))
    secret = np.array([3.25, -1.5, 42.0])
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            ident = spu.jit(lambda x: x, cluster=net)
            with pytest.raises(JobRefused) as e:
                ident(party("alice")(lambda: secret)())
            msg = str(e.value)
            assert "refused by alice (program" in msg and "not approved" in msg
            assert "bob (" not in msg and "carol (" not in msg
            assert "3.25" not in msg
            listing = _approve(path, "alice")
            assert "1 program(s) pending at alice" in listing
            digest = listing.split("\n")[1].split()[0]
            shown = _approve(path, "alice", digest, "--approve", "--ir")
            assert "reads from alice: loader 'driver code' (leaf 0)" in shown
            assert "revealed to the DRIVER" in shown and "func @<lambda>" in shown
            assert f"approved: {digest}" in shown
            assert "0 program(s) pending" in _approve(path, "alice")
            np.testing.assert_allclose(ident(party("alice")(lambda: secret)()), secret, atol=1e-4)
            twice = spu.jit(lambda x: x * 2, cluster=net)          # another program: refused
            with pytest.raises(JobRefused, match="refused by alice"):
                twice(party("alice")(lambda: secret)())
            np.testing.assert_allclose(ident(party("alice")(lambda: secret + 1)()), secret + 1,
                                       atol=1e-4)                  # new data, same program
        finally:
            net.close()
    alice, bob = _log(path, "alice"), _log(path, "bob")
    jobs = [r for r in alice if r["kind"] == "job"]
    assert [r["outcome"] for r in jobs] == ["refused", "ok", "refused", "ok"]
    assert jobs[0]["digest"].startswith(digest) and jobs[1]["digest"] == jobs[0]["digest"]
    assert jobs[1]["reason"] == "approved" and jobs[1]["inputs"] == [["mine", "driver code", 0]]
    assert jobs[1]["outputs"] == [{"name": "out", "to": "driver"}] and jobs[1]["bytes"] >= 0
    assert [r["outcome"] for r in alice if r["kind"] == "load"] == ["ok"] * 4
    bjobs = [r for r in bob if r["kind"] == "job"]
    assert [r["outcome"] for r in bjobs] == ["refused", "ok", "refused", "ok"]
    assert bjobs[1]["reason"] == "policy log" and bjobs[1]["inputs"] == [["party", "alice"]]
    assert "refused by alice" in bjobs[0]["reason"]


@pytest.mark.slow
def test_rules_allow_outputs_only_to_me_and_refuse_reveals_of_my_data(tmp_path):
    """alice: outputs-only-to-me; bob: reads-none-of-mine. A job reading both their inputs
    for the driver is refused by both, and the driver is told both reasons; a kept secret
    made from alice's data cannot be opened to the driver either."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], edit=with_policies(
        alice={"rules": ["outputs-only-to-me"]}, bob={"rules": ["reads-none-of-mine"]}))
    a, b = np.array([1.5, 2.5]), np.array([10.0, 20.0])
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            ha, hb = party("alice")(lambda: a)(), party("bob")(lambda: b)()
            rec = spu.jit(lambda x: x * 2, cluster=net, reveal_to="alice")(ha)
            np.testing.assert_allclose(np.load(rec.path)["out"], a * 2, atol=1e-4)
            with pytest.raises(JobRefused) as e:
                spu.jit(lambda x: x * 2, cluster=net)(ha)
            assert "refused by alice (" in str(e.value) and "output 0 goes to the driver" in str(e.value)
            with pytest.raises(JobRefused) as e:
                spu.jit(lambda x, y: x + y, cluster=net)(ha, hb)
            assert "alice (" in str(e.value) and "bob (" in str(e.value)
            assert "reads loader driver code" in str(e.value)
            kept = spu.jit(lambda x: x + 0.0, cluster=net, keep_secret=True)(ha)
            with pytest.raises(JobRefused, match="alice"):
                spu.reveal(kept)
            # a kept secret of carol's data: alice's rule refuses its reveal, bob's allows it
            keptc = spu.jit(lambda y: y + 0.0, cluster=net, keep_secret=True)(
                party("carol")(lambda: b)())
            with pytest.raises(JobRefused) as e:
                spu.reveal(keptc)
            assert "alice (" in str(e.value) and "bob (" not in str(e.value)
        finally:
            net.close()
    pending = ApprovalStore(str(tmp_path / "state" / "alice")).pending()
    assert {tuple(r["outputs"]) for r in pending} == {("driver",)}
    bob = [r for r in _log(path, "bob") if r["kind"] == "job"]
    assert bob[0]["reason"] == "rule reads-none-of-mine"


@pytest.mark.slow
def test_job_log_records_failures_and_node_log_flag(tmp_path):
    """`spu-lite node --log FILE` writes the log there; a failed job is logged as failed."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"])
    logfile = tmp_path / "audit" / "alice-jobs.jsonl"
    alice = subprocess.Popen(node_command(path, "alice", insecure_test_seed=True)
                             + ["--log", str(logfile)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with running(path, tmp_path, names=["bob", "carol"]):
            net = NetworkCluster(path)
            try:
                x = party("alice")(lambda: np.full(3, 1e15))()         # out of the ring
                with pytest.raises(InputError):
                    spu.jit(lambda v: v * 2, cluster=net)(x)
                np.testing.assert_allclose(spu.jit(lambda v: v + 1, cluster=net)(np.ones(2)),
                                           2.0, atol=1e-4)
            finally:
                net.close()
    finally:
        alice.terminate()
        alice.wait(10)
    recs = [r for r in joblog.read(str(logfile)) if r["kind"] == "job"]
    assert [r["outcome"] for r in recs] == ["failed", "ok"]
    assert recs[1]["inputs"] == ["driver"] and recs[1]["rounds"] >= 0
    assert oct(os.stat(logfile).st_mode & 0o777) == "0o600"
    assert not (tmp_path / "state" / "alice" / "jobs.jsonl").exists()


@pytest.mark.slow
def test_the_dealer_receives_no_program(tmp_path, monkeypatch):
    """semi2k on real nodes with the frame dump: the computing parties receive the IR
    text, the driver's constants and source paths; the dealer receives none of them."""
    dump = tmp_path / "wire"
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave")
    marker = 4321.25                                     # a constant of the driver's
    with running(path, tmp_path, env={"SPU_LITE_WIRE_DUMP": str(dump)}):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda x, y: (x @ y.T) * marker + (x > y).sum(), cluster=net)
            x, y = np.random.default_rng(0).normal(size=(2, 4, 4))
            np.testing.assert_allclose(f(x, y), (x @ y.T) * marker + (x > y).sum(), rtol=1e-3)
        finally:
            net.close()
    alice, dave = (dump / "alice.recv").read_bytes(), (dump / "dave.recv").read_bytes()
    secrets = [b"func @", b"4321.25", os.path.basename(__file__).encode(), b"loc(",
               b"program", b"inputs", b"reveal_to"]
    assert all(s in alice for s in secrets)                 # the probe sees what it looks for
    assert [s for s in secrets if s in dave] == []
    assert len(dave) > 1000                                 # the dealer did hear requests
    dealer = _log(path, "dave")
    assert [r["kind"] for r in dealer] == ["dealer"] and dealer[0]["requests"] > 0
    assert "digest" not in dealer[0]


@pytest.mark.slow
def test_a_driver_that_tells_parties_different_jobs_is_refused(tmp_path):
    """The driver tells alice (outputs-only-to-me) that her input is revealed to her and
    tells bob and carol (log) to return their shares to the driver, whose two shares
    would reconstruct it under aby3. The parties compare fingerprints: nobody runs it."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"],
                             edit=with_policies(alice={"rules": ["outputs-only-to-me"]}))
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            send = net.client.send

            def lying_send(r, header, payload=None):
                if r == 0 and header.get("k") == "job":
                    header = dict(header, reveal_to=0)
                send(r, header, payload)
            net.client.send = lying_send
            h = party("alice")(lambda: np.array([7.5, 8.5]))()
            with pytest.raises(JobRefused, match="the driver sent .* a different job than"):
                spu.jit(lambda x: x, cluster=net)(h)
        finally:
            net.close()
    assert [r["outcome"] for r in _log(path, "bob") if r["kind"] == "job"] == ["refused"]
