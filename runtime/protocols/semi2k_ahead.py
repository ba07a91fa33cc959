"""semi2k: the dealer works ahead of P_0's requests.

Without this, P_0 sends a request when an op starts and the dealer computes the
answer while the parties do their local work and exchange; whatever the dealer has
not finished by then, P_0 waits for (`wait_dealer` in the node profile).

The requests of a job depend only on the program (kinds and shapes, in order), so
P_0 remembers the requests of the last run of each program (per Party, i.e. per
session) and, when the program runs again, sends them to the dealer as one PLAN
message at the start of the job. The dealer computes the planned correlations in
order, up to MAX_AHEAD answers (MAX_AHEAD_BYTES) ahead, whenever no request is
waiting; P_0 still sends every request as before, and the dealer answers it at once
if it matches the next precomputed one.

A plan is only a guess (a program whose control flow depends on public or revealed
values may ask for other correlations): at the first request that differs from the
plan, or at the end of a job with precomputed answers left over, the dealer drops
them and rewinds every keystream to where the first dropped answer began (AES-CTR
streams are seekable: SeekablePrg), so the keystreams stay in step with the
parties', exactly as if it had never worked ahead. P_0 never receives an answer it did
not ask for, so it sees nothing of a dropped one.

Security: the plan is the list of requests the dealer already received in the last
run of the same program; the dealer learns nothing it did not know (it sees the same
kinds and shapes, only earlier). Results are bit-identical with and without plans.
Cost: one message of a few int64 per request at the start of a job; the dealer's
memory for at most MAX_AHEAD_BYTES of answers.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from typing import List

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..link import PeerError
from ..prg import Prg
from .semi2k_common import MAX_REQUEST_INTS, _decode_request

PLAN = 9                      # request kind: a plan (after the kinds of semi2k_common)
MAX_PLAN_INTS = 1 << 20       # a plan of more is not sent (and refused by the dealer)
MAX_AHEAD = 16                # answers computed ahead at most
MAX_AHEAD_BYTES = 64 << 20
MAX_PLANS = 16                # programs whose requests P_0 remembers


class _Counting:
    """An AES-CTR encryptor that counts the keystream bytes read through it."""

    def __init__(self, enc, owner: "SeekablePrg"):
        self.enc, self.owner = enc, owner

    def update(self, data):
        self.owner.pos += len(data)
        return self.enc.update(data)

    def update_into(self, data, out):
        n = self.enc.update_into(data, out)
        self.owner.pos += len(data)
        return n


class SeekablePrg(Prg):
    """A Prg (the same keystream) whose read position can be saved and restored."""

    def __init__(self, key: bytes):
        super().__init__(key)
        self._key, self.pos = key, 0
        self._enc = _Counting(self._enc, self)

    def seek(self, pos: int) -> None:
        block, skip = divmod(int(pos), 16)      # CTR: the counter block is the offset / 16
        enc = Cipher(algorithms.AES(self._key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
        if skip:
            enc.update(b"\0" * skip)
        self._enc, self.pos = _Counting(enc, self), int(pos)


# ---- P_0's side --------------------------------------------------------------------------

class Planner:
    """P_0's memory of the requests of recent programs (least recently used out)."""

    def __init__(self):
        self.plans: "OrderedDict[object, List[np.ndarray]]" = OrderedDict()
        self.key = None
        self.asked: List[np.ndarray] = []

    def begin(self, key) -> np.ndarray:
        """Start recording a job of program `key`; its plan message, or None."""
        self.key, self.asked = key, []
        plan = self.plans.get(key) if key is not None else None
        if plan is None:
            return None
        self.plans.move_to_end(key)
        ints = [PLAN, len(plan)]
        for req in plan:
            ints.append(req.size)
            ints.extend(int(v) for v in req)
        return np.array(ints, np.int64) if len(ints) <= MAX_PLAN_INTS else None

    def end(self) -> None:
        if self.key is not None:
            self.plans[self.key] = self.asked
            self.plans.move_to_end(self.key)
            while len(self.plans) > MAX_PLANS:
                self.plans.popitem(last=False)
        self.key, self.asked = None, []


# ---- the dealer's side --------------------------------------------------------------------

def is_plan(msg) -> bool:
    return isinstance(msg, np.ndarray) and msg.dtype == np.int64 and msg.ndim == 1 \
        and msg.size >= 2 and int(msg[0]) == PLAN


