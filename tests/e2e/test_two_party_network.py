"""Two parties and no dealer (semi2k_ot) as real node processes on loopback: results
against plaintext and against the in-process cluster, a training step, the offline
line of the profile, kept secrets, precompute from the API and the CLI, consent, `spu-lite
cost`, and cluster files."""
from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import yaml

import spu_lite as spu
from spu_lite.deploy import cluster_file, cli, joblog, party
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.deploy.policy import JobRefused
from spu_lite.deploy.precompute import (PrecomputeError, decode_counts, encode_counts,
                                        pool_bytes, precompute_on)
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.net.client import JobError
from spu_lite.runtime.protocols.semi2k_common import B2A, MUL
from spu_lite.runtime.protocols.semi2k_ot_mux import MUX
from spu_lite.two_party import correlation_counts, precompute

from .netcluster import log_of, make_cluster_file, running

ULP = 2.0 ** -18


def _two_party(tmp_path, seed=7, edit=None):
    def no_dealer(doc):
        doc["protocol"] = "semi2k_ot"
        if edit:
            edit(doc)
    return make_cluster_file(tmp_path, ["alice", "bob"], seed=seed, edit=no_dealer)


def _ops(x, y):
    return x * y, x @ y.T, x < y, jax.nn.relu(x - y)


def _sgd_step(w, x, y):
    loss = lambda w: jnp.mean((x @ w - y) ** 2)
    opt = optax.sgd(0.1)
    updates, _ = opt.update(jax.grad(loss)(w), opt.init(w), w)
    return optax.apply_updates(w, updates), loss(w)


# -- without processes -------------------------------------------------------------------------

def test_cluster_files_without_a_dealer_are_checked(tmp_path, capsys):
    assert cli.main(["cluster", "keygen", str(tmp_path / "ok"), "--parties", "alice", "bob",
                     "--no-dealer"]) == 0
    spec = cluster_file.load(str(tmp_path / "ok" / "cluster.yaml"))
    assert spec.protocol == "semi2k_ot" and spec.dealer is None and spec.nparties == 2
    assert cli.main(["cluster", "keygen", str(tmp_path / "three"), "--parties", "a", "b", "c",
                     "--protocol", "semi2k_ot"]) == 1
    assert "exactly 2 parties and no dealer" in capsys.readouterr().err
    assert cli.main(["cluster", "keygen", str(tmp_path / "x"), "--parties", "a", "b",
                     "--protocol", "aby3", "--no-dealer"]) == 1
    doc = yaml.safe_load(open(tmp_path / "ok" / "cluster.yaml"))

    def bad(match, **change):
        d = dict(doc, **change)
        with pytest.raises(cluster_file.ClusterFileError, match=match):
            cluster_file.parse(d, str(tmp_path / "ok"))
    third = dict(doc["parties"][0], name="carol", address="127.0.0.1:1")
    bad("needs exactly 2 parties; the file lists 3: alice, bob, carol",
        parties=doc["parties"] + [third])
    bad("semi2k_ot has no dealer; remove `dealer:`", parties=doc["parties"] + [third],
        dealer="carol")
    bad("needs exactly 2 parties; the file lists 1", parties=doc["parties"][:1])
    bad("semi2k needs a dealer.*`protocol: semi2k_ot`", protocol="semi2k")
    bad("max_pool_mb", max_pool_mb=-1)
    three = make_cluster_file(tmp_path / "aby3", ["a", "b", "c"])
    net = NetworkCluster(three, check=False)
    try:
        with pytest.raises(ValueError, match="precompute needs a semi2k_ot cluster"):
            precompute_on(net, {MUL: 8})
    finally:
        net.close()
    assert cli.main(["cluster", "precompute", three, "m.py:f", "--arg", "f32[2]"]) == 1
    assert "precompute is for semi2k_ot clusters" in capsys.readouterr().err


