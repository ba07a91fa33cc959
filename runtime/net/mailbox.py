"""Per-peer inboxes of one party, keyed by job id.

The io thread puts every data message from a peer here; the party's job thread takes
them out in order (zmq keeps the order of the messages of one connection). Every
message carries the id of the job it belongs to. Job ids only grow (the driver makes
them from the clock), which gives simple rules:

* a message of an older job than the current one is stale (left over from an aborted
  job, or queued while a peer was down): it is dropped;
* a message of a newer job is kept: the peer may have started that job before this
  party got it from the driver; messages are filed in job order (a peer switches
  from CURVE to its sealed link between jobs, so a later job's message may overtake
  an earlier job's), in arrival order within a job;
* if the next message from a peer is already of a newer job, that peer abandoned the
  current one: waiting longer would hang, so recv fails at once.

Messages of later jobs are bounded (a peer could otherwise make this party keep
anything it sends "for later" forever): at most MAX_FUTURE messages and
`max_future_bytes` bytes per peer; beyond that they are dropped (put returns False,
the endpoint logs it), and at most MAX_EARLY_ABORTS aborts of later jobs are kept.
Job ids are the driver's clock in microseconds, so a job id more than HORIZON_US
ahead of this party's clock cannot come from an honest driver: such messages and
aborts are dropped at once (they would otherwise fail every job until then).

recv waits at most `timeout` seconds and otherwise raises PeerError naming the peer;
`abort` (a peer's or the driver's abort message, or a dropped connection) wakes every
waiting recv of that job with the reason. `stop` is the in-order kind: filed like a
message, it raises PeerStopped at the recv that reaches it, after every message the
peer sent before it (a node that stops a job it had started this way tells the peers
waiting for it why, and they still read what came first).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Dict, Optional

from ..link import PeerError, PeerStopped

MAX_FUTURE = 4096                  # messages of later jobs kept per peer
MAX_EARLY_ABORTS = 64
HORIZON_US = 24 * 3600 * 10 ** 6     # clock skew tolerated between driver and node


class Stopped:
    """What `stop` files in place of a message: the peer's reason."""

    def __init__(self, reason: str):
        self.reason = reason


def _too_far(job: int) -> bool:
    return job > time.time_ns() // 1000 + HORIZON_US


class Mailbox:
    def __init__(self, names: Dict[int, str], max_future_bytes: int = 1 << 30):
        self.names = dict(names)
        self.cv = threading.Condition()
        self.boxes: Dict[int, deque] = {r: deque() for r in names}
        self.max_future_bytes = max_future_bytes
        self._future: Dict[int, list] = {r: [0, 0] for r in names}   # [messages, bytes]
        self.job = 0
        self.reason: Optional[str] = None
        self._early_aborts: Dict[int, str] = {}

    def start_job(self, job: int) -> None:
        """Make `job` current: drop older messages, apply an abort that came early."""
        with self.cv:
            self.job = job
            self.reason = self._early_aborts.pop(job, None)
            self._early_aborts = {j: r for j, r in self._early_aborts.items() if j > job}
            for r, box in self.boxes.items():
                while box and box[0][0] < job:
                    box.popleft()
                later = [m for m in box if m[0] > job]
                self._future[r] = [len(later), sum(m[2] for m in later)]

    def put(self, frm: int, job: int, payload, nbytes: int = 0) -> bool:
        """File a message; False if it was dropped (stale, or over the bound on
        messages of later jobs)."""
        with self.cv:
            if job < self.job or frm not in self.boxes:
                return False                        # stale: an earlier job
            if job > self.job:
                if _too_far(job):
                    return False
                f = self._future[frm]
                if f[0] >= MAX_FUTURE or f[1] + nbytes > self.max_future_bytes:
                    return False
                f[0] += 1
                f[1] += nbytes
            box = self.boxes[frm]
            if box and box[-1][0] > job:       # it came another way than a later job's
                at = len(box)                  # messages (sealed vs CURVE): file by job
                while at and box[at - 1][0] > job:
                    at -= 1
                box.insert(at, (job, payload, nbytes))
            else:
                box.append((job, payload, nbytes))
            self.cv.notify_all()
            return True

    def stop(self, frm: int, job: int, reason: str) -> bool:
        """File peer `frm`'s stop of `job` after its earlier messages (see recv)."""
        return self.put(frm, job, Stopped(reason))

    def abort(self, job: Optional[int], reason: str) -> None:
        """Fail `job` (None: the current one) with `reason` at every waiting recv."""
        with self.cv:
            if job is None or job == self.job:
                if self.reason is None:
                    self.reason = reason
                self.cv.notify_all()
            elif job > self.job and not _too_far(job) and (
                    job in self._early_aborts or len(self._early_aborts) < MAX_EARLY_ABORTS):
                self._early_aborts.setdefault(job, reason)

    def pending(self, frm: int) -> bool:
        """Whether recv(frm) would return or fail at once (a message of the current job
        or a later one is waiting, or the job was aborted)."""
        with self.cv:
            box = self.boxes.get(frm)
            return self.reason is not None or bool(box and box[-1][0] >= self.job)

    def recv(self, frm: int, timeout: float):
        name = self.names.get(frm, frm)
        deadline = time.monotonic() + timeout
        with self.cv:
            job = self.job
            box = self.boxes[frm]
            while True:
                if self.reason is not None:
                    raise PeerError(self.reason)
                while box and box[0][0] < job:
                    box.popleft()
                if box:
                    if box[0][0] == job:
                        got = box.popleft()[1]
                        if isinstance(got, Stopped):
                            raise PeerStopped(f"party {name!r} stopped job {job}: {got.reason}")
                        return got
                    raise PeerError(f"party {name!r} abandoned job {job} (it already "
                                    f"sent data of a later job)")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"no message from party {name!r} within {timeout:g} s "
                                    f"(dead or hung?)")
                self.cv.wait(left)
