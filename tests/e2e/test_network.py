"""Networked deployment: real node processes on 127.0.0.1 over CURVE-encrypted zmq.

Results must be bit-identical to the in-process cluster with the same seed; a party's
own input must never reach another process in the clear; a process without the
cluster's keys gets nothing; a dead or hung party is named within the timeout and a
restarted one serves the next job.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zmq

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.link import PeerError
from spu_lite.runtime.net.client import JobError
from spu_lite.runtime.party import local_prg
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.protocols.dealing import SeededShare
from spu_lite.runtime.ring import Ring
from spu_lite.deploy import cluster_file, party
from spu_lite.deploy.driver import NetworkCluster
from spu_lite.frontend import InputError

from .netcluster import log_of, make_cluster_file, running

SEED = 7
CASES = {
    "mul": lambda x, y: x * y,
    "matmul": lambda x, y: x @ y.T,
    "less": lambda x, y: x < y,
    "relu": lambda x, y: jax.nn.relu(x - y),
    "mixed": lambda x, y: ((x[:2] * 0.5).sum(), jnp.maximum(x, y) @ y.T / 3.0),
}


def _args(rng, shape=(6, 5)):
    return rng.normal(size=shape), rng.normal(size=shape)


def _compare_with_in_process(path, protocol, nparties):
    net = NetworkCluster(path)
    ref = InProcessCluster(ClusterConfig(protocol=protocol, nparties=nparties, seed=SEED))
    rng = np.random.default_rng(0)
    try:
        for name, fn in CASES.items():
            x, y = _args(rng)
            got = spu.jit(fn, cluster=net)(x, y)
            want = spu.jit(fn, cluster=ref)(x, y)
            for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                assert g.dtype == w.dtype and np.array_equal(g, w), name
        assert net.last_profile.total.bytes > 0 and len(net.party_profiles) == nparties
        # every node offered the driver a sealed link, and the driver took them up
        assert set(net.client.sealed) == set(net.spec.endpoints())
    finally:
        net.close()


@pytest.mark.slow
def test_sealed_data_off_runs_everything_over_curve(tmp_path):
    """`sealed_data: false` (a firewall admitting only the configured ports): no second
    port, no offers, the same results."""
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], seed=SEED,
                             edit=lambda d: d.update(sealed_data=False))
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            x = np.linspace(-2, 2, 12).reshape(3, 4)
            got = spu.jit(lambda a, b: jax.nn.relu(a * b), cluster=net)(x, x + 1)
            assert np.allclose(got, np.maximum(x * (x + 1), 0), atol=1e-4)
            assert not net.client.sealed and not net.client._offers
        finally:
            net.close()


@pytest.mark.slow
def test_aby3_three_nodes_identical_to_in_process(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], seed=SEED)
    with running(path, tmp_path):
        _compare_with_in_process(path, "aby3", 3)
        # the driver supplies every input: it watches the call as in-process ones are
        net = NetworkCluster(path)
        try:
            with pytest.warns(spu.FixedPointWarning, match="overflow"):
                spu.jit(lambda a: a * a, cluster=net)(np.array([2e4, 1.0]))
        finally:
            net.close()


@pytest.mark.slow
def test_semi2k_two_nodes_and_dealer_identical_to_in_process(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave", seed=SEED)
    with running(path, tmp_path):
        _compare_with_in_process(path, "semi2k", 2)
        net = spu.init(cluster=path)                  # spu.jit now runs on the nodes
        try:
            x = np.linspace(-1, 1, 5)
            assert np.allclose(spu.jit(lambda a: jax.nn.relu(a) * 2)(x), np.maximum(x, 0) * 2,
                               atol=1e-4)
            assert net.last_profile.total.rounds > 0
        finally:
            from spu_lite import api
            api.set_default_cluster(None)
            net.close()


def _occurs(haystack: bytes, arr: np.ndarray) -> list:
    """Elements of arr whose 8-byte encoding occurs anywhere in haystack."""
    return [v for v in arr.reshape(-1) if v.tobytes() in haystack]


@pytest.mark.slow
def test_party_owned_input_never_leaves_its_owner_in_the_clear(tmp_path, monkeypatch):
    dump = tmp_path / "wire"
    monkeypatch.setenv("SPU_LITE_WIRE_DUMP", str(dump))
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"])
    secret = np.random.default_rng(1).uniform(100, 200, size=(8, 4))   # alice's data
    public_marker = np.full((3,), 12345.678)                          # a public input
    with running(path, tmp_path, env={"SPU_LITE_WIRE_DUMP": str(dump)}):
        net = NetworkCluster(path)
        try:
            h = party("alice")(lambda: secret)()
            f = spu.jit(lambda a, w, p: ((a @ w).sum() + p.sum(),), cluster=net)
            w = np.ones((4, 1)) * 0.01
            out = f(h, w, spu.public(public_marker))
            assert np.allclose(out[0], (secret @ w).sum() + public_marker.sum(), rtol=1e-4)
            rec = spu.jit(lambda a: a * 2.0, cluster=net, reveal_to="bob")(h)
            assert rec.party == "bob" and rec.outputs[0][1] == [8, 4]
            assert np.allclose(np.load(rec.path)["out"], secret * 2, atol=1e-3)
        finally:
            net.close()
    encoded = Ring(64).encode(secret, 18)
    seen = {p: (dump / f"{p}.recv").read_bytes() for p in ("bob", "carol", "driver")}
    assert len(seen["bob"]) > secret.nbytes            # shares did arrive
    # the hook records plaintext frames: the (encoded) public input is there in the clear
    assert Ring(64).encode(public_marker, 18).tobytes() in seen["bob"]
    for who, data in seen.items():
        assert _occurs(data, secret) == [] and _occurs(data, encoded) == [], who
    # outputs revealed to bob: the driver got a receipt only, not bob's values
    assert _occurs(seen["driver"], Ring(64).encode(secret * 2, 18)) == []


@pytest.mark.slow
def test_input_share_keys_reach_only_their_holders_and_bad_keys_are_refused(tmp_path,
                                                                           monkeypatch):
    dump = tmp_path / "wire"
    monkeypatch.setenv("SPU_LITE_WIRE_DUMP", str(dump))
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], seed=SEED)
    x = np.random.default_rng(2).normal(size=(64,))
    with running(path, tmp_path, env={"SPU_LITE_WIRE_DUMP": str(dump)}):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda a: a * 3.0, cluster=net)
            np.testing.assert_allclose(f(x), x * 3.0, atol=1e-4)
            deal = net.share                  # a hostile driver: P0's first key cut short
            net.share = lambda v: [SeededShare((b"short",) + s.parts[1:]) if r == 0 else s
                                   for r, s in enumerate(deal(v))]
            with pytest.raises(JobError, match="input 0: a share seed of 5 bytes") as e:
                f(x)
            assert "short" not in str(e.value)
            net.share = deal
            np.testing.assert_allclose(f(x), x * 3.0, atol=1e-4)    # still serving
        finally:
            net.close()
    # the driver's first dealing: P0 holds pieces 0 and 1, P1 pieces 1 and 2, P2 pieces
    # 2 and 0; the keys of pieces 0 and 1 are its first draws (they do not depend on x)
    k0, k1 = get_protocol("aby3").deal_seeded(np.zeros(1, np.uint64), 3,
                                              local_prg(SEED, "driver"), Ring(64))[0].parts
    seen = {p: (dump / f"{p}.recv").read_bytes() for p in ("alice", "bob", "carol", "driver")}
    assert k0 in seen["alice"] and k1 in seen["alice"]
    assert k1 in seen["bob"] and k0 not in seen["bob"]
    assert k0 in seen["carol"] and k1 not in seen["carol"]
    assert k0 not in seen["driver"] and k1 not in seen["driver"]


@pytest.mark.slow
def test_process_without_cluster_keys_is_refused(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"])
    spec = cluster_file.load(path)
    alice = spec.parties[0]
    with running(path, tmp_path):
        net = NetworkCluster(path)                     # waits until every node answers
        ctx = zmq.Context()
        try:
            pub, sec = zmq.curve_keypair()             # a stranger's own key pair
            stranger = ctx.socket(zmq.DEALER)
            stranger.curve_publickey, stranger.curve_secretkey = pub, sec
            stranger.curve_serverkey = alice.public_key
            plain = ctx.socket(zmq.DEALER)             # no CURVE at all
            for s in (stranger, plain):
                s.linger = 0
                s.connect(f"tcp://{alice.address}")
                s.send_multipart([b'{"k":"ping","job":1}'])
            t0 = time.monotonic()
            assert stranger.poll(1500) == 0 and plain.poll(100) == 0, "got a reply"
            print(f"\nunauthenticated clients: no reply in {time.monotonic() - t0:.1f} s")
            x = np.arange(6.0).reshape(2, 3)
            assert np.allclose(spu.jit(lambda a: a * a, cluster=net)(x), x * x, atol=1e-4)
        finally:
            ctx.destroy(0)
            net.close()
        assert "refused a connection with an unknown CURVE key" in log_of(tmp_path, "alice")


def _long_job(net):
    f = spu.jit(lambda x: jax.lax.fori_loop(0, 150, lambda i, v: jax.nn.relu(v * 1.01 - 0.001), x),
                cluster=net)
    return f, np.random.default_rng(2).uniform(size=(64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "hang"])
def test_dead_or_hung_party_is_named_within_the_timeout(tmp_path, how):
    timeout = 5.0
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], timeout=timeout)
    with running(path, tmp_path) as launcher:
        net = NetworkCluster(path)
        try:
            f, x = _long_job(net)
            t_ok = time.monotonic()
            f(x)
            job_s = time.monotonic() - t_ok
            assert job_s > 1.0, f"the job is too short to interrupt ({job_s:.2f} s)"
            sig = signal.SIGKILL if how == "kill" else signal.SIGSTOP
            hit = []
            timer = threading.Timer(0.5, lambda: (hit.append(time.monotonic()),
                                                  launcher.kill("bob", sig)))
            timer.start()
            with pytest.raises(PeerError, match="bob") as err:
                f(x)
            took = time.monotonic() - hit[0]
            print(f"\n{how}: job {job_s:.2f} s; driver raised {took:.2f} s after the "
                  f"{'kill' if how == 'kill' else 'SIGSTOP'} (timeout {timeout:g} s): {err.value}")
            # named within the timeout, plus slack for a loaded machine (the bound that
            # matters: it does not hang)
            assert took < 2 * timeout + 10.0
            if how == "hang":
                launcher.kill("bob", signal.SIGCONT)       # wakes up into an aborted job
            else:
                launcher.start("bob")                      # restarted party
                net.ping(60.0)                             # as an operator would: wait for it
            y = np.arange(6.0)
            out = spu.jit(lambda a: a * 3.0, cluster=net)(y)   # the next job works
            assert np.allclose(out, y * 3.0, atol=1e-4)
            if how == "kill":
                alice_log = log_of(tmp_path, "alice")
                assert "'bob'" in alice_log                 # the peers named bob too
        finally:
            net.close()


@pytest.mark.slow
def test_a_party_restarted_between_jobs_serves_the_next_job_sealed(tmp_path):
    """bob is killed and restarted between two jobs that both succeed: its new process
    listens for sealed data on a new port, so the driver and the peers drop their
    sealed links when its connection drops and take up its new offers; the next job
    runs at once (no timeout), and data between the nodes goes sealed again."""
    timeout = 5.0
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], timeout=timeout)
    with running(path, tmp_path) as launcher:
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda a, b: a * b + 1.0, cluster=net)
            x = np.arange(6.0)
            assert np.allclose(f(x, x), x * x + 1.0, atol=1e-4)
            old_port = net.client.sealed[1][0].last_endpoint
            launcher.kill("bob", signal.SIGKILL)
            launcher.start("bob")
            net.ping(60.0)
            t0 = time.monotonic()
            for k in range(3):
                assert np.allclose(f(x, x + k), x * (x + k) + 1.0, atol=1e-4)
            assert time.monotonic() - t0 < timeout
            assert 1 in net.client.sealed and net.client.sealed[1][0].last_endpoint != old_port
        finally:
            net.close()
    assert "does not open" not in log_of(tmp_path, "alice")


@pytest.mark.slow
def test_named_loader_and_untrusted_code_refused(tmp_path):
    mod = tmp_path / "hospital_io.py"
    mod.write_text("import numpy as np\n"
                   "def load(n, scale):\n    return np.arange(n, dtype=np.float64) * scale\n")

    def edit(doc):
        doc["parties"][0]["loaders"] = {"rows": "hospital_io:load"}
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], trust=False, edit=edit)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    with running(path, tmp_path, env=env):
        net = NetworkCluster(path)
        try:
            f = spu.jit(lambda a: a.sum(), cluster=net)
            assert np.isclose(f(party("alice")("rows")(5, 0.5)), 5.0, atol=1e-4)
            with pytest.raises(Exception, match="does not run code sent by the driver"):
                f(party("alice")(lambda: np.ones(3))())
            with pytest.raises(Exception, match="no loader named 'nope'"):
                f(party("alice")("nope")())
            with pytest.raises(ValueError, match="unknown party 'zed'"):
                f(party("zed")("rows")(1, 1.0))
            assert np.isclose(f(party("alice")("rows")(4, 1.0)), 6.0, atol=1e-4)
        finally:
            net.close()


def test_party_input_needs_a_network_cluster():
    h = party("alice")(lambda: np.ones(3))()
    with pytest.raises(InputError, match="networked cluster"):
        spu.jit(lambda a: a * 2, protocol="ref2k")(h)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_cluster_up_stops_every_node(tmp_path, sig):
    """SIGTERM: `cluster up` stops its nodes and exits 0. SIGKILL (nothing runs in the
    launcher): every node still gets SIGTERM from the kernel (PR_SET_PDEATHSIG, which
    the node asks for itself at start-up) and exits."""
    import subprocess
    import sys
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave")
    up = subprocess.Popen([sys.executable, "-m", "spu_lite.deploy.cli", "cluster", "up", path,
                           "--insecure-test-seed"])          # the test cluster is seeded
    try:
        net = NetworkCluster(path)
        x = np.arange(4.0)
        assert np.allclose(spu.jit(lambda a: a + a, cluster=net)(x), 2 * x, atol=1e-4)
        net.close()
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == up.pid]
        assert len(children) == 3
        up.send_signal(sig)
        assert up.wait(15) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_running(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [c for c in children if _running(c)] == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def _running(pid) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ppid(pid) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


# ---- fast checks, no processes -------------------------------------------------------

def test_wire_round_trip_and_no_copy_for_contiguous_arrays():
    from spu_lite.runtime.net import wire
    from spu_lite.runtime.protocols.base import Share
    big = np.arange(1 << 14, dtype=np.uint64)
    payload = (big, Share([big[:3], big[3:6]], True), b"k", None,
               [np.float32(2.5), np.zeros((0, 2)), big.reshape(128, 128)[:, ::2]])
    frames = wire.encode({"k": "d", "job": 9}, payload)
    assert frames[1] is big                                  # handed to zmq as is
    h, got = wire.split(frames)
    assert h["job"] == 9 and np.array_equal(got[0], big) and got[1].boolean
    assert np.array_equal(got[1].parts[1], big[3:6]) and got[2] == b"k" and got[3] is None
    assert got[4][0] == np.float32(2.5) and got[4][1].shape == (0, 2)
    assert np.array_equal(got[4][2], big.reshape(128, 128)[:, ::2])
    with pytest.raises(wire.WireError):
        wire.decode({"p": {"a": ["|O", [1]]}}, [b"", b"x" * 8])


def test_mailbox_drops_stale_keeps_future_and_names_silent_peers():
    from spu_lite.runtime.net.mailbox import Mailbox
    mb = Mailbox({1: "bob", 2: "carol"})
    mb.start_job(10)
    mb.put(1, 9, "stale")
    mb.put(1, 10, "now")
    mb.put(2, 11, "early")
    assert mb.recv(1, 1.0) == "now"
    with pytest.raises(PeerError, match="'carol' abandoned job 10"):
        mb.recv(2, 1.0)
    t0 = time.monotonic()
    with pytest.raises(PeerError, match="no message from party 'bob' within 0.2 s"):
        mb.recv(1, 0.2)
    assert time.monotonic() - t0 < 1.0
    mb.start_job(11)
    assert mb.recv(2, 1.0) == "early"
    mb.abort(12, "carol: boom")                  # arrives before job 12 starts here
    mb.start_job(12)
    with pytest.raises(PeerError, match="carol: boom"):
        mb.recv(1, 5.0)


def test_cluster_file_errors_are_clear(tmp_path):
    from spu_lite.deploy.cluster_file import ClusterFileError, parse
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave")
    spec = cluster_file.load(path)
    assert [p.name for p in spec.parties] == ["alice", "bob", "dave"] and spec.nparties == 2
    assert spec.config().protocol == "semi2k" and spec.timeout == 30.0
    import yaml
    doc = yaml.safe_load(open(path))
    for change, msg in [(lambda d: d.pop("dealer"), "needs a dealer"),
                        (lambda d: d.update(protocol="aby3"), "has no dealer|exactly 3"),
                        (lambda d: d["parties"][1].update(name="alice"), "unique"),
                        (lambda d: d["parties"][0].update(public_key="short"), "40-character"),
                        (lambda d: d.update(timeout=0), "timeout"),
                        (lambda d: d.update(sealed_data="false"), "sealed_data must be a YAML")]:
        bad = yaml.safe_load(yaml.safe_dump(doc))
        change(bad)
        with pytest.raises(ClusterFileError, match=msg):
            parse(bad, str(tmp_path))
    with pytest.raises(ClusterFileError, match="unknown party 'zed'"):
        spec.rank("zed")


def test_driver_names_the_nodes_that_do_not_answer(tmp_path):
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"])
    t0 = time.monotonic()
    with pytest.raises(PeerError, match="'alice' does not answer.*'bob'.*'carol'"):
        NetworkCluster(path, connect_timeout=0.5)
    assert time.monotonic() - t0 < 3.0


@pytest.mark.slow
@pytest.mark.parametrize("names,dealer", [(["alice", "bob", "carol"], None), (["alice", "bob"], "dave")])
def test_kept_secrets_stay_at_the_parties_between_jobs(tmp_path, names, dealer):
    """keep_secret on real nodes: the driver holds ids only; chained calls and reveal."""
    import gc
    path = make_cluster_file(tmp_path, names, dealer=dealer)
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            step = spu.jit(lambda w, x: (w + x * 0.5, (w * x).sum()), cluster=net, keep_secret=(0,))
            w, x = np.ones(4), np.arange(4.0)
            for _ in range(3):
                w, s = step(w, x)
                assert isinstance(w, spu.Secret) and not isinstance(w.shares, list)
            np.testing.assert_allclose(spu.reveal(w), 1 + 1.5 * np.arange(4.0), atol=1e-4)
            np.testing.assert_allclose(s, ((1 + np.arange(4.0)) * np.arange(4.0)).sum(), atol=1e-3)
            kid = w.shares.id
            del w
            gc.collect()
            assert kid in net._released                        # dropped handles are released
            step(np.ones(4), x)                                 # ... with the next job
            assert kid not in net._released
        finally:
            net.close()


@pytest.mark.slow
def test_secure_training_on_real_nodes_matches_the_in_process_cluster(tmp_path):
    """The Trainer over real nodes: parameters stay at the parties between epochs."""
    from spu_lite.examples import tutorials
    from spu_lite.train import Trainer
    s = tutorials.breast_cancer_mlp()
    x, y = s.x_train[:100], s.y_train[:100]
    path = make_cluster_file(tmp_path, ["alice", "bob", "carol"], timeout=30)
    with running(path, tmp_path):
        net = NetworkCluster(path)
        try:
            p_net, h_net = Trainer(s.loss_fn, s.optimizer, cluster=net).fit(
                s.params, x, y, epochs=2, batch_size=10, progress=False)
        finally:
            net.close()
    p_in, h_in = Trainer(s.loss_fn, s.optimizer, protocol="aby3").fit(
        s.params, x, y, epochs=2, batch_size=10, progress=False)
    np.testing.assert_allclose(h_net["loss"], h_in["loss"], atol=1e-3)
    for a, b in zip(jax.tree_util.tree_leaves(p_net), jax.tree_util.tree_leaves(p_in)):
        np.testing.assert_allclose(a, b, atol=1e-3)   # truncation noise of other shares