def test_precompute_requests_are_checked_as_hostile_input():
    f = spu.jit(lambda a, b: (a * b, a @ b.T), protocol="semi2k", dealer=None)
    x = np.ones((3, 4))
    counts = correlation_counts(f.lower(x, x).program)
    # the truncations' random bit products (B2A), no truncation pairs
    assert counts == {MUL: 12, B2A: 12 + 9, ("dot", (3, 4), (4, 3), ((1,), (0,), (), ())): 1}
    back = decode_counts(encode_counts(counts), 64)
    assert back == counts and pool_bytes(back) > 0
    for hostile in ("mul", [["mul"]], [["mul", -1]], [["mul", 2 ** 41]], [["rm -rf", 1]],
                    [["trunc", 18, 5]], [["mul", True]], [["rot", 2, 5]], [["rot", 0]], [["and2", -3]], [["mux", 1.5]], [["mux", 2, 3]],
                    [["dot", [3, 4], [5, 4], [[0], [0], [], []], 1]],
                    [["dot", [3, 4], [3, 4], [[7], [1], [], []], 1]],
                    [["dot", [0, 4], [3, 4], [[1], [1], [], []], 1]]):
        with pytest.raises(PrecomputeError):
            decode_counts(hostile, 64)


def test_cost_lists_the_correlations_that_precompute_makes(tmp_path, capsys):
    from spu_lite.tools.cli import main
    (tmp_path / "model.py").write_text("def step(a, b):\n    return a * b\n")
    assert main(["cost", str(tmp_path / "model.py") + ":step", "--arg", "f32[1000]",
                 "--arg", "f32[1000]", "--protocol", "semi2k_ot"]) == 0
    out = capsys.readouterr().out
    assert "mul_trunc" in out and "correlations one call asks for" in out
    assert "mul (Beaver triple)" in out and "1,000" in out and "1,368,000" in out
    assert "random bit (b2a, trunc)" in out and "12,000" in out      # 1,000 truncations
    assert "truncation pair" not in out


# -- real node processes -----------------------------------------------------------------------

@pytest.mark.slow
def test_two_nodes_match_plaintext_and_the_in_process_cluster(tmp_path, monkeypatch):
    """Seeded (tests only): bit-identical to the in-process semi2k_ot cluster with the same
    seed; within a few ulps of plaintext; the correlation traffic (offline bytes) flows
    between the nodes only: the driver sends and receives a small fraction of it."""
    dump = tmp_path / "wire"
    monkeypatch.setenv("SPU_LITE_WIRE_DUMP", str(dump))
    path = _two_party(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-3, 3, (2, 4, 6))
    w, X, Y = rng.normal(size=(6, 1)) * 0.1, rng.normal(size=(8, 6)), rng.normal(size=(8, 1))
    inproc = InProcessCluster(ClusterConfig(protocol="semi2k_ot", seed=7))
    want_ops = spu.jit(_ops, cluster=inproc)(x, y)
    with running(path, tmp_path, env={"SPU_LITE_WIRE_DUMP": str(dump)}):
        net = NetworkCluster(path)
        try:
            got = spu.jit(_ops, cluster=net)(x, y)
            prof = net.last_profile
            step = spu.jit(_sgd_step, cluster=net)(w, X, Y)
            offline = prof.offline.bytes + net.last_profile.offline.bytes
            kept = spu.jit(lambda a: a * 3.0, cluster=net, keep_secret=True)(x)
            offline += net.last_profile.offline.bytes
            product = spu.jit(lambda k, b: k * b, cluster=net, keep_secret=True)(kept, y)
            offline += net.last_profile.offline.bytes
            tripled = spu.reveal(product)
        finally:
            net.close()
    for g, i, p, tol in zip(got, want_ops, _ops(x, y), (4 * ULP, 64 * ULP, 0, 2 * ULP)):
        assert np.array_equal(np.asarray(g), np.asarray(i))
        np.testing.assert_allclose(np.asarray(g, np.float64), p, atol=tol)
    np.testing.assert_allclose(tripled, 3 * x * y, atol=16 * ULP)     # kept between jobs
    plain = _sgd_step(w, X, Y)
    np.testing.assert_allclose(step[0], plain[0], atol=1e-4)
    np.testing.assert_allclose(step[1], plain[1], atol=1e-4)
    assert prof.offline.calls > 0 and prof.offline.bytes > 100_000
    assert prof.offline.rounds > 0 and prof.total.bytes < prof.offline.bytes
    driver = sum((dump / f"driver.{k}").stat().st_size for k in ("sent", "recv"))
    assert driver < offline / 5          # program, inputs, results: no OT message
    assert (dump / "bob.recv").stat().st_size > offline
    assert "INSECURE" in log_of(tmp_path, "alice")


