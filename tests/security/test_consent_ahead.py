"""Consent without a round trip (spu_lite/deploy/consent.py) on real node processes:
the parties that allow a job start it before they have the others' verdicts, so a
refusal must still stop every party cleanly, name the refusing party at the driver,
and let nothing out of the computation: no node returns output shares to the driver
(its frame dump has no `done` reply for the refused job), and the nodes serve the
next job with fresh protocol state."""
from __future__ import annotations

import os

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.deploy import cluster_file, joblog, party
from spu_lite.deploy.approvals import ApprovalStore
from spu_lite.deploy.consent import ConsentGate
from spu_lite.deploy.driver import NetworkCluster, refusal
from spu_lite.deploy.policy import JobRefused
from spu_lite.runtime.link import PeerError
from tests.e2e.netcluster import make_cluster_file, running, with_policies


def _jobs(path, name):
    spec = cluster_file.load(path)
    log = joblog.read(os.path.join(spec.parties[spec.rank(name)].state_dir, "jobs.jsonl"))
    return [r for r in log if r["kind"] == "job"]


def _done_replies(dump) -> int:
    """`done` replies (output shares) the driver received so far."""
    f = dump / "driver.recv"
    return f.read_bytes().count(b'"k":"done"') if f.exists() else 0


@pytest.mark.slow
def test_a_refusal_stops_parties_that_started(tmp_path, monkeypatch):
    """aby3; carol: outputs-only-to-me; alice and bob: log. carol's data kept secret
    (allowed). A product of the driver's secrets for the driver: alice and bob start
    it, reach a step that needs carol and stop on her refusal; the driver's error
    names carol only. The kept secret, opened to the driver: alice and bob hold all three of its share
    components, and neither returns them (no `done` reply). Then a product revealed
    to carol runs."""
    dump = tmp_path / "wire"
    monkeypatch.setenv("SPU_LITE_WIRE_DUMP", str(dump))        # the driver's frames
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"],
                             edit=with_policies(carol={"rules": ["outputs-only-to-me"]}))
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-4, 4, (2, 4096))
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            kept = spu.jit(lambda c: c * 2.0, cluster=net, keep_secret=True)(
                party("carol")(lambda: x)())                      # allowed: it stays shared
            mul = spu.jit(lambda a, b: a * b, cluster=net)
            before = _done_replies(dump)
            assert before == 3                  # the probe sees the kept job's replies
            with pytest.raises(JobRefused) as e:
                mul(x, y)                       # in the session: stopped during the op
            msg = str(e.value)
            assert "refused by carol (" in msg and "output 0 goes to the driver" in msg
            assert "alice (" not in msg and "bob (" not in msg
            assert _done_replies(dump) == before

            before = _done_replies(dump)
            with pytest.raises(JobRefused, match="refused by carol"):
                spu.reveal(kept)
            assert _done_replies(dump) == before

            add = spu.jit(lambda a, b: a * b + 3.0, cluster=net, reveal_to="carol")
            rec = add(x, y)                              # to carol: allowed; fresh state
            np.testing.assert_allclose(np.load(rec.path)["out"], x * y + 3.0, atol=1e-3)
        finally:
            net.close()
    for name in ("alice", "bob", "carol"):
        jobs = _jobs(path, name)
        assert [r["outcome"] for r in jobs] == ["ok", "refused", "refused", "ok"], name
        assert all("refused by carol (" in jobs[i]["reason"] for i in (1, 2)), name


@pytest.mark.slow
def test_a_refusal_stops_a_semi2k_party_and_the_dealer(tmp_path):
    """semi2k; bob refuses (allowlist); alice (log) starts a comparison, asks the
    dealer for correlations, and stops at her first exchange with bob; the dealer is
    told too. The driver names bob; after bob's operator approves, the same program
    runs and is right."""
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave",
                             edit=with_policies(bob="allowlist"))
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-4, 4, (2, 2048))
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            less = spu.jit(lambda a, b: a < b, cluster=net)
            for _ in range(2):
                with pytest.raises(JobRefused, match=r"refused by bob \(program .* not approved"):
                    less(x, y)
            approvals = ApprovalStore(net.spec.parties[1].state_dir)
            (rec,) = approvals.pending()
            approvals.record(rec, "approve")
            np.testing.assert_array_equal(less(x, y), x < y)
        finally:
            net.close()
    assert [r["outcome"] for r in _jobs(path, "alice")] == ["refused", "refused", "ok"]
    assert [r["outcome"] for r in _jobs(path, "bob")] == ["refused", "refused", "ok"]


class _Link:
    """The inner transport of one node: the peer's link has failed (PeerError on recv),
    as when a peer's stop reaches this node through the dealer before its verdict."""

    def __init__(self):
        self.sent, self.waits = [], 0

    def start_job(self, job):
        pass

    def send(self, to, payload):
        self.sent.append((to, payload))

    def pending(self, frm):
        return False

    def recv(self, frm):
        self.waits += 1
        raise PeerError("dave: party 'alice' stopped job 1: alice: JobRefused: refused by bob")


@pytest.mark.parametrize("allowed", [False, True])
def test_a_refusing_node_stops_with_its_refusal_when_a_peer_link_fails_first(allowed):
    """The race a loaded machine showed: bob refused, alice read it and stopped, and her
    stop reached bob through the dealer before her verdict; bob logged the job as
    failed. A node that refused fails with JobRefused naming itself whatever its links
    do; a node that allowed still reports the failed link."""
    link = _Link()
    gate = ConsentGate(link, rank=1, computing=2, names={0: "alice", 1: "bob"})
    gate.start_job(1)
    gate.open(b"fp", allowed, "" if allowed else "program 585b is not approved")
    if allowed:
        with pytest.raises(PeerError, match="alice"):
            gate.settle()
    else:
        with pytest.raises(JobRefused, match=r"^refused by bob \(program 585b is not approved\)$"):
            gate.settle()
    assert [to for to, _ in link.sent] == [0]          # the verdict went out first
    assert link.waits == 1                             # no second wait on the failed link


def test_the_driver_reports_the_refusal_that_names_every_refusing_party():
    """bob's link failed before he read carol's verdict: his refusal names only
    himself; alice read both. The driver's error is the one naming both."""
    reasons = {0: "JobRefused: refused by bob (not approved); carol (outputs-only-to-me)",
               1: "JobRefused: refused by bob (not approved)",
               2: "PeerError: party 'alice' stopped job 1"}
    assert refusal(reasons.values()) == "refused by bob (not approved); carol (outputs-only-to-me)"
    assert refusal(reversed(list(reasons.values()))) == reasons[0][len("JobRefused: "):]
    assert refusal(["PeerError: x"]) is None
