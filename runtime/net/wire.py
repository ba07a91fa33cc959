"""Framing of messages for zmq multipart: one small JSON header frame, then one raw
frame per array.

A payload is a numpy array, bytes, a Share, a SeededShare (parts arrays or 16-byte
keys, protocols/dealing.py), None, or a tuple/list of those (nested).
The header carries a descriptor tree in which every array is {"a": [dtype, shape]}
and refers to the next raw frame; the array bytes themselves are never serialised:
they are handed to zmq as buffers (`copy=False`, no copy for frames >= 64 KiB) and
received as zmq Frames that numpy views in place (`np.frombuffer`, no copy).

Nothing here ever unpickles. Everything received is checked before use, and any
violation is a WireError (the receive loop drops and logs the message): the header is
a JSON object nested at most MAX_DEPTH deep with an integer `job` where one is
needed; descriptors nest at most MAX_DEPTH deep; shapes are lists of at most MAX_NDIM
non-negative integers whose product matches the frame's size; dtypes come from a
fixed list; a message has at most MAX_FRAMES frames.
"""
from __future__ import annotations

import json
import math
from typing import Any, List, Tuple

import numpy as np

from ..protocols.base import Share
from ..protocols.dealing import SeededShare

_DTYPES = {np.dtype(t).str for t in (np.uint8, np.uint16, np.uint32, np.uint64, np.int8,
                                     np.int16, np.int32, np.int64, np.float32, np.float64,
                                     np.bool_)}


MAX_DEPTH = 32          # nesting of the header JSON and of payload descriptors
MAX_NDIM = 32
MAX_FRAMES = 65536
MAX_JOB = 2 ** 63 - 1


class WireError(ValueError):
    """A message that does not follow the wire format."""


def _describe(p, bufs: List) -> Any:
    if p is None:
        return None
    if isinstance(p, np.ndarray):
        a = p if p.flags.c_contiguous else p.copy(order="C")   # copy only strided views
        bufs.append(a if a.size else b"")
        return {"a": [a.dtype.str, list(a.shape)]}
    if isinstance(p, np.generic):
        return _describe(np.asarray(p), bufs)
    if isinstance(p, (bytes, bytearray, memoryview)):
        bufs.append(bytes(p) if isinstance(p, bytearray) else p)
        return {"b": 1}
    if isinstance(p, Share):
        return {"S": [bool(p.boolean), [_describe(x, bufs) for x in p.parts]]}
    if isinstance(p, SeededShare):
        return {"Z": [bool(p.boolean), [_describe(x, bufs) for x in p.parts]]}
    if isinstance(p, (tuple, list)):
        return {"t" if isinstance(p, tuple) else "l": [_describe(x, bufs) for x in p]}
    raise WireError(f"cannot send a {type(p).__name__}")


def encode(header: dict, payload=None) -> List:
    """Frames for zmq.send_multipart(frames, copy=False): header JSON + raw buffers."""
    bufs: List = []
    h = dict(header)
    h["p"] = _describe(payload, bufs)
    return [json.dumps(h, separators=(",", ":")).encode()] + bufs


def _shape(shape) -> Tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2 ** 40 for d in shape):
        raise WireError("bad array shape")
    return tuple(shape)


def _build(d, frames, pos: List[int], depth: int = 0):
    if d is None:
        return None
    if depth > MAX_DEPTH:
        raise WireError("payload nested too deeply")
    if not isinstance(d, dict) or len(d) != 1:
        raise WireError("bad descriptor")
    if "a" in d:
        if not isinstance(d["a"], list) or len(d["a"]) != 2:
            raise WireError("bad array descriptor")
        dt, shape = d["a"]
        if not isinstance(dt, str) or dt not in _DTYPES:
            raise WireError("dtype not allowed")
        shape = _shape(shape)
        f = _take(frames, pos)
        count = math.prod(shape)                 # Python ints: no overflow
        nb = memoryview(f).nbytes if isinstance(f, (np.ndarray, memoryview)) else len(f)
        if nb != count * np.dtype(dt).itemsize:
            raise WireError("array frame has the wrong size")
        return np.frombuffer(f, dtype=dt, count=count).reshape(shape) if count else \
            np.zeros(shape, dt)
    if "b" in d:
        f = _take(frames, pos)
        return f.bytes if hasattr(f, "bytes") else bytes(f)
    if "S" in d:
        if not isinstance(d["S"], list) or len(d["S"]) != 2 or \
                not isinstance(d["S"][0], bool) or not isinstance(d["S"][1], list):
            raise WireError("bad share descriptor")
        boolean, parts = d["S"]
        return Share([_build(x, frames, pos, depth + 1) for x in parts], boolean)
    if "Z" in d:        # a seeded share: every part one array or one key (bytes)
        if not isinstance(d["Z"], list) or len(d["Z"]) != 2 or \
                not isinstance(d["Z"][0], bool) or not isinstance(d["Z"][1], list) or \
                not all(isinstance(x, dict) and len(x) == 1 and ("a" in x or "b" in x)
                        for x in d["Z"][1]):
            raise WireError("bad seeded share descriptor")
        boolean, parts = d["Z"]
        return SeededShare([_build(x, frames, pos, depth + 1) for x in parts], boolean)
    for k in ("t", "l"):
        if k in d:
            if not isinstance(d[k], list):
                raise WireError("bad sequence descriptor")
            items = [_build(x, frames, pos, depth + 1) for x in d[k]]
            return tuple(items) if k == "t" else items
    raise WireError("unknown descriptor")


def _take(frames, pos):
    if pos[0] >= len(frames):
        raise WireError("missing frame")
    f = frames[pos[0]]
    pos[0] += 1
    return f          # a zmq.Frame (numpy views its memory, writable) or bytes


def _depth_ok(raw: bytes) -> bool:
    """Bracket nesting of a JSON text at most MAX_DEPTH (checked before parsing, so a
    hostile header never recurses deeply in the parser). Brackets inside strings
    count too, which only errs on the safe side."""
    depth = 0
    for b in raw.translate(None, _NOT_BRACKETS):
        depth += 1 if b in b"[{" else -1
        if depth > MAX_DEPTH:
            return False
    return True


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def header_of(frames) -> dict:
    """The JSON header of a received message (frames[0])."""
    if not len(frames) or len(frames) > MAX_FRAMES:
        raise WireError("bad frame count")
    raw = frames[0].bytes if hasattr(frames[0], "bytes") else bytes(frames[0])
    if not _depth_ok(raw):
        raise WireError("header nested too deeply")
    try:
        h = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise WireError(f"bad header: {type(e).__name__}") from None
    if not isinstance(h, dict):
        raise WireError("header is not an object")
    if "job" in h and h["job"] is not None:
        job_id(h)
    return h


def job_id(header: dict) -> int:
    """The header's `job`: an integer in [0, 2^63)."""
    j = header.get("job")
    if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j <= MAX_JOB:
        raise WireError("header has no valid job id")
    return j


def decode(header: dict, frames) -> Any:
    """The payload of a received message whose header was read by header_of."""
    pos = [1]
    try:
        out = _build(header.get("p"), frames, pos)
    except RecursionError:
        raise WireError("payload nested too deeply") from None
    if pos[0] != len(frames):
        raise WireError("extra frames")
    return out


def split(frames) -> Tuple[dict, Any]:
    h = header_of(frames)
    return h, decode(h, frames)
