"""Kernels: constants, layout and indexing with public indices. All local: each
party applies the same numpy function to each piece of its share."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from .registry import kernel


#: What fixed-point constants beyond the representable range stand for (real value).
INFINITY_STAND_IN = 2.0 ** 30


def encode_value(ring, value: np.ndarray, dtype) -> np.ndarray:
    """Encode a natural constant for its IR dtype. Fixed-point constants beyond the
    representable range -- -inf, jnp.finfo(float32).min, -1e30: the masks of attention
    code, flax's among them -- become +-2^30 (or the range's edge in a smaller ring):
    far below any score, yet inside the domains of exp and the comparisons even after a
    max is subtracted (exp takes x > -4e9), so softmax(where(mask, x, -inf)) gives exact
    zeros. The range's edge (2^43 at k = 64) would make s - max(s) leave exp's domain."""
    if dtype.is_fxp:
        lim = ring.max_abs_real(dtype.frac) * 0.5
        v = value.astype(np.float64)
        big = ~(np.abs(v) <= lim)                     # beyond the range, inf, NaN
        if np.any(big):
            stand_in = min(INFINITY_STAND_IN, lim)
            v = np.where(big, np.where(v > 0, stand_in, -stand_in), v)
            v = np.where(np.isnan(value.astype(np.float64)), 0.0, v)
        return ring.encode(v, dtype.frac)
    return ring.encode_int(value.astype(np.int64) if dtype.is_int else value.astype(bool))


@kernel("constant")
def _constant(K, op):
    return encode_value(K.ring, op.attrs["value"], op.attrs["dtype"])


@kernel("iota")
def _iota(K, op):
    shape, dim = op.attrs["shape"], op.attrs["dim"]
    idx = np.arange(shape[dim]).reshape([-1 if i == dim else 1 for i in range(len(shape))])
    return encode_value(K.ring, np.broadcast_to(idx, shape).copy(), op.attrs["dtype"])


@kernel("reshape")
def _reshape(K, op, x):
    return B.map_local(x, lambda s: s.reshape(op.attrs["shape"]))


@kernel("transpose")
def _transpose(K, op, x):
    return B.map_local(x, lambda s: np.transpose(s, op.attrs["perm"]))


def _broadcast(s, shape, dims):
    expanded = s.reshape([s.shape[dims.index(i)] if i in dims else 1 for i in range(len(shape))])
    return np.broadcast_to(expanded, shape)


@kernel("broadcast")
def _broadcast_k(K, op, x):
    return B.map_local(x, lambda s: _broadcast(s, list(op.attrs["shape"]), list(op.attrs["dims"])))


@kernel("slice")
def _slice(K, op, x):
    a = op.attrs
    sl = tuple(slice(s, l, k) for s, l, k in zip(a["start"], a["limit"], a["strides"]))
    return B.map_local(x, lambda s: s[sl])


@kernel("concat")
def _concat(K, op, *xs):
    return B.zip_local(lambda *a: np.concatenate(a, axis=op.attrs["axis"]), xs, K.P)


@kernel("pad")
def _pad(K, op, x, v):
    a = op.attrs

    def pad(s, fill):
        out_shape = op.out.type.shape
        out = np.empty(out_shape, s.dtype)
        out[...] = fill
        sl = tuple(slice(lo, lo + (d - 1) * (it + 1) + 1 if d else lo, it + 1)
                   for lo, d, it in zip(a["low"], s.shape, a["interior"]))
        out[sl] = s
        return out
    return B.zip_local(pad, [x, v], K.P)


@kernel("rev")
def _rev(K, op, x):
    return B.map_local(x, lambda s: np.flip(s, axis=tuple(op.attrs["dims"])))


@kernel("cumsum")
def _cumsum(K, op, x):
    ax, rev = op.attrs["axis"], op.attrs["reverse"]

    def f(s):
        return np.flip(np.cumsum(np.flip(s, ax), axis=ax, dtype=s.dtype), ax) if rev \
            else np.cumsum(s, axis=ax, dtype=s.dtype)
    return B.map_local(x, f)


@kernel("reduce_sum")
def _reduce_sum(K, op, x):
    return B.map_local(x, lambda s: np.sum(s, axis=tuple(op.attrs["axes"]), dtype=s.dtype))


# ---- indexing with public indices: the index map is computed in plaintext -----------

def _index_map(operand_shape, fn):
    """Flat operand positions selected by an index function (jax gather semantics)."""
    import jax.numpy as jnp
    iota = jnp.arange(int(np.prod(operand_shape)), dtype=jnp.int32).reshape(operand_shape)
    return np.asarray(fn(iota))


def gather_positions(K, op, operand_shape, idx):
    import jax
    a = op.attrs
    dn = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(a["offset_dims"]), collapsed_slice_dims=tuple(a["collapsed_slice_dims"]),
        start_index_map=tuple(a["start_index_map"]),
        operand_batching_dims=tuple(a.get("operand_batching_dims", ())),
        start_indices_batching_dims=tuple(a.get("start_indices_batching_dims", ())))
    mode = "fill" if a["mode"] == "fill_or_drop" else "clip"
    idx = K.ring.decode_int(idx).astype(np.int32)
    return _index_map(operand_shape, lambda it: jax.lax.gather(
        it, idx, dn, tuple(a["slice_sizes"]), mode=mode, fill_value=-1))


@kernel("gather")
def _gather(K, op, x, idx):
    pos = gather_positions(K, op, op.inputs[0].type.shape, idx)
    valid = pos >= 0
    flat = np.where(valid, pos, 0)

    def take(s):
        out = s.reshape(-1)[flat]
        return out if valid.all() else np.where(valid, out, 0).astype(s.dtype)
    return B.map_local(x, take)


@kernel("scatter_add")
def scatter_add(K, op, x, idx, upd):
    a = op.attrs
    ushape = op.inputs[2].type.shape
    window = iter(a["update_window_dims"])
    skip = set(a["inserted_window_dims"]) | set(a.get("operand_batching_dims", []))
    sizes = [1 if d in skip else ushape[next(window)] for d in range(len(op.inputs[0].type.shape))]
    gop = type(op)(op.name, op.inputs, op.outputs, dict(
        offset_dims=a["update_window_dims"], collapsed_slice_dims=a["inserted_window_dims"],
        start_index_map=a["scatter_dims_to_operand_dims"],
        operand_batching_dims=a.get("operand_batching_dims", []),
        start_indices_batching_dims=a.get("scatter_indices_batching_dims", []),
        slice_sizes=sizes, mode=a["mode"]))
    pos = gather_positions(K, gop, op.inputs[0].type.shape, idx).reshape(-1)
    keep = pos >= 0

    def scatter(s, u):
        out = s.reshape(-1).copy()
        np.add.at(out, pos[keep], u.reshape(-1)[keep])
        return out.reshape(s.shape)
    return B.zip_local(scatter, [x, upd], K.P)


def clamped_starts(K, op, starts, shape, sizes):
    vals = [int(K.ring.decode_int(s)) for s in starts]
    return [min(max(v, 0), d - z) for v, d, z in zip(vals, shape, sizes)]


@kernel("dynamic_slice")
def _dynamic_slice(K, op, x, *starts):
    sizes = op.attrs["sizes"]
    st = clamped_starts(K, op, starts, op.inputs[0].type.shape, sizes)
    sl = tuple(slice(s, s + z) for s, z in zip(st, sizes))
    return B.map_local(x, lambda s: s[sl])


@kernel("dynamic_update_slice")
def _dynamic_update_slice(K, op, x, upd, *starts):
    sizes = op.inputs[1].type.shape
    st = clamped_starts(K, op, starts, op.inputs[0].type.shape, sizes)
    sl = tuple(slice(s, s + z) for s, z in zip(st, sizes))

    def put(s, u):
        out = s.copy()
        out[sl] = u
        return out
    return B.zip_local(put, [x, upd], K.P)
