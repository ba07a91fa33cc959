"""Per-peer inboxes of one party, keyed by job id.

The io thread puts every data message from a peer here; the party's job thread takes
them out in order (zmq keeps the order of the messages of one connection). Every
message carries the id of the job it belongs to. Job ids only grow (the driver makes
them from the clock), which gives simple rules:

* a message of an older job than the current one is stale (left over from an aborted
  job, or queued while a peer was down): it is dropped;
* a message of a newer job is kept: the peer may have started that job before this
  party got it from the driver;
* if the next message from a peer is already of a newer job, that peer abandoned the
  current one: waiting longer would hang, so recv fails at once.

recv waits at most `timeout` seconds and otherwise raises PeerError naming the peer;
`abort` (a peer's or the driver's abort message, or a dropped connection) wakes every
waiting recv of that job with the reason.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Dict, Optional

from ..link import PeerError


class Mailbox:
    def __init__(self, names: Dict[int, str]):
        self.names = dict(names)
        self.cv = threading.Condition()
        self.boxes: Dict[int, deque] = {r: deque() for r in names}
        self.job = 0
        self.reason: Optional[str] = None
        self._early_aborts: Dict[int, str] = {}

    def start_job(self, job: int) -> None:
        """Make `job` current: drop older messages, apply an abort that came early."""
        with self.cv:
            self.job = job
            self.reason = self._early_aborts.pop(job, None)
            self._early_aborts = {j: r for j, r in self._early_aborts.items() if j > job}
            for box in self.boxes.values():
                while box and box[0][0] < job:
                    box.popleft()

    def put(self, frm: int, job: int, payload) -> None:
        with self.cv:
            if job < self.job or frm not in self.boxes:
                return                              # stale: an earlier job
            self.boxes[frm].append((job, payload))
            self.cv.notify_all()

    def abort(self, job: Optional[int], reason: str) -> None:
        """Fail `job` (None: the current one) with `reason` at every waiting recv."""
        with self.cv:
            if job is None or job == self.job:
                if self.reason is None:
                    self.reason = reason
                self.cv.notify_all()
            elif job > self.job:
                self._early_aborts.setdefault(job, reason)

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
                        return box.popleft()[1]
                    raise PeerError(f"party {name!r} abandoned job {job} (it already "
                                    f"sent data of a later job)")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"no message from party {name!r} within {timeout:g} s "
                                    f"(dead or hung?)")
                self.cv.wait(left)
