"""The job log: one JSON line per request a node served, appended, never rewritten.

    {"time": "2026-12-07T02:51:03.120Z", "party": "alice", "kind": "job", "job": 17...,
     "digest": "3f2a...", "program": "<lambda>", "inputs": [["mine", "patients", 0]],
     "outputs": [{"name": "out", "to": "driver"}], "bytes": 1234, "rounds": 5,
     "seconds": 0.031, "outcome": "ok" | "refused" | "failed", "reason": "..."}

`kind` is "job" (a program), "load" (a loader ran; `loader` names it), "dealer" (the
semi2k dealer served a job's correlations; it knows no program, so there is no
digest) or "precompute" (semi2k_ot correlations made ahead: counts, bytes, messages;
precompute.py). The default path is STATE_DIR/jobs.jsonl; `spu-lite node --log FILE` moves it.
The file is created readable by its owner only (it names programs and loaders).
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import List


def utc_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def open_private(path: str, flags: int):
    """Open (creating 0600 if missing) for appending or writing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return os.fdopen(os.open(path, flags | os.O_CREAT, 0o600), "a" if flags & os.O_APPEND
                     else "w")


class JobLog:
    """Appends to one file kept open (a stat per record notices a log moved away or
    deleted, e.g. by rotation, and starts a new file at the path)."""

    def __init__(self, path: str, party: str):
        self.path, self.party = path, party
        self._lock = threading.Lock()
        self._f, self._ino = None, None

    def append(self, **record) -> None:
        line = json.dumps(dict({"time": utc_now(), "party": self.party}, **record),
                          separators=(",", ":"), default=str)
        with self._lock:
            try:
                ino = os.stat(self.path).st_ino
            except FileNotFoundError:
                ino = None
            if self._f is None or ino != self._ino:
                if self._f is not None:
                    self._f.close()
                self._f = open_private(self.path, os.O_WRONLY | os.O_APPEND)
                self._ino = os.fstat(self._f.fileno()).st_ino
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None


def read(path: str) -> List[dict]:
    """Every record of a job log (for tools and tests)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
