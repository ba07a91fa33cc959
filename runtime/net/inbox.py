"""The job thread's own receive path for the peers' sealed data.

Peers send a party the data of its jobs sealed (sealed.py) over a plain connection to
a socket that only the party's job thread reads. When a recv finds nothing filed for
it, the job thread waits on that socket itself, then opens and files whatever arrived
(Mailbox.recv -> pump). So a message costs one wake-up, of the thread that needs it.
Before, the io thread received every message, opened it, filed it and woke the job
thread: one more wake-up and GIL hand-off per message, on a machine where three nodes
share two cores (aby3 comparison of 65,536 elements: about 20 context switches and
4 ms of the io thread's CPU per node and job).

What the io thread still files (data that came over CURVE before the links were
sealed, a peer's or the driver's abort, a dropped connection) wakes a pumping job
thread through a pipe (Mailbox.wake).

Anything that arrives may be hostile (the port is plain TCP): a message that is too
large, does not open under a link offered to a peer, or does not follow the wire
format is dropped and logged by the endpoint (`on_drop`), exactly as on the io
thread. Between two receives of a job, messages wait in libzmq's queue: at most
RCVHWM per connection, each at most the endpoint's message cap (ZMQ_MAXMSGSIZE); the
node also drains the queue while it waits for requests (Node.serve_forever).
"""
from __future__ import annotations

import os
from typing import Callable, Dict

import zmq

from . import zio
from .sealed import TAG_BYTES, Openers

RCVHWM = 1000            # messages queued per connection before TCP pushes back
DRAIN = 1000             # messages opened per pump at most (then recv looks again)


class PeerInbox:
    def __init__(self, ctx: zmq.Context, host: str, max_message: int,
                 names: Dict[int, str], on_message: Callable, on_drop: Callable):
        """on_message(rank, frames, size): file an opened message of peer `rank`;
        on_drop(sender, what, always=False): count and log a dropped one."""
        self.max_message, self.names = max_message, dict(names)
        self.on_message, self.on_drop = on_message, on_drop
        self.links = Openers(max_links=4 * len(names) + 4)    # owners: ("peer", rank)
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.rcvhwm = RCVHWM
        self.sock.maxmsgsize = max_message + TAG_BYTES
        self.sock.bind(f"tcp://{host}:0")
        self.port = int(self.sock.last_endpoint.rsplit(b":", 1)[1])
        self.woken = 0                     # pumps ended by wake()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLIN)
        self.poller.register(self._wake_r, zmq.POLLIN)

    def wake(self) -> None:
        """Make a pump that waits return (called by other threads)."""
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:              # the pipe is full: a wake-up is pending
            pass

    def pump(self, timeout: float) -> None:
        """Job thread: wait at most `timeout` s for data or a wake-up, then open and
        file everything that is waiting."""
        if timeout > 0 and not zio.readable(self.sock):
            self.poller.poll(max(1, int(timeout * 1000 + 0.999)))
        try:
            if os.read(self._wake_r, 4096):
                self.woken += 1
        except BlockingIOError:
            pass
        for _ in range(DRAIN):
            if not zio.readable(self.sock):
                return
            frames = zio.recv(self.sock)
            sender = "a plain connection"
            try:
                size = sum(len(f) for f in frames[1:])
                if size > self.max_message + 64 * len(frames):
                    self.on_drop(sender, f"a message of {size} bytes, which exceeds the cap "
                                         f"of {self.max_message} (max_message_mb)", always=True)
                    continue
                (_, rank), _, plain = self.links.open(frames[1:])
                sender = self.names[rank]
                self.on_message(rank, plain, size)
            except Exception as e:  # noqa: BLE001 - anything received may be hostile
                self.on_drop(sender, f"a message that does not open or is malformed "
                                     f"({type(e).__name__}: {str(e)[:200]})")

    def close(self) -> None:
        self.sock.close(0)
        os.close(self._wake_r)
        os.close(self._wake_w)
