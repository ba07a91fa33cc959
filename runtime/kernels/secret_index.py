"""Kernels: reading and writing at secret positions along one axis.

The position becomes a one-hot over the axis's candidates, which weights every
candidate result computed at public positions (local):
    out = sum_j [pos == j] * result_at(j)
  gather / scatter-add (t[idx], take_along_axis, their gradients): [idx == j] by one
      batched equality over A candidates; an index outside [0, A) selects nothing.
  dynamic_slice / dynamic_update_slice (x[i], lax.dynamic_slice with a secret start):
      JAX clamps the start to [0, M]; [start >= s] for s = 1..M (one batched
      comparison) gives the clamped one-hot as differences, no equality needed.
Cost: the comparisons above plus one product of the one-hot with the stacked candidates
(0/1 weights: no truncation); memory: one candidate result per position.
"""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.compare import equal, less
from .layout import clamped_starts, gather_positions, scatter_add
from .registry import kernel


def _at_elements(s, A, window_dims, shape):
    """A copies of each element's index (s: an index array, its last axis the index
    vector) laid out like the gathered / scattered elements: `window_dims` of `shape`
    are the slice's own axes, the others follow the indices."""
    s = s[..., 0]
    for d in sorted(window_dims):
        s = np.expand_dims(s, d)
    return np.broadcast_to(s[None], (A,) + tuple(shape))


def _candidates(K, A, shape):
    js = np.arange(A).reshape((A,) + (1,) * len(shape)).astype(K.ring.dtype)
    return np.broadcast_to(js, (A,) + tuple(shape))


@kernel("gather_secret_index")
def _gather_secret_index(K, op, x, idx):
    """x[idx] for secret indices along one axis of size A: every candidate slice
    x[j] (public positions, local) weighted by [idx == j] (one batched equality over A
    copies of the indices), summed. An index outside [0, A) selects nothing: 0.
    Cost: A |idx| comparisons, A |out| products (0/1 weights: no truncation)."""
    a = op.attrs
    A = op.inputs[0].type.shape[a["start_index_map"][0]]
    out_shape = tuple(a["shape"])
    onehot = equal(K.P, B.map_local(idx, lambda s: _at_elements(s, A, a["offset_dims"], out_shape)),
                   _candidates(K, A, out_shape))
    ishape = op.inputs[1].type.shape
    slices = []
    for j in range(A):
        pos = gather_positions(K, op, op.inputs[0].type.shape,
                                K.ring.encode_int(np.full(ishape, j, np.int64)))
        slices.append(B.map_local(x, lambda s, p=pos: s.reshape(-1)[p]))
    cand = B.zip_local(lambda *a_: np.stack(a_), slices, K.P)
    return B.map_local(B.mul(K.P, onehot, cand), lambda s: s.sum(axis=0, dtype=s.dtype))


@kernel("scatter_add_secret_index")
def _scatter_add_secret_index(K, op, x, idx, upd):
    """x with upd added at secret indices along one axis of size A (the adjoint of
    gather_secret_index): upd weighted by [idx == j] (one batched equality, one product)
    is added at the public positions of index j, for every j. Cost as the gather."""
    a = op.attrs
    A = op.inputs[0].type.shape[a["scatter_dims_to_operand_dims"][0]]
    ushape = op.inputs[2].type.shape
    onehot = equal(K.P, B.map_local(idx, lambda s: _at_elements(s, A, a["update_window_dims"], ushape)),
                   _candidates(K, A, ushape))
    ups = B.map_local(upd, lambda s: np.broadcast_to(s[None], (A,) + s.shape))
    c = B.mul(K.P, onehot, ups)
    ishape = op.inputs[1].type.shape
    out = x
    for j in range(A):
        out = scatter_add(K, op, out, K.ring.encode_int(np.full(ishape, j, np.int64)),
                           B.map_local(c, lambda s, j=j: s[j]))
    return out


def _clamped_onehot(K, start, M: int):
    """[clamp(start, 0, M) == s] for s = 0..M, shape (M + 1,): differences of the
    monotone [start >= s] (one batched comparison of M values)."""
    if M == 0:
        return np.ones(1, K.ring.dtype)
    ss = np.arange(1, M + 1).astype(K.ring.dtype)
    starts = B.map_local(start, lambda s: np.broadcast_to(np.reshape(s, ()), (M,)))
    ge = B.sub(K.P, np.ones(M, K.ring.dtype), less(K.P, starts, ss))   # [start >= s], s = 1..M
    cat = lambda xs: B.zip_local(lambda *a: np.concatenate(a), xs, K.P)
    lo = cat([np.ones(1, K.ring.dtype), ge])             # [start >= s] for s = 0..M
    hi = cat([ge, np.zeros(1, K.ring.dtype)])            # [start >= s] for s = 1..M+1
    return B.sub(K.P, lo, hi)


def _secret_axis(starts):
    return next(d for d, s in enumerate(starts) if B.is_secret(s))   # one (the type rule)


def _weighted_sum(K, onehot, cands):
    stacked = B.zip_local(lambda *a: np.stack(a), cands, K.P)
    shape = stacked.shape
    w = B.map_local(onehot, lambda s: np.broadcast_to(s.reshape((-1,) + (1,) * (len(shape) - 1)), shape))
    return B.map_local(B.mul(K.P, w, stacked), lambda s: s.sum(axis=0, dtype=s.dtype))


def _candidate_slices(K, op, starts, shape, sizes):
    d = _secret_axis(starts)
    public = [np.asarray(0, K.ring.dtype) if B.is_secret(s) else s for s in starts]
    base = clamped_starts(K, op, public, shape, sizes)
    out = []
    for s in range(shape[d] - sizes[d] + 1):
        st = list(base)
        st[d] = s
        out.append(tuple(slice(a, a + z) for a, z in zip(st, sizes)))
    return d, out


@kernel("dynamic_slice_secret_start")
def _dynamic_slice_secret_start(K, op, x, *starts):
    sizes, shape = op.attrs["sizes"], op.inputs[0].type.shape
    d, slices = _candidate_slices(K, op, starts, shape, sizes)
    cands = [B.map_local(x, lambda v, sl=sl: v[sl]) for sl in slices]
    return _weighted_sum(K, _clamped_onehot(K, starts[d], len(slices) - 1), cands)


@kernel("dynamic_update_slice_secret_start")
def _dynamic_update_slice_secret_start(K, op, x, upd, *starts):
    sizes, shape = op.inputs[1].type.shape, op.inputs[0].type.shape
    d, slices = _candidate_slices(K, op, starts, shape, sizes)

    def put(v, u, sl):
        out = v.copy()
        out[sl] = u
        return out
    cands = [B.zip_local(lambda v, u, sl=sl: put(v, u, sl), [x, upd], K.P) for sl in slices]
    return _weighted_sum(K, _clamped_onehot(K, starts[d], len(slices) - 1), cands)