def decode_plan(msg: np.ndarray) -> List[np.ndarray]:
    """The requests of a plan message (each checked when it is computed)."""
    if msg.size > MAX_PLAN_INTS:
        raise PeerError("dealer: plan too long")
    count, pos, out = int(msg[1]), 2, []
    if not 0 <= count <= msg.size:
        raise PeerError("dealer: malformed plan")
    for _ in range(count):
        if pos >= msg.size:
            raise PeerError("dealer: malformed plan")
        m = int(msg[pos])
        if not 1 <= m <= MAX_REQUEST_INTS or pos + 1 + m > msg.size:
            raise PeerError("dealer: malformed plan")
        out.append(msg[pos + 1:pos + 1 + m].copy())
        pos += 1 + m
    if pos != msg.size:
        raise PeerError("dealer: malformed plan")
    return out


class Lookahead:
    """The dealer's precomputed answers (see the module docstring). Between jobs it
    guesses that the next job asks for what the last one did (P_0's plan, when one
    comes, replaces the guess)."""

    def __init__(self, dealer):
        self.d = dealer
        self.plan: deque = deque()           # requests still to compute ahead
        self.active: List[bytes] = []        # the whole plan plan/ready follow
        self.ready: deque = deque()          # (request bytes, answer, nbytes, mark)
        self.ready_bytes = 0
        self.served: List[np.ndarray] = []   # requests of the current job
        self.guess: List[np.ndarray] = []    # requests of the last job
        self.plans = 0                       # plans received (all jobs)
        self.precomputed = 0                 # answers computed ahead (all jobs)
        self.used = 0                        # ... of which P_0 asked for

    def set_plan(self, msg: np.ndarray) -> None:
        """P_0's plan (the first message of a job): keeps what was computed ahead
        if it follows the same plan."""
        if self.served:
            raise PeerError("dealer: a plan after the job's first request")
        reqs = decode_plan(msg)
        self.plans += 1
        keys = [r.tobytes() for r in reqs]
        if keys != self.active:
            self.discard()
            self.plan, self.active = deque(reqs), keys

    def next_message(self):
        """Work ahead while P_0 sends nothing, then its next message."""
        comm = self.d.comm
        self._work(lambda: comm.pending(0))
        return comm.recv(0)

    def idle(self, stop) -> None:
        """Between jobs: compute the last job's requests ahead until stop() is true."""
        if not self.plan and not self.ready and self.guess:
            self.plan = deque(self.guess)
            self.active = [r.tobytes() for r in self.guess]
        self._work(stop)

    def _work(self, stop) -> None:
        while self.plan and len(self.ready) < MAX_AHEAD and \
                self.ready_bytes < MAX_AHEAD_BYTES and not stop():
            req = self.plan.popleft()
            mark = self._mark()
            try:
                ans = self.d.make(*_decode_request(req))
            except BaseException:
                self._restore(mark)          # keep the keystreams in step, then fail
                self.discard()
                raise
            size = sum(a.nbytes for a in (ans if isinstance(ans, tuple) else (ans,)))
            self.ready.append((req.tobytes(), ans, size, mark))
            self.ready_bytes += size
            self.precomputed += 1

    def answer(self, msg: np.ndarray, kind, params):
        """The answer to request `msg`: precomputed if it is the next one planned."""
        self.served.append(msg.copy())
        key = msg.tobytes()
        if self.ready and self.ready[0][0] == key:
            _, ans, size, _ = self.ready.popleft()
            self.ready_bytes -= size
            self.used += 1
            return ans
        if not self.ready and self.plan and self.plan[0].tobytes() == key:
            self.plan.popleft()              # as planned, just not computed yet
        else:
            self.discard()                   # the job asked for something else
        return self.d.make(kind, params)

    def end_job(self) -> None:
        """At DONE: drop what the job did not ask for; remember what it did."""
        self.discard()
        self.guess, self.served = self.served, []

    def discard(self) -> None:
        """Drop the plan and every precomputed answer; rewind the keystreams."""
        if self.ready:
            self._restore(self.ready[0][3])
        self.ready.clear()
        self.plan.clear()
        self.active = []
        self.ready_bytes = 0

    def _mark(self):
        d = self.d
        return ([g.pos for g in d.prgs], [g.pos if g is not None else 0 for g in d.prgs_d],
                dict(d.kept_b))

    def _restore(self, mark) -> None:
        d = self.d
        for g, pos in zip(d.prgs, mark[0]):
            g.seek(pos)
        for g, pos in zip(d.prgs_d, mark[1]):
            if g is not None:
                g.seek(pos)
        d.kept_b = dict(mark[2])
