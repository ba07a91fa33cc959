"""Sealed data links (runtime/net/sealed.py): bulk data in AES-256-GCM on a plain
connection, keyed over CURVE. A message opens only whole, unmodified, once, under the
link it was sealed for and in its direction; anything else on the plain port is
dropped and the party keeps working."""
import time

import numpy as np
import pytest
import zmq

from spu_lite.runtime.link import PeerError
from spu_lite.runtime.net import wire
from spu_lite.runtime.net.auth import create_keypair, load_secret
from spu_lite.runtime.net.endpoint import Endpoint
from spu_lite.runtime.net.mailbox import Mailbox
from spu_lite.runtime.net.sealed import (KEY_BYTES, Openers, ReplyOpener, SealError, Sealer,
                                         SMALL)
from spu_lite.runtime.net.transport import NetTransport
from spu_lite.deploy.launcher import free_ports

NOW = time.time_ns() // 1000


def _link(with_key=False):
    openers = Openers()
    key, link = openers.offer(("peer", 1))
    return (openers, Sealer(key, link, 0)) + ((key,) if with_key else ())


def _message():
    big = np.arange(SMALL, dtype=np.uint64)             # above SMALL bytes: sealed in place
    return wire.encode({"k": "d", "job": 5}, (big, b"small", np.ones(3, np.int32)))


def _eq(a, b):
    return [bytes(x) for x in a] == [bytes(x) for x in b]


def test_sealed_message_opens_whole_and_writable():
    openers, sealer = _link()
    frames = _message()
    sealed = sealer.seal(frames)
    assert len(sealed) == len(frames) + 1
    assert not any(bytes(np.arange(8, dtype=np.uint64)) in bytes(s) for s in sealed)
    owner, _, plain = openers.open(sealed)
    assert owner == ("peer", 1) and _eq(plain, frames)
    h, payload = wire.split(plain)
    payload[0][0] = 7                                   # numpy views it writable
    assert np.array_equal(payload[0][1:], np.arange(1, SMALL, dtype=np.uint64))


def _tampered(sealed):
    flip = [bytearray(f) for f in sealed]
    flip[1][-20] ^= 1                                   # a ciphertext bit
    tag = [bytearray(f) for f in sealed]
    tag[2][-1] ^= 1                                     # a tag bit
    prefix = [bytearray(f) for f in sealed]
    prefix[0][-5] ^= 1                                  # the counter (in the aad)
    return {"ciphertext": flip, "tag": tag, "counter": prefix,
            "swapped": [sealed[0], sealed[2], sealed[1], sealed[3]],
            "missing": sealed[:-1], "extra": sealed + [sealed[-1]],
            "short": [sealed[0], sealed[1], b"x", sealed[3]], "empty": [],
            "no prefix": sealed[1:]}


def test_tampered_truncated_or_reordered_messages_do_not_open():
    openers, sealer = _link()
    sealed = sealer.seal(_message())
    for what, frames in _tampered(sealed).items():
        with pytest.raises(SealError):
            openers.open(frames)
    openers.open(sealed)                                # the original still opens once


def test_replays_old_messages_wrong_keys_and_reflections_are_refused():
    openers, sealer, key = _link(with_key=True)
    first, second = sealer.seal(_message()), sealer.seal(_message())
    openers.open(second)
    with pytest.raises(SealError, match="old or replayed"):
        openers.open(first)                             # older than one already seen
    with pytest.raises(SealError, match="old or replayed"):
        openers.open(second)                            # the same one again
    other = Sealer(b"k" * KEY_BYTES, sealer.link, 0)     # right link, wrong key
    other.counter = 10
    with pytest.raises(SealError, match="does not open"):
        openers.open(other.seal(_message()))
    with pytest.raises(SealError, match="did not offer"):
        openers.open(Sealer(b"k" * KEY_BYTES, b"L" * 16, 0).seal(_message()))
    # the receiver's replies (direction 1) are not accepted as the sender's messages
    reply = openers.replies(sealer.link).seal(_message())
    with pytest.raises(SealError, match="other direction"):
        openers.open(reply)
    assert _eq(ReplyOpener(key, sealer.link).open(reply), _message())


def test_counters_never_repeat_and_offers_are_bounded():
    openers = Openers(keep=2, max_links=5)
    links = [openers.offer(("peer", 1))[1] for _ in range(4)]
    assert len({*links}) == 4
    assert [lk in openers.links for lk in links] == [False, False, True, True]
    for r in range(2, 6):
        openers.offer(("peer", r))
    assert len(openers.links) == 5
    key, link = openers.offer(("driver", b"route"))
    s = Sealer(key, link, 0)
    prefixes = {bytes(s.seal([b"x"])[0]) for _ in range(100)}
    assert len(prefixes) == 100                        # a fresh counter every message
    openers.forget(("driver", b"route"))
    with pytest.raises(SealError, match="did not offer"):
        openers.open(s.seal([b"x"]))


