"""Plaintext <-> ring values at the edges of a program: encoding an input leaf in the
format its parameter has, decoding an output to the dtype and shape JAX would give.
Used by the in-process path (api, secret handles) and by networked jobs alike."""
from __future__ import annotations

import jax
import numpy as np

from spu_lite.runtime.ring import RangeError, Ring


class InputError(ValueError):
    """An input spu-lite refuses before any share is made."""


def jax_dtype(dt) -> np.dtype:
    """The dtype JAX traces a numpy input of dtype `dt` with (64-bit types narrow to 32
    bits unless jax_enable_x64 is set)."""
    dt = np.dtype(dt)
    if not jax.config.jax_enable_x64:
        if dt == np.float64:
            return np.dtype(np.float32)
        if dt == np.int64:
            return np.dtype(np.int32)
    return dt


def encode(ring: Ring, leaf: np.ndarray, frac: int, where: str) -> np.ndarray:
    """A plaintext leaf as ring elements: integers and bools as they are, floats at
    `frac` fractional bits; out-of-range or non-finite input is an InputError naming
    `where`."""
    try:
        if leaf.dtype == np.bool_ or np.issubdtype(leaf.dtype, np.integer):
            return ring.encode_int(leaf)
        return ring.encode(leaf, frac)
    except (RangeError, TypeError) as e:
        err = InputError(f"input {where}: {e}")         # may quote the value: its owner's
        err.public_reason = f"input {where}: {getattr(e, 'public_reason', type(e).__name__)}"
        raise err from None                              # for other parties (deploy/errors.py)


def decode(ring: Ring, value: np.ndarray, type, aval) -> np.ndarray:
    """Ring elements of IR type `type` as a numpy array of the JAX result `aval`."""
    dt = type.dtype
    if dt.is_fxp:
        out = ring.decode(value, dt.frac)
    elif dt.is_int:
        out = ring.decode_int(value)
    else:
        out = ring.decode_int(value) != 0
    return np.asarray(out).astype(aval.dtype, copy=False).reshape(aval.shape)
