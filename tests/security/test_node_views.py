"""Views on real node processes (issue 12, parts 7 and 10): the semi2k dealer's view
of correlation requests is the same for different secrets, unseeded nodes use fresh
randomness, and wire dumps and revealed outputs are private files."""
import os
import re
import stat

import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.ring import Ring
from spu_lite.deploy.driver import NetworkCluster
from tests.e2e.netcluster import make_cluster_file, running


def _requests(raw: bytes):
    """The data messages (correlation requests from the parties) in a dealer's dump,
    in order, with the clock-derived job ids replaced by a placeholder. (The driver's
    job message is left out: what it carries is the job header's business.)"""
    parts = [b'{"k":' + p for p in raw.split(b'{"k":')[1:]]
    return [re.sub(rb'"job":\d+', b'"job":J', p) for p in parts if p.startswith(b'{"k":"d"')]


def _without_offers(raw: bytes) -> bytes:
    """A dump without the sealed-link offers in it (runtime/net/endpoint.py): a peer's
    offer can arrive whenever its connection comes up, also in a later job's window."""
    out, i = [], 0
    while (j := raw.find(b'{"k":"offer"', i)) >= 0:
        out.append(raw[i:j])
        i = raw.index(b"]}}", j) + 3 + 32 + 16        # the header, then key and link id
    return b"".join(out) + raw[i:]


@pytest.mark.slow
def test_dealer_view_and_fresh_randomness_on_real_nodes(tmp_path, monkeypatch):
    dump = tmp_path / "wire"
    monkeypatch.setenv("SPU_LITE_WIRE_DUMP", str(dump))
    path = make_cluster_file(tmp_path, ["alice", "bob"], dealer="dave", seed=None)
    rng = np.random.default_rng(5)
    secrets = [rng.uniform(-50, 50, (16, 8)), rng.uniform(-50, 50, (16, 8)) * 3 + 7]
    fn = lambda a, b: (a * b, a < b, a @ b.T)
    dealer_views, bob_views = [], []
    with running(path, tmp_path, env={"SPU_LITE_WIRE_DUMP": str(dump)}):
        net = NetworkCluster(path)
        try:
            f = spu.jit(fn, cluster=net)
            f(secrets[0], secrets[0] + 1)                     # session set-up (random keys)
            for x in (secrets[0], secrets[1], secrets[0]):
                d0 = (dump / "dave.recv").stat().st_size
                b0 = (dump / "bob.recv").stat().st_size
                out = f(x, x + 1)
                np.testing.assert_allclose(out[0], x * (x + 1), atol=1e-3)
                dealer_views.append((dump / "dave.recv").read_bytes()[d0:])
                bob_views.append(_without_offers((dump / "bob.recv").read_bytes()[b0:]))
            rec = spu.jit(lambda a: a * 2.0, cluster=net, reveal_to="bob")(secrets[0])
        finally:
            net.close()
    # the dealer: byte for byte the same requests for different secrets (kinds and
    # shapes only), and none of the secrets' encodings
    reqs = [_requests(v) for v in dealer_views]
    assert len(reqs[0]) >= 3 and reqs[0] == reqs[1] == reqs[2]
    ring = Ring(64)
    for x in secrets:
        enc = ring.encode(x, 18)
        assert not any(v.tobytes() in dealer_views[0] + dealer_views[1]
                       for v in enc.reshape(-1)[:32])
    # unseeded nodes: the same inputs twice give different messages (fresh masks)
    assert len(bob_views[0]) == len(bob_views[2])
    a, b = (np.frombuffer(v[:len(v) // 8 * 8], np.uint64) for v in (bob_views[0], bob_views[2]))
    assert np.mean(a == b) < 0.5
    # private files: wire dumps and outputs revealed to bob
    for p in list(dump.iterdir()) + [rec.path]:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
