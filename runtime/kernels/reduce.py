"""Kernels: max/min reductions and argmax/argmin (tournament trees over compare), sort."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.compare import less, tree_reduce_last
from ..fxp.sort import sort_last
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


@kernel("sort")
def _sort(K, op, *xs):
    """A public key: its permutation (stable; descending: earlier index first among ties,
    like top_k) applied locally to every operand. A secret key: the bitonic network of
    runtime/fxp/sort.py."""
    axis, desc = op.attrs["axis"], op.attrs.get("descending", False)
    last = lambda x: B.map_local(x, lambda s: np.moveaxis(s, axis, -1))
    back = lambda x: B.map_local(x, lambda s: np.moveaxis(s, -1, axis))
    key, rest = last(xs[0]), [last(x) for x in xs[1:]]
    if B.is_secret(key):
        return [back(v) for v in sort_last(K.P, key, rest, desc)]
    sk = K.ring.decode_int(np.asarray(key))       # signed: the order of the values
    perm = np.argsort(-sk if desc else sk, axis=-1, kind="stable")
    permute = lambda s: np.take_along_axis(np.broadcast_to(s, perm.shape), perm, -1)
    return [back(B.map_local(v, permute)) for v in [key] + rest]
