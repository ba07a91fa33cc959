"""Multipart send / receive on zmq sockets with plain-int flags.

pyzmq's send_multipart / recv_multipart combine its IntFlag enums once per frame
(`SNDMORE | flags`, `events & POLLIN`), and an enum operation costs a few
microseconds in Python: about half of the Python time of moving a three-frame
message (25 us -> 13 us for a send and a receive here). These helpers do the same
with ints.

Array frames below ZERO_COPY bytes are copied into the message (one memcpy, about
0.05 ms per MB); larger ones go zero-copy. pyzmq's zero-copy send keeps the buffer
alive until libzmq is done with it by waking a garbage-collector thread that must take
the GIL to drop the reference: one extra thread wake-up and GIL hand-off per frame,
which cost a node more than the copy (aby3 less, n = 65,536: about 13 wake-ups per job;
the nodes' CPU per job 0.88x without them).
"""
from __future__ import annotations

from typing import List

import numpy as np
import zmq

SNDMORE = int(zmq.SNDMORE)
NOBLOCK = int(zmq.NOBLOCK)
EVENTS = int(zmq.EVENTS)
POLLIN = int(zmq.POLLIN)
ZERO_COPY = 4 << 20


def send(sock: zmq.Socket, frames, flags: int = 0) -> None:
    """Send frames as one message (zmq.Again with NOBLOCK and a full queue: raised
    at the first frame, so nothing of the message is queued)."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        sock.send(f, flags | SNDMORE if i < last else flags,
                  copy=not isinstance(f, np.ndarray) or f.nbytes < ZERO_COPY)


def readable(sock: zmq.Socket) -> bool:
    """Whether a whole message is waiting (recv would not block)."""
    return bool(sock.get(EVENTS) & POLLIN)


def recv(sock: zmq.Socket) -> List[zmq.Frame]:
    """One waiting message's frames (zmq.Again if there is none)."""
    out = [sock.recv(NOBLOCK, copy=False)]
    while out[-1].more:              # the frame's flag: no socket option call
        out.append(sock.recv(NOBLOCK, copy=False))
    return out