def test_mailbox_files_a_message_that_came_another_way_by_job():
    mb = Mailbox({1: "bob"})
    mb.start_job(NOW)
    mb.put(1, NOW + 1, "later job, sealed")
    mb.put(1, NOW, "this job, over CURVE")
    assert mb.recv(1, 1.0) == "this job, over CURVE"
    mb.start_job(NOW + 1)
    assert mb.recv(1, 1.0) == "later job, sealed"


# --------------------------------------------------------------------------------------
# two endpoints in this process, over loopback


@pytest.fixture
def pair(tmp_path):
    names = ["alice", "bob"]
    keys = {}
    for n in names:
        create_keypair(str(tmp_path), n)
        keys[n] = load_secret(str(tmp_path / f"{n}.key_secret"))
    ports = dict(zip(names, free_ports(2)))
    allowed = {keys[n][0]: n for n in names}

    def endpoint(name, sealed=True):
        r = names.index(name)
        other = names[1 - r]
        peers = {1 - r: (other, f"127.0.0.1:{ports[other]}", keys[other][0])}
        return Endpoint(name, f"127.0.0.1:{ports[name]}", keys[name], peers, allowed,
                        timeout=10.0, sealed=sealed)
    made = []

    def make(name, sealed=True):
        made.append(endpoint(name, sealed))
        return made[-1]
    yield make
    for ep in made:
        ep.close()


def _exchange(a, b, job, n=50_000):
    ta, tb = NetTransport(a, 10.0), NetTransport(b, 10.0)
    ta.start_job(job)
    tb.start_job(job)
    x = np.arange(n, dtype=np.uint64)
    ta.send(1, (x, b"hello"))
    tb.send(0, x[::-1].copy())
    got_b, got_a = tb.recv(0), ta.recv(1)
    assert np.array_equal(got_b[0], x) and got_b[1] == b"hello"
    assert np.array_equal(got_a, x[::-1])


def _wait(cond, seconds=10.0):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


def test_peers_take_up_offers_and_exchange_sealed_data(pair):
    a, b = pair("alice"), pair("bob")
    assert _wait(lambda: 1 in a._offers_in and 0 in b._offers_in)
    _exchange(a, b, NOW)
    assert set(a.bulk_out) == {1} and set(b.bulk_out) == {0}   # data went sealed
    _exchange(a, b, NOW + 1)
    assert a.dropped == b.dropped == 0


def test_sealed_data_off_keeps_everything_on_curve(pair):
    a, b = pair("alice", sealed=False), pair("bob", sealed=False)
    _exchange(a, b, NOW)
    assert a.bulk is None and not a.bulk_out and not b.bulk_out


def test_a_restarted_peer_gets_a_fresh_offer(pair):
    a, b = pair("alice"), pair("bob")
    assert _wait(lambda: 1 in a._offers_in and 0 in b._offers_in)
    _exchange(a, b, NOW)
    old_port = b.bulk_out[0][0]
    a.close()
    a2 = pair("alice")                          # same address, new process state and port
    # bob answers alice's new offer with one of its own; both switch at the next job
    assert _wait(lambda: 0 in b._offers_in and 1 in a2._offers_in)
    _exchange(a2, b, NOW + 1)
    assert b.bulk_out[0][0] == a2.bulk_port != old_port


def test_hostile_plain_connection_is_dropped_and_data_still_flows(pair):
    a, b = pair("alice"), pair("bob")
    assert _wait(lambda: 1 in a._offers_in and 0 in b._offers_in)
    _exchange(a, b, NOW)
    ta, tb = NetTransport(a, 10.0), NetTransport(b, 10.0)
    ta.start_job(NOW + 1)
    tb.start_job(NOW + 1)
    sealer = a.bulk_out[1][2]
    msg = sealer.seal(wire.encode({"k": "d", "job": NOW + 1},
                                  (np.arange(5, dtype=np.uint64), np.ones(2, np.int64))))
    ctx = zmq.Context()
    raw = ctx.socket(zmq.DEALER)                # no keys at all: the port is plain TCP
    raw.linger = 0
    raw.connect(f"tcp://127.0.0.1:{b.bulk_port}")
    try:
        raw.send_multipart(msg)                 # a captured message: once it is genuine
        assert np.array_equal(tb.recv(0)[0], np.arange(5))
        bad = list(_tampered(msg).values())[:6] + [msg, [b"junk"], [b"x" * 41, b"y"]]
        for frames in bad:                      # tampered, and the same one replayed
            raw.send_multipart([bytes(f) for f in frames])
        assert _wait(lambda: b.dropped == len(bad))
        assert not b.mailbox.pending(0)         # none of them reached the mailbox
        ta.send(1, np.arange(3, dtype=np.uint64))
        assert np.array_equal(tb.recv(0), np.arange(3))
    finally:
        raw.close()
        ctx.term()
    with pytest.raises(PeerError):              # and nothing else is waiting
        b.mailbox.recv(0, 0.2)
