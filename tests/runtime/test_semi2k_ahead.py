"""The semi2k dealer working ahead along P_0's plan (runtime/protocols/semi2k_ahead.py):
answers and results are exactly those without a plan, also when the plan is wrong."""
import jax
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.link import PeerError
from spu_lite.runtime.prg import Prg
from spu_lite.runtime.protocols.base import PartyContext
from spu_lite.runtime.protocols.semi2k_ahead import (PLAN, Planner, SeekablePrg,
                                                     decode_plan)
from spu_lite.runtime.protocols.semi2k_common import (DONE, MUL, SQUARE, TRUNC,
                                                      _encode_request)
from spu_lite.runtime.protocols.semi2k_dealer import Semi2kDealer
from spu_lite.runtime.ring import Ring


def test_a_seekable_prg_is_the_same_keystream_and_rewinds_anywhere():
    key = b"s" * 16
    plain, seek = Prg(key), SeekablePrg(key)
    assert plain.bytes(37) == seek.bytes(37) and seek.pos == 37
    later = seek.bytes(100)
    assert plain.bytes(100) == later
    for pos in (37, 0, 16, 53, 136):
        seek.seek(pos)
        assert seek.bytes(137 - pos) == (b"".join([Prg(key).bytes(137)]))[pos:]


class _Script:
    """A dealer's link to P_0 that replays `msgs` and records the answers."""

    def __init__(self, msgs):
        self.msgs, self.sent = list(msgs), []

    def pending(self, frm):
        return False                       # P_0 is always "slow": the dealer works ahead

    def recv(self, frm):
        return self.msgs.pop(0)

    def send(self, to, payload):
        self.sent.append(payload)

    def exchange(self, sends, recv_from):
        return {}


def _dealer(msgs):
    comm = _Script(msgs)
    d = Semi2kDealer(PartyContext(2, 2, Ring(64), comm, Prg(b"d" * 16)))
    d.setup()
    return d, comm


def _plan(reqs):
    p = Planner()
    p.plans["k"] = reqs
    return p.begin("k")


def _answers(sent):
    return [np.concatenate([np.ravel(a) for a in (x if isinstance(x, tuple) else (x,))])
            for x in sent]


def test_answers_are_the_same_with_a_wrong_plan_and_after_leftovers():
    r1, r2, r3 = (_encode_request(MUL, ((40,),)), _encode_request(TRUNC, ((40,), 18)),
                  _encode_request(SQUARE, ((7, 3),)))
    other = _encode_request(MUL, ((9,),))
    done = _encode_request(DONE, ())
    jobs = [[r1, other, r3, done],         # diverges after precomputing all three
            [r1, done],                    # leftovers r2, r3: rewound at DONE
            [r2, r3, done]]
    plain, pc = _dealer([m for j in jobs for m in j])
    ahead, ac = _dealer([m for j in jobs for m in [_plan([r1, r2, r3])] + j])
    for _ in jobs:
        plain.serve()
        ahead.serve()
    assert ahead.ahead.plans == 3 and ahead.ahead.precomputed >= 3 and ahead.ahead.used >= 2
    assert ahead.requests_served == plain.requests_served == 6
    for a, b in zip(_answers(ac.sent), _answers(pc.sent)):
        np.testing.assert_array_equal(a, b)


def test_between_jobs_the_dealer_computes_the_last_job_again():
    r1, r2 = _encode_request(MUL, ((40,),)), _encode_request(TRUNC, ((40,), 18))
    other, done = _encode_request(SQUARE, ((5,),)), _encode_request(DONE, ())
    jobs = [[r1, r2, done], [r1, r2, done], [other, r1, done], [r1, done]]
    plain, pc = _dealer([m for j in jobs for m in j])
    ahead, ac = _dealer([m for j in jobs for m in j])
    for _ in jobs:
        plain.serve()
        ahead.serve()
        ahead.idle(lambda: False)
    assert ahead.ahead.used == 2 and ahead.ahead.plans == 0     # job 2 as guessed
    for a, b in zip(_answers(ac.sent), _answers(pc.sent)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [
    [PLAN, 2, 2, MUL, 1],                  # says 2 requests, holds less
    [PLAN, 1, 0],                          # an empty request
    [PLAN, 1, 70] + [1] * 70,              # a request longer than any
    [PLAN, 1, 2, MUL, 1, 5],               # trailing ints
    [PLAN, -1],
])
def test_malformed_plans_are_refused(bad):
    with pytest.raises(PeerError, match="dealer: malformed plan"):
        decode_plan(np.array(bad, np.int64))


def _run(cluster, plans: bool):
    if not plans:
        cluster.parties[0].proto.planner.begin = lambda key: None
    f = spu.jit(lambda x, y, p: jax.lax.cond(p > 0, lambda: x * y, lambda: (x < y) * x) + x,
                cluster=cluster)
    x, y = np.linspace(-1, 1, 50), np.linspace(2, -1, 50)
    return [f(x, y, spu.public(np.float64(p))) for p in (1, 1, 0, 1, 0, 0)]


def test_results_are_bit_identical_with_plans_in_process():
    cfg = ClusterConfig(protocol="semi2k", seed=4)
    with_plans, without = InProcessCluster(cfg), InProcessCluster(cfg)
    for a, b in zip(_run(with_plans, True), _run(without, False)):
        np.testing.assert_array_equal(a, b)
    assert with_plans.dealer.dealer.ahead.plans == 5 and without.dealer.dealer.ahead.plans == 0