@pytest.mark.slow
def test_precompute_then_the_job_is_online_only(tmp_path):
    """No seed: the nodes run without --insecure-test-seed (os.urandom keys). Precompute
    by the API and by the CLI fills both nodes' pools from counts alone, also under
    allowlist (the job itself is then refused until approved); the next job's offline
    part is zero; oversized and mismatched requests are refused and the nodes keep
    serving."""
    path = _two_party(tmp_path, seed=None, edit=lambda d: d.update(max_pool_mb=4))
    (tmp_path / "model.py").write_text("import jax.numpy as jnp\n\ndef step(a, b):\n"
                                       "    return jnp.maximum(a * b, 0.0)\n")
    x, y = np.linspace(-3, 3, 256), np.linspace(1, 2, 256)
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda a, b: jnp.maximum(a * b, 0.0), cluster=net)
            counts = precompute(f, x, y)
            assert net.last_precompute["bytes"] > 0 and counts[MUL] == counts[MUX] == 256
            np.testing.assert_allclose(f(x, y), np.maximum(x * y, 0), atol=4 * ULP)
            off = net.last_profile.offline
            assert off.calls > 0 and off.seconds == 0 and off.bytes == 0 and off.rounds == 0
            cmd = [sys.executable, "-m", "spu_lite", "cluster", "precompute", path,
                   str(tmp_path / "model.py") + ":step", "--arg", "f32[256]", "--arg", "f32[256]"]
            out = subprocess.run(cmd + ["--times", "2"], capture_output=True, text=True, timeout=300)
            assert out.returncode == 0 and "made 512 mul" in out.stdout, out.stderr
            assert "512 mux" in out.stdout
            for _ in range(2):
                f(x, y)
                assert net.last_profile.offline.bytes == 0
            f(x, y)                                           # pools empty: made now
            assert net.last_profile.offline.bytes > 0
            big = subprocess.run(cmd[:-4] + ["--arg", "f32[100000]", "--arg", "f32[100000]"],
                                 capture_output=True, text=True, timeout=300)
            assert big.returncode == 1 and "exceed max_pool_mb (4 MB" in big.stderr
            send = net.client.send

            def lying_send(r, header, payload=None):
                if r == 0 and header.get("k") == "precompute":
                    header = dict(header, counts=[["mul", 1]])
                send(r, header, payload)
            net.client.send = lying_send
            with pytest.raises(JobError, match="different precompute requests"):
                precompute(f, x, y)
            net.client.send = send
            np.testing.assert_allclose(f(x, y), np.maximum(x * y, 0), atol=4 * ULP)
        finally:
            net.close()
    recs = [r for r in joblog.read(str(tmp_path / "state" / "alice" / "jobs.jsonl"))
            if r["kind"] == "precompute"]
    assert [r["outcome"] for r in recs] == ["ok", "ok", "failed", "failed"]
    assert recs[0]["counts"] and recs[0]["bytes"] > 0
    assert "INSECURE" not in log_of(tmp_path, "alice")


@pytest.mark.slow
def test_node_policies_apply_as_for_other_protocols(tmp_path):
    """alice (allowlist) refuses a program that reveals her input to the driver, and the
    driver is told who refused; precompute (counts only) is served all the same; once
    her operator approves the program with `spu-lite approve`, it runs."""
    path = _two_party(tmp_path, edit=lambda d: d["parties"][0].update(policy="allowlist"))
    secret = np.array([3.25, -1.5, 42.0])
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda v: v * 2.0, cluster=net)
            precompute(f, secret)
            with pytest.raises(JobRefused) as e:
                f(party("alice")(lambda: secret)())
            assert "refused by alice" in str(e.value) and "3.25" not in str(e.value)
            approve = [sys.executable, "-m", "spu_lite", "approve", "--cluster", path,
                       "--party", "alice"]
            listing = subprocess.run(approve, capture_output=True, text=True, check=True,
                                     timeout=300).stdout
            digest = listing.split("\n")[1].split()[0]
            shown = subprocess.run(approve + [digest, "--approve"], capture_output=True,
                                   text=True, check=True, timeout=300).stdout
            assert "cost (semi2k_ot, dry run)" in shown and "offline (correlations by OT" in shown
            np.testing.assert_allclose(f(party("alice")(lambda: secret)()), secret * 2,
                                       atol=4 * ULP)
            assert net.last_profile.offline.bytes == 0          # the pools survived the refusal
        finally:
            net.close()
    alice = joblog.read(str(tmp_path / "state" / "alice" / "jobs.jsonl"))
    assert [(r["kind"], r["outcome"]) for r in alice if r["kind"] != "load"] == [
        ("precompute", "ok"), ("job", "refused"), ("job", "ok")]
