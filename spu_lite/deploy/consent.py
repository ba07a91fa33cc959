"""Consent without a round trip per job: every party's verdict travels ahead of its
protocol messages, and is read before anything leaves the computation.

At the start of a job each computing node judges the job under its own operator's
policy (policy.py). Its verdict, with a fingerprint of the job it was sent, goes to
every other computing party with the first message of the job on that link (or on its
own before the node returns anything): no message of its own, no round trip.

* A node that refuses runs nothing: it sends its verdict at once, reads every other
  party's (each comes with its sender's first message to it, or on its own) and fails
  with JobRefused naming every party that refused.
* A node that allows does not wait for the others' verdicts. It starts the job, and
  its transport (ConsentGate, which the node's protocol parties use) reads a peer's
  verdict in front of the first message it takes from that peer: a refusal, or a
  fingerprint that differs from its own (the driver sent the parties different jobs),
  stops it there with the same JobRefused. Before anything leaves the computation
  (outputs to the driver, output shares sent to a `reveal_to` party, shares kept at
  the node) the node sends its verdict where it has not gone yet and reads every
  verdict it has not read yet (`settle`); a peer sends them before it returns
  anything too, so this waits at most for the slowest party to finish.
* A program with `reveal` ops (they open values to every computing party during the
  run) settles first, as every job used to: the opening must not happen unless all
  agreed.
* A node that stops a job it had started tells every peer in order (a "stop" after
  the messages it sent; runtime/net/mailbox.py), so a peer waiting for it reads its
  stop and fails with the same JobRefused; the node starts its next job with fresh
  protocol state (its state may be out of step with its peers').

What this keeps (the argument in full: docs/security.md, consent): a node runs only
what its own policy allowed (its verdict comes first and is its own; a peer's verdict
can only stop it); a refusal stops every party, and the driver's error names every
party that refused; no output leaves before all verdicts are read, and a party that
refused receives at most protocol messages of the first steps of a run, which are
masked by randomness it does not hold (the protocols' privacy against one party),
and, of a party-owned input, its own share (uniformly random on its own).
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Dict, Tuple

from spu_lite.runtime.link import PeerError, PeerStopped

from .policy import JobRefused

MAX_REASON = 500


def fingerprint(h: dict, ir_hash: str) -> bytes:
    """What every computing party must have been sent alike (their payloads differ)."""
    same = {k: h.get(k) for k in ("inputs", "options", "reveal_to", "outputs", "keep", "tag")}
    same["ir"] = ir_hash
    return hashlib.sha256(json.dumps(same, sort_keys=True, default=str).encode()).digest()


class ConsentGate:
    """A node's transport (NetTransport's interface) that, during a job it opened,
    sends this party's verdict with its first message to each computing peer and
    reads each peer's verdict with the first message from that peer."""

    def __init__(self, inner, rank: int, computing: int, names: Dict[int, str]):
        self.inner = inner
        self.rank, self.names = rank, dict(names)
        self.peers = [r for r in range(computing) if r != rank]
        self._reset()

    def _reset(self) -> None:
        self.fp, self.mine = None, None
        self.allowed = False
        self.unsent: set = set()          # peers this party's verdict has not gone to
        self.unread: set = set()          # peers whose verdict has not been read
        self.held: Dict[int, object] = {}   # a payload that came with a verdict, unread
        self.verdicts: Dict[int, Tuple[bool, str, bool]] = {}   # rank -> ok, why, same job
        self.consent_wait = 0.0          # seconds spent waiting for verdicts

    # -- NetTransport's interface ----------------------------------------------------
    @property
    def waited(self) -> float:
        return self.inner.waited

    @property
    def shaper(self):
        return self.inner.shaper

    def start_job(self, job: int) -> None:
        self.inner.start_job(job)
        self._reset()

    def send(self, to: int, payload) -> None:
        if to in self.unsent:             # the verdict rides on the first message
            self.unsent.discard(to)
            payload = self.mine + (payload,)
        self.inner.send(to, payload)

    def pending(self, frm: int) -> bool:
        if frm in self.unread and self.inner.pending(frm):
            self._read(frm)
        return frm in self.held or self.inner.pending(frm)

    def recv(self, frm: int):
        if self.unsent and not self.inner.pending(frm):
            self._flush()                 # about to wait: the rest go on their own now
        if frm in self.unread:
            self._read(frm)
        if frm in self.held:
            return self.held.pop(frm)
        try:
            return self.inner.recv(frm)
        except PeerStopped:
            if self.fp is not None:     # it stopped on a verdict: read them all, say why
                self._refuse()
            raise

    # -- consent ------------------------------------------------------------------------
    def open(self, fp: bytes, ok: bool, why: str) -> None:
        """This party's verdict on the current job: it goes to every other computing
        party with the first message sent to it, or on its own when this party
        first waits for a peer or settles; from now on their verdicts are read with
        their first messages."""
        self.mine = (fp, json.dumps({"ok": ok, "why": why[:MAX_REASON]}).encode())
        self.fp, self.allowed = fp, ok
        self.verdicts = {self.rank: (ok, why[:MAX_REASON], True)}
        self.unsent, self.unread = set(self.peers), set(self.peers)

    def settle(self) -> None:
        """Send this party's verdict where it has not gone yet, then read every verdict
        not read yet. JobRefused if a party refused (this one too) or was sent
        another job."""
        self._flush()
        self._read_all(judge=True)
        if not self.allowed:
            self._refuse()

    def stop_peers(self, reason: str) -> None:
        """After this node stopped the job: tell every peer, after what it sent."""
        for r in self.inner.ep.peers:
            self.inner.stop(r, reason)

    def _flush(self) -> None:
        for r in sorted(self.unsent):
            self.inner.send(r, self.mine)
        self.unsent = set()

    def _read_all(self, judge: bool) -> None:
        """Read every verdict not read yet. A party that refused stops with its own
        refusal even if a peer's link fails first: a peer that read the refusal stops
        too, and its stop can reach this party (through the dealer, say) before its
        verdict does. It reads no further then (a second wait on a failed link could
        take another timeout)."""
        try:
            for r in sorted(self.unread):
                self._read(r, judge)
        except PeerError:
            if self.allowed:
                raise
            self.unread = set()

    def _read(self, r: int, judge: bool = True) -> None:
        t = time.perf_counter()
        try:
            got = self.inner.recv(r)
        finally:
            self.consent_wait += time.perf_counter() - t
        self.unread.discard(r)
        try:
            if not isinstance(got, tuple) or len(got) not in (2, 3):
                raise TypeError
            v = json.loads(got[1])
            ok, why = bool(v["ok"]), str(v["why"])[:MAX_REASON]
        except (TypeError, ValueError, KeyError):
            raise PeerError(f"party {self.names[r]!r} sent a malformed consent message") \
                from None
        if len(got) == 3:
            self.held[r] = got[2]
        self.verdicts[r] = (ok, why, got[0] == self.fp)
        if judge and not (ok and got[0] == self.fp):
            self._refuse()

    def _refuse(self) -> None:
        """Read the remaining verdicts and raise JobRefused naming every party that
        refused (or, if none did, those sent another job): the same at every party.
        Returns if every party allowed the same job."""
        self._flush()                   # a peer may be waiting for this party's verdict
        self._read_all(judge=False)
        v = sorted(self.verdicts.items())
        refused = [f"{self.names[r]} ({why})" for r, (ok, why, _) in v if not ok]
        if refused:
            raise JobRefused("refused by " + "; ".join(refused))
        other = [self.names[r] for r, (_, _, same) in v if not same]
        if other:
            raise JobRefused(f"the driver sent {', '.join(other)} a different job than "
                             f"{self.names[self.rank]}: refused")
