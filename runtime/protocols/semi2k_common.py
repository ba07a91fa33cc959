"""semi2k shared pieces: keystream helpers, the request codec, and the draws of
whole-array correlations -- used alike by the parties (semi2k.py) and the dealer
(semi2k_dealer.py), which must read the keystreams in exactly the same way."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..link import PeerError
from ..prg import Prg, derive_key

# --------------------------------------------------------------------------------------
# Keystream -> numpy. Prg.uniform makes three fresh copies (zeros, ciphertext,
# bytearray: ~12 ms per 8 MB here); encrypting a cached block of zeros straight into the
# destination costs ~1 ms per 8 MB. Same cipher object and counter as Prg.bytes, hence
# the same bytes.

_CHUNK = 1 << 20
_ZEROS = memoryview(np.zeros(_CHUNK, np.uint8))
_exact_update_into = [True]   # recent `cryptography` accepts len(out) == len(in); older
                              # versions want block_size - 1 spare bytes: copy instead


def _fill(prg: Prg, out: np.ndarray) -> np.ndarray:
    """Overwrite the contiguous array `out` with the next out.nbytes keystream bytes."""
    buf = out.reshape(-1).view(np.uint8)
    n = buf.size
    enc = getattr(prg, "_enc", None)
    if enc is None or not hasattr(enc, "update_into"):   # pragma: no cover - other Prg
        buf[:] = np.frombuffer(prg.bytes(n), np.uint8)
        return out
    off = 0
    while off < n:
        m = min(_CHUNK, n - off)
        if _exact_update_into[0]:
            try:
                enc.update_into(_ZEROS[:m], buf[off:off + m])
            except ValueError:                            # pragma: no cover - old library
                _exact_update_into[0] = False
                continue
        else:                                             # pragma: no cover
            buf[off:off + m] = np.frombuffer(enc.update(_ZEROS[:m]), np.uint8)
        off += m
    return out


def uniform(prg: Prg, shape, dtype) -> np.ndarray:
    """Uniform ring elements of `shape` from `prg` (a fresh, writable array)."""
    return _fill(prg, np.empty(tuple(int(s) for s in shape), dtype))


BLOCK = 1 << 15      # elements per block of an elementwise correlation (protocol constant)


def _blocks(n: int):
    for lo in range(0, n, BLOCK):
        yield lo, min(n, lo + BLOCK)


# --------------------------------------------------------------------------------------
# Requests to the dealer: int64 arrays [kind, params...]. Shapes as [ndim, d0, d1, ...].

DONE, MUL, SQUARE, DOT, TRUNC, AND, B2A, DOT_KEEP, DOT_REUSE = range(9)
MAX_REQUEST_INTS = 64
#: elementwise kinds: per block, every party reads RANDOM[kind] pieces from its random
#: stream (mul/and: a, b; square: a; trunc: r) and P_1.. read DERIVED[kind] pieces from
#: their derived stream (mul/and/square: c; trunc: s, w)
RANDOM = {MUL: 2, AND: 2, SQUARE: 1, TRUNC: 1}
DERIVED = {MUL: 1, AND: 1, SQUARE: 1, TRUNC: 2}
DERIVED_LABEL = "semi2k/derived"


def _enc_seq(seq) -> List[int]:
    seq = [int(s) for s in seq]
    return [len(seq)] + seq


def _dec_seq(req: np.ndarray, pos: int) -> Tuple[Tuple[int, ...], int]:
    n = int(req[pos])
    if n < 0 or pos + 1 + n > req.size:
        raise PeerError("dealer: malformed request")
    return tuple(int(v) for v in req[pos + 1:pos + 1 + n]), pos + 1 + n


def _encode_request(kind, params) -> np.ndarray:
    if kind in (MUL, SQUARE, AND, B2A):
        ints = _enc_seq(params[0])
    elif kind == TRUNC:
        ints = _enc_seq(params[0]) + [params[1]]
    elif kind in (DOT, DOT_KEEP, DOT_REUSE):
        xs, ys, dims = params[:3]
        ints = _enc_seq(xs) + _enc_seq(ys) + sum((_enc_seq(d) for d in dims), [])
        if kind != DOT:
            ints.append(int(params[3]))                  # the slot of the kept B
    else:
        ints = []
    return np.array([kind] + ints, np.int64)


def _decode_request(req) -> Tuple[int, tuple]:
    if not isinstance(req, np.ndarray) or req.dtype != np.int64 or req.ndim != 1 \
            or not 1 <= req.size <= MAX_REQUEST_INTS:
        raise PeerError(f"dealer: malformed request ({type(req).__name__})")
    kind = int(req[0])
    if kind == DONE:
        return kind, ()
    if kind in (MUL, SQUARE, AND, B2A):
        shape, _ = _dec_seq(req, 1)
        return kind, (shape,)
    if kind == TRUNC:
        shape, pos = _dec_seq(req, 1)
        return kind, (shape, int(req[pos]))
    if kind in (DOT, DOT_KEEP, DOT_REUSE):
        xs, pos = _dec_seq(req, 1)
        ys, pos = _dec_seq(req, pos)
        dims = []
        for _ in range(4):
            d, pos = _dec_seq(req, pos)
            dims.append(d)
        if kind == DOT:
            return kind, (xs, ys, tuple(dims))
        if pos >= req.size:
            raise PeerError("dealer: malformed request")
        return kind, (xs, ys, tuple(dims), int(req[pos]))
    raise PeerError(f"dealer: unknown request kind {kind}")


def _dot_out_shape(xs, ys, dims) -> Tuple[int, ...]:
    lc, rc, lb, rb = [list(d) for d in dims]
    lf = [i for i in range(len(xs)) if i not in lc and i not in lb]
    rf = [i for i in range(len(ys)) if i not in rc and i not in rb]
    return tuple([xs[i] for i in lb] + [xs[i] for i in lf] + [ys[i] for i in rf])


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


# Whole-array correlations: what a party reads from its random stream (prg) and, for
# P_1.., its derived stream (prg_d; None for P_0). Shared by the parties and the dealer.

def _draw_dot(prg, prg_d, params, dt):
    xs, ys, dims = params
    a, b = uniform(prg, xs, dt), uniform(prg, ys, dt)
    return a, b, (None if prg_d is None else uniform(prg_d, _dot_out_shape(xs, ys, dims), dt))


def _draw_dot_reuse(prg, prg_d, params, dt):
    """A fresh A (and C's derived piece) for a dot whose B is kept from an earlier call."""
    xs, ys, dims = params[:3]
    a = uniform(prg, xs, dt)
    return a, (None if prg_d is None else uniform(prg_d, _dot_out_shape(xs, ys, dims), dt))


def _draw_b2a(prg, prg_d, params, dt):
    """rb: the random bit of every element, packed as by np.packbits; ra: [r]^A piece."""
    (shape,) = params
    rb = _fill(prg, np.empty((_size(shape) + 7) // 8, np.uint8))
    return rb, (None if prg_d is None else uniform(prg_d, shape, dt))


def _flat(x: np.ndarray, shape) -> np.ndarray:
    """x broadcast to `shape`, as a contiguous 1-D array (a view when possible)."""
    if x.shape != tuple(shape):
        x = np.broadcast_to(x, shape)
    return np.ascontiguousarray(x).reshape(-1)


def _sum_into(op, arrays, sl, out):
    """out = arrays[0][sl] op arrays[1][sl] op ...   (op: np.add or np.bitwise_xor)"""
    op(arrays[0][sl], arrays[1][sl], out=out)
    for v in arrays[2:]:
        op(out, v[sl], out=out)
    return out


def _streams(key: bytes) -> Tuple[Prg, Prg]:
    """A party's two keystreams (random pieces, derived pieces) from its 16-byte key."""
    return Prg(key), Prg(derive_key(key, DERIVED_LABEL))
