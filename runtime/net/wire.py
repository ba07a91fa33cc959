"""Framing of messages for zmq multipart: one small JSON header frame, then one raw
frame per array.

A payload is a numpy array, bytes, a Share, None, or a tuple/list of those (nested).
The header carries a descriptor tree in which every array is {"a": [dtype, shape]}
and refers to the next raw frame; the array bytes themselves are never serialised:
they are handed to zmq as buffers (`copy=False`, no copy for frames >= 64 KiB) and
received as zmq Frames that numpy views in place (`np.frombuffer`, no copy).

Nothing here ever unpickles: a malicious peer can at worst send arrays of the wrong
shape, which the receiving code reports as an error.
"""
from __future__ import annotations

import json
from typing import Any, List, Tuple

import numpy as np

from ..protocols.base import Share

_DTYPES = {np.dtype(t).str for t in (np.uint8, np.uint16, np.uint32, np.uint64, np.int8,
                                     np.int16, np.int32, np.int64, np.float32, np.float64,
                                     np.bool_)}


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
    if isinstance(p, (tuple, list)):
        return {"t" if isinstance(p, tuple) else "l": [_describe(x, bufs) for x in p]}
    raise WireError(f"cannot send a {type(p).__name__}")


def encode(header: dict, payload=None) -> List:
    """Frames for zmq.send_multipart(frames, copy=False): header JSON + raw buffers."""
    bufs: List = []
    h = dict(header)
    h["p"] = _describe(payload, bufs)
    return [json.dumps(h, separators=(",", ":")).encode()] + bufs


def _build(d, frames, pos: List[int]):
    if d is None:
        return None
    if "a" in d:
        dt, shape = d["a"]
        if dt not in _DTYPES:
            raise WireError(f"dtype {dt!r} not allowed")
        f = _take(frames, pos)
        count = int(np.prod(shape, dtype=np.int64))
        nb = memoryview(f).nbytes if isinstance(f, (np.ndarray, memoryview)) else len(f)
        if nb != count * np.dtype(dt).itemsize:
            raise WireError("array frame has the wrong size")
        return np.frombuffer(f, dtype=dt, count=count).reshape(shape) if count else \
            np.zeros(shape, dt)
    if "b" in d:
        f = _take(frames, pos)
        return f.bytes if hasattr(f, "bytes") else bytes(f)
    if "S" in d:
        boolean, parts = d["S"]
        return Share([_build(x, frames, pos) for x in parts], bool(boolean))
    if "t" in d:
        return tuple(_build(x, frames, pos) for x in d["t"])
    if "l" in d:
        return [_build(x, frames, pos) for x in d["l"]]
    raise WireError("unknown descriptor")


def _take(frames, pos):
    if pos[0] >= len(frames):
        raise WireError("missing frame")
    f = frames[pos[0]]
    pos[0] += 1
    return f          # a zmq.Frame (numpy views its memory, writable) or bytes


def header_of(frames) -> dict:
    """The JSON header of a received message (frames[0])."""
    raw = frames[0].bytes if hasattr(frames[0], "bytes") else bytes(frames[0])
    try:
        h = json.loads(raw)
    except ValueError as e:
        raise WireError(f"bad header: {e}") from None
    if not isinstance(h, dict):
        raise WireError("header is not an object")
    return h


def decode(header: dict, frames) -> Any:
    """The payload of a received message whose header was read by header_of."""
    pos = [1]
    out = _build(header.get("p"), frames, pos)
    if pos[0] != len(frames):
        raise WireError("extra frames")
    return out


def split(frames) -> Tuple[dict, Any]:
    h = header_of(frames)
    return h, decode(h, frames)
