"""Kernels: max/min reductions and argmax/argmin (tournament trees over compare)."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.compare import less, tree_reduce_last
from .registry import kernel


def _to_last(x, axes):
    """Move `axes` to the end and flatten them into one."""
    def f(s):
        keep = [i for i in range(s.ndim) if i not in axes]
        t = np.transpose(s, keep + list(axes))
        return t.reshape(t.shape[:len(keep)] + (-1,))
    return B.map_local(x, f)


def _reduce(K, op, x, pick_hi):
    axes = list(op.attrs["axes"])
    if not axes:
        return x
    out, _ = tree_reduce_last(K.P, _to_last(x, axes), pick_hi)
    return out


@kernel("reduce_max")
def _reduce_max(K, op, x):
    return _reduce(K, op, x, lambda lo, hi: less(K.P, lo, hi))


@kernel("reduce_min")
def _reduce_min(K, op, x):
    return _reduce(K, op, x, lambda lo, hi: less(K.P, hi, lo))


def _arg(K, op, x, pick_hi):
    ax = op.attrs["axis"]
    xs = _to_last(x, [ax])
    n = xs.shape[-1]
    idx = np.broadcast_to(np.arange(n, dtype=np.int64).astype(K.ring.dtype), xs.shape)
    _, index = tree_reduce_last(K.P, xs, pick_hi, index=idx)
    return index


@kernel("argmax")
def _argmax(K, op, x):
    return _arg(K, op, x, lambda lo, hi: less(K.P, lo, hi))


@kernel("argmin")
def _argmin(K, op, x):
    return _arg(K, op, x, lambda lo, hi: less(K.P, hi, lo))
