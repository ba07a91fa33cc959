"""Lowering rules: layout (reshape, transpose, broadcast, slices, padding) and
indexing with public indices (gather, scatter-add, dynamic slices)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import multi_index
from .context import CompileError, rule


def _ints(xs):
    return [int(x) for x in xs]


@rule("reshape")
def _reshape(L, eqn, x, *dyn):
    if dyn:
        raise CompileError("reshape with dynamic shape")
    perm = eqn.params.get("dimensions")
    if perm is not None and list(perm) != list(range(len(perm))):   # transpose, then reshape
        x = L.emit("transpose", [x], perm=_ints(perm))
    return L.emit("reshape", [x], shape=_ints(eqn.params["new_sizes"]))


@rule("squeeze")
def _squeeze(L, eqn, x):
    return L.emit("reshape", [x], shape=_ints(eqn.outvars[0].aval.shape))


@rule("expand_dims")
def _expand_dims(L, eqn, x):
    return L.emit("reshape", [x], shape=_ints(eqn.outvars[0].aval.shape))


@rule("transpose")
def _transpose(L, eqn, x):
    return L.emit("transpose", [x], perm=_ints(eqn.params["permutation"]))


@rule("broadcast_in_dim")
def _broadcast_in_dim(L, eqn, x, *dyn):
    shape = _ints(eqn.params["shape"])
    dims = _ints(eqn.params["broadcast_dimensions"])
    if list(x.type.shape) == shape:
        return x
    return L.emit("broadcast", [x], shape=shape, dims=dims)


@rule("concatenate")
def _concatenate(L, eqn, *xs):
    if any(x.type.dtype.is_fxp for x in xs):
        xs = [L.as_fxp(x) for x in xs]
        frac = L.common_frac(xs)
        xs = [L.to_frac(x, frac) for x in xs]
    return L.emit("concat", list(xs), axis=int(eqn.params["dimension"]))


@rule("slice")
def _slice(L, eqn, x):
    p = eqn.params
    strides = _ints(p["strides"]) if p["strides"] is not None else [1] * len(x.type.shape)
    return L.emit("slice", [x], start=_ints(p["start_indices"]), limit=_ints(p["limit_indices"]),
                  strides=strides)


@rule("split")
def _split(L, eqn, x):
    axis, outs, start = int(eqn.params["axis"]), [], 0
    for size in _ints(eqn.params["sizes"]):
        lo = [0] * len(x.type.shape)
        hi = list(x.type.shape)
        lo[axis], hi[axis] = start, start + size
        outs.append(L.emit("slice", [x], start=lo, limit=hi, strides=[1] * len(lo)))
        start += size
    return outs


@rule("pad")
def _pad(L, eqn, x, value):
    if x.type.dtype.is_fxp:
        value = L.to_frac(L.as_fxp(value), x.type.dtype.frac)
    cfg = [tuple(int(c) for c in t) for t in eqn.params["padding_config"]]
    low = [max(lo, 0) for lo, _, _ in cfg]
    high = [max(hi, 0) for _, hi, _ in cfg]
    out = L.emit("pad", [x, value], low=low, high=high, interior=[it for _, _, it in cfg])
    if any(lo < 0 or hi < 0 for lo, hi, _ in cfg):  # negative padding crops
        shape = out.type.shape
        start = [-min(lo, 0) for lo, _, _ in cfg]
        limit = [d + min(hi, 0) for d, (_, hi, _) in zip(shape, cfg)]
        out = L.emit("slice", [out], start=start, limit=limit, strides=[1] * len(shape))
    return out


@rule("rev")
def _rev(L, eqn, x):
    return L.emit("rev", [x], dims=_ints(eqn.params["dimensions"]))


@rule("iota")
def _iota(L, eqn):
    p = eqn.params
    return L.emit("iota", [], shape=_ints(p["shape"]), dim=int(p["dimension"]),
                  dtype=L.dtype_of(eqn.outvars[0].aval))


def _gather_attrs(dn, slice_sizes=None):
    return dict(offset_dims=_ints(dn.offset_dims), collapsed_slice_dims=_ints(dn.collapsed_slice_dims),
                start_index_map=_ints(dn.start_index_map),
                operand_batching_dims=_ints(dn.operand_batching_dims),
                start_indices_batching_dims=_ints(dn.start_indices_batching_dims))


def _mode(p):
    return str(p["mode"]).split(".")[-1].lower()


@rule("gather")
def _gather(L, eqn, x, idx):
    p = eqn.params
    attrs = dict(_gather_attrs(p["dimension_numbers"]), slice_sizes=_ints(p["slice_sizes"]),
                 mode=_mode(p), shape=_ints(eqn.outvars[0].aval.shape))
    fill = _fill_value(eqn) if attrs["mode"] == "fill_or_drop" else 0
    if isinstance(fill, float) and np.isnan(fill):
        _no_nan_fill(L, eqn, x, idx)
        fill = 0
    if fill != 0:          # the kernels read 0 out of bounds: add the fill there
        return L.inline_fn(functools.partial(_filled, eqn=eqn, fill=fill), eqn, [x, idx])
    if not idx.type.secret:
        return L.emit("gather", [x, idx], **attrs)
    axes = attrs["start_index_map"]
    if len(axes) != 1 or attrs["slice_sizes"][axes[0]] != 1:
        out = multi_index.gather(L, eqn, x, idx, attrs)     # x[rows, labels], x[i, j]
        if out is None:
            raise CompileError("gather with secret indices is supported along one axis, one "
                               "element at a time (x[i], take_along_axis) and along several as "
                               "jnp indexing writes it (x[i, j]); make the indices public for "
                               "other forms")
        return out
    if attrs["mode"] == "clip":       # jnp.take(mode="clip")
        idx = _clamped(L, idx, x.type.shape[axes[0]])
    return L.emit("gather_secret_index", [x, idx], **attrs)


def _clamped(L, idx, n: int):
    """Secret indices along an axis of n clamped to [0, n - 1], as JAX's mode clip does
    (the one-hot kernels select nothing out of bounds): two batched comparisons."""
    hi = L.const(n - 1, idx.type.dtype, idx.type.shape)
    zero = L.const(0, idx.type.dtype, idx.type.shape)
    idx = L.emit("select", [L.emit("less", [idx, zero]), zero, idx])
    return L.emit("select", [L.emit("less", [hi, idx]), hi, idx])


def _fill_value(eqn):
    """What JAX's gather gives out of bounds in mode fill (jnp.take's default,
    `.at[i].get(mode="fill")`): fill_value, else NaN for floats, the most negative
    integer, the largest unsigned one, True for bools."""
    v, dt = eqn.params.get("fill_value"), np.dtype(eqn.outvars[0].aval.dtype)
    if v is not None:
        return v
    if np.issubdtype(dt, np.floating):
        return np.nan
    if dt == np.bool_:
        return True
    return np.iinfo(dt).min if np.issubdtype(dt, np.signedinteger) else np.iinfo(dt).max


def _no_nan_fill(L, eqn, x, idx):
    """Float JAX reads NaN out of bounds in mode fill with no fill_value; fixed point
    has no NaN. Indices fixed in the program are checked here (a CompileError if one is
    out of bounds); indices known only at run time are promised in bounds (0 outside)."""
    known = L.const_value(idx)
    if known is None:
        return
    p = dict(eqn.params, fill_value=-1)
    iota = np.arange(int(np.prod(x.type.shape)), dtype=np.int32).reshape(x.type.shape)
    known = np.broadcast_to(np.asarray(known, np.int32), idx.type.shape)   # a scalar stays one
    pos = jax.lax.gather(iota, known, **p)
    if (np.asarray(pos) < 0).any():
        raise CompileError("indices out of bounds in gather mode 'fill' without a fill_value "
                           "(jnp.take's default, .at[i].get(mode='fill')): float JAX gives NaN, "
                           "which fixed point cannot hold; pass fill_value=... or mode='clip'")


def _filled(x, idx, eqn, fill):
    """The gather with 0 out of bounds (the kernels'), plus `fill` where a 0/1 gather
    of ones reads 0: public indices keep it local, secret ones cost the second gather."""
    p = dict(eqn.params, fill_value=None)
    got = jax.lax.gather(x, idx, **{**p, "fill_value": 0})
    inside = jax.lax.gather(jnp.ones(x.shape, jnp.int32), idx, **{**p, "fill_value": 0})
    if x.dtype == jnp.bool_:
        return got | (inside == 0)
    return got + (1 - inside).astype(x.dtype) * jnp.asarray(fill, x.dtype)


@rule("scatter-add", "scatter_add")
def _scatter_add(L, eqn, x, idx, upd):
    return scatter_add(L, eqn.params, x, idx, upd)


def scatter_add(L, params, x, idx, upd):
    """x with upd added at idx (jax scatter `params`); secret indices along one axis."""
    dn = params["dimension_numbers"]
    op = "scatter_add"
    if idx.type.secret:           # the gradient of a gather at secret indices
        axes = _ints(dn.scatter_dims_to_operand_dims)
        if len(axes) != 1 or axes[0] not in _ints(dn.inserted_window_dims):
            out = multi_index.scatter_add(L, x, idx, upd, dn, _mode(params))
            if out is None:
                raise CompileError("scatter with secret indices is supported along one axis, "
                                   "one element at a time (the gradient of x[i]) and along "
                                   "several on floats as jnp indexing writes it "
                                   "(x.at[i, j].add(v)); make the indices public for other forms")
            return out
        op = "scatter_add_secret_index"
        if _mode(params) == "clip":
            idx = _clamped(L, idx, x.type.shape[axes[0]])
    x2, upd2 = x, upd
    if x.type.dtype.is_fxp or upd.type.dtype.is_fxp:
        x2, upd2 = L.as_fxp(x), L.as_fxp(upd)
        frac = L.common_frac([x2, upd2])
        x2, upd2 = L.to_frac(x2, frac), L.to_frac(upd2, frac)
    return L.emit(op, [x2, idx, upd2],
                  update_window_dims=_ints(dn.update_window_dims),
                  inserted_window_dims=_ints(dn.inserted_window_dims),
                  scatter_dims_to_operand_dims=_ints(dn.scatter_dims_to_operand_dims),
                  operand_batching_dims=_ints(dn.operand_batching_dims),
                  scatter_indices_batching_dims=_ints(dn.scatter_indices_batching_dims),
                  mode=_mode(params))


@rule("dynamic_slice")
def _dynamic_slice(L, eqn, x, *starts):
    sizes = _ints(eqn.params["slice_sizes"])
    if sum(s.type.secret for s in starts) > 1:          # x[i, j] with secret i and j
        return multi_index.dynamic_slice(L, eqn, x, list(starts), sizes)
    return L.emit(_start_kind("dynamic_slice", starts), [x, *starts], sizes=sizes)


def _start_kind(op: str, starts) -> str:
    """op, or its secret-start form (runtime/kernels/secret_index.py) for one secret start."""
    return f"{op}_secret_start" if any(s.type.secret for s in starts) else op


@rule("dynamic_update_slice")
def _dynamic_update_slice(L, eqn, x, upd, *starts):
    if sum(s.type.secret for s in starts) > 1:
        return multi_index.dynamic_update_slice(L, eqn, x, upd, list(starts))
    kind = _start_kind("dynamic_update_slice", starts)
    if x.type.dtype.is_fxp:
        upd = L.to_frac(L.as_fxp(upd), x.type.dtype.frac)
    return L.emit(kind, [x, upd, *starts])


@rule("cumsum")
def _cumsum(L, eqn, x):
    return L.emit("cumsum", [x], axis=int(eqn.params["axis"]), reverse=bool(eqn.params["reverse"]))
