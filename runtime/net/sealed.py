"""Sealed frames: bulk data in AES-256-GCM over a plain zmq connection, keyed over CURVE.

CURVE (libzmq's XSalsa20-Poly1305) costs about 3.7 ms per MB on this kind of machine,
both ends together; AES-256-GCM through AES-NI about 0.25 ms. So data between parties
and between the driver and the nodes travels on a second, plain connection, each frame
sealed with AES-256-GCM, while the CURVE connection keeps the job of authenticating
the parties and delivering the keys:

    offer   the receiving side R of a link draws a fresh key K (32 bytes) and a link id
            L (16 bytes) from os.urandom and sends them, with the port of its plain
            socket, to the sender S over their CURVE connection. Only S can read it and
            S knows R sent it; K lives in memory only, so a key file that leaks later
            does not open recorded traffic (CURVE's forward secrecy carries over).
    message prefix = MAGIC | L | direction (1 byte) | counter (8) | frame count (4)
            frame i = AES-GCM_K(nonce = direction | i (3 bytes) | counter,
                                aad = prefix, plaintext frame i)  (ciphertext | 16-byte tag)

Direction 0 is S -> R; direction 1 is R's replies to S over the same connection (the
driver opens no port, so nodes answer it that way). A receiver accepts a message only
if L is a link it offered, every frame opens under its key (so it came from S, whole,
unmodified, its frames in order and none missing: the count is in the tag's aad) and
its counter is above every counter seen on that link and direction (a replay or an
old message is dropped). A sender's counter never repeats under a key, so no nonce
does. Anything else is dropped unread: an unknown link costs the sender its bytes and
the receiver one dictionary lookup.

The plain connection shows what CURVE shows to an observer (sizes and timing), plus
the link id and counter in clear.
"""
from __future__ import annotations

import os
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"SPUs"
KEY_BYTES, LINK_BYTES, TAG_BYTES = 32, 16, 16
_PREFIX = struct.Struct(">4s16sBQI")       # magic, link, direction, counter, frame count
MAX_FRAMES = 1 << 24                      # the frame index has 3 bytes of the nonce
SMALL = 4096                              # frames below this are sealed by copy


class SealError(ValueError):
    """A sealed message that does not open (unknown link, tampered, replayed)."""


def new_offer() -> Tuple[bytes, bytes]:
    """A fresh (key, link id) from the operating system's CSPRNG."""
    return os.urandom(KEY_BYTES), os.urandom(LINK_BYTES)


def _nonce(direction: int, index: int, counter: int) -> bytes:
    return bytes([direction]) + index.to_bytes(3, "big") + counter.to_bytes(8, "big")


def _view(frame) -> memoryview:
    """The bytes of a frame (bytes, numpy array or zmq.Frame) without a copy."""
    if hasattr(frame, "buffer"):                  # zmq.Frame
        return frame.buffer.cast("B")
    return memoryview(frame).cast("B")


class Sealer:
    """One direction of one link, sending side: seal(frames) -> frames to send."""

    def __init__(self, key: bytes, link: bytes, direction: int):
        if len(key) != KEY_BYTES or len(link) != LINK_BYTES or direction not in (0, 1):
            raise ValueError("bad sealing key, link id or direction")
        self.aead, self.link, self.direction = AESGCM(key), link, direction
        self.counter = 0

    def seal(self, frames: List) -> List:
        if len(frames) >= MAX_FRAMES:
            raise ValueError("too many frames to seal")
        self.counter += 1
        prefix = _PREFIX.pack(MAGIC, self.link, self.direction, self.counter, len(frames))
        out = [prefix]
        for i, f in enumerate(frames):
            data = _view(f)
            nonce = _nonce(self.direction, i, self.counter)
            if data.nbytes < SMALL:
                out.append(self.aead.encrypt(nonce, data, prefix))
            else:                       # AES straight into the buffer zmq will send
                buf = np.empty(data.nbytes + TAG_BYTES, np.uint8)   # not zero-filled
                self.aead.encrypt_into(nonce, data, prefix, buf)
                out.append(buf)
        return out


class _Opener:
    def __init__(self, owner, key: bytes, link: bytes):
        self.owner, self.aead = owner, AESGCM(key)
        self.last = [0, 0]              # highest counter seen per direction
        self.replies = Sealer(key, link, 1)      # direction 1: answers on this link


class Openers:
    """The links a party offered, receiving side: open(frames) -> (owner, frames).

    `owner` is whatever the offer was made for (a peer's rank, or a driver's route).
    Each owner keeps its `keep` most recent links, so a message sealed under an offer
    that was just replaced (two offers crossed) still opens."""

    def __init__(self, keep: int = 4, max_links: int = 256):
        self.links: Dict[bytes, _Opener] = {}
        self.keep, self.max_links = keep, max_links

    def offer(self, owner) -> Tuple[bytes, bytes]:
        key, link = new_offer()
        mine = [lk for lk, o in self.links.items() if o.owner == owner]
        for lk in mine[: max(0, len(mine) - self.keep + 1)]:
            del self.links[lk]
        while len(self.links) >= self.max_links:       # oldest first (dicts keep order)
            del self.links[next(iter(self.links))]
        self.links[link] = _Opener(owner, key, link)
        return key, link

    def forget(self, owner) -> None:
        for lk in [lk for lk, o in self.links.items() if o.owner == owner]:
            del self.links[lk]

    def replies(self, link: bytes) -> Optional[Sealer]:
        """The sealer for answers on `link` (one counter per link: nonces never repeat)."""
        o = self.links.get(link)
        return o.replies if o else None

    def open(self, frames, direction: int = 0) -> Tuple[object, bytes, List]:
        """(owner, link, plaintext frames) of a sealed message, or SealError."""
        head = _prefix(frames)
        if head is None:
            raise SealError("not a sealed message")
        _, link, d, counter, count = head
        o = self.links.get(link)
        if o is None:
            raise SealError("sealed under a link this party did not offer")
        if d != direction:
            raise SealError("sealed for the other direction")
        if count != len(frames) - 1:
            raise SealError("frames missing or added")
        if counter <= o.last[d]:
            raise SealError("an old or replayed message")
        prefix = _view(frames[0]).tobytes()
        out = []
        try:
            for i in range(count):
                ct = _view(frames[i + 1])
                if ct.nbytes < TAG_BYTES:
                    raise SealError("frame shorter than its tag")
                nonce = _nonce(d, i, counter)
                if ct.nbytes < SMALL + TAG_BYTES:
                    out.append(o.aead.decrypt(nonce, ct, prefix))
                else:
                    buf = np.empty(ct.nbytes - TAG_BYTES, np.uint8)   # writable views
                    o.aead.decrypt_into(nonce, ct, prefix, buf)
                    out.append(buf)
        except InvalidTag:
            raise SealError("a frame does not open under the link's key") from None
        o.last[d] = counter
        return o.owner, link, out


def _prefix(frames):
    if not len(frames):
        return None
    p = _view(frames[0])
    if p.nbytes != _PREFIX.size:
        return None
    head = _PREFIX.unpack(p)
    return head if head[0] == MAGIC else None


class ReplyOpener:
    """The driver's side of direction 1 on a link it was offered: opens the node's
    replies sealed under the same key."""

    def __init__(self, key: bytes, link: bytes):
        self.openers = Openers(keep=1)
        self.openers.links[link] = _Opener(None, key, link)

    def open(self, frames) -> List:
        return self.openers.open(frames, direction=1)[2]
