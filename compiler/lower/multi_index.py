"""Indexing at secret positions along several axes, by the one-axis kernels.

The kernels (runtime/kernels/secret_index.py) read and write at a secret position along
ONE axis: a one-hot over that axis's candidates. User code indexes along several:
`log_probs[jnp.arange(n), labels]` (cross-entropy written by hand; one public and one
secret component), `table[i, j]`, `x.at[rows, cols].add(v)` and the gradients of these.
Each is rewritten here as jnp code on the equation's static shapes, lowered in its
place (every step an op with a rule of its own):

    gather   the indexed axes go first (public components, then secret ones); the
             public components index at once (a public gather, local); the secret ones
             are merged into one axis, flat = sum_t s_t stride_t (exact integer
             arithmetic), read by one one-axis secret gather (take_along_axis when
             public components made batch axes); then the batch and window axes are
             put where the gather's dimension numbers say.
    scatter-add  the adjoint of that gather (jax.vjp of it: public scatter-adds and one
             one-axis secret scatter-add).
    dynamic_slice / dynamic_update_slice with several secret starts: one slice per
             secret axis in turn, each clamped as JAX clamps its start.

Cost: one one-hot over the product of the secret axes' sizes per element (a label
gather over C classes: C, as take_along_axis); the public part is local. Modes as JAX:
clip clamps every component; fill reads 0 (the caller adds fill_value) when any
component is outside its axis, by comparisons on the secret components.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _components(L, idx) -> List:
    """The index vector's components as (..., 1) int Values: the operands of the
    concatenate jnp indexing builds (public ones stay public), else slices of idx."""
    op = L.producer(idx)
    nd = len(idx.type.shape)
    if op is not None and op.name == "concat" and op.attrs["axis"] == nd - 1 and \
            all(v.type.shape[-1] == 1 for v in op.inputs):
        return list(op.inputs)
    shape = list(idx.type.shape)
    return [L.emit("slice", [idx], start=[0] * (nd - 1) + [t], limit=shape[:-1] + [t + 1],
                   strides=[1] * nd) for t in range(shape[-1])]


def _window_layout(out, nb: int, window_positions: Sequence[int]):
    """out laid out (batch..., window...) -> the gather's layout: window axis t at
    output position window_positions[t], batch axes in order in the others."""
    n = out.ndim
    perm, b, w = [], 0, 0
    for p in range(n):
        if p in window_positions:
            perm.append(nb + list(window_positions).index(p))
        else:
            perm.append(b)
            b += 1
    return jnp.transpose(out, perm)


def _gather_fn(x_shape, axes, secret, window_positions, mode):
    """jnp code reading x at the index components (one per indexed axis, in the
    order of `axes`); `secret[t]` says which are secret."""
    rest = [d for d in range(len(x_shape)) if d not in axes]
    pub = [t for t in range(len(axes)) if not secret[t]]
    sec = [t for t in range(len(axes)) if secret[t]]
    sizes = [x_shape[axes[t]] for t in sec]
    N = int(np.prod(sizes))

    def fn(x, *comps):
        c = [ci[..., 0] for ci in comps]
        inside = [(ci >= 0) & (ci < x_shape[axes[t]]) for t, ci in enumerate(c)]
        if mode == "clip":
            c = [jnp.clip(ci, 0, x_shape[axes[t]] - 1) for t, ci in enumerate(c)]
        xt = jnp.transpose(x, [axes[t] for t in pub] + [axes[t] for t in sec] + rest)
        batch = np.broadcast_shapes(*(ci.shape for ci in c))
        flat = sum(c[t] * int(np.prod(sizes[k + 1:])) for k, t in enumerate(sec))
        if mode == "fill":
            ok = jnp.all(jnp.stack([jnp.broadcast_to(v, batch) for v in inside]), axis=0)
            flat = jnp.where(ok, flat, N)            # read 0: no candidate matches
        rest_shape = tuple(x_shape[d] for d in rest)
        nb = len(batch) if pub else 0       # public components make batch axes of g
        if pub:
            g = xt[tuple(jnp.clip(c[t], 0, x_shape[axes[t]] - 1) for t in pub)]
        g = (g if pub else xt).reshape(batch[:nb] + (N,) + rest_shape)
        out = _read_one_axis(g, jnp.broadcast_to(flat, batch), nb, mode)
        return _window_layout(out, len(batch), window_positions)
    return fn


def _read_one_axis(g, flat, nb: int, mode: str):
    """g[b..., flat[b...], rest...] (the first nb axes of g batch axes of flat): one
    lax.gather along one axis, without jnp's wrapping of negative indices (a secret
    comparison); out of bounds reads 0 (mode fill) or is promised away."""
    batch = flat.shape
    rest = g.shape[nb + 1:]
    dn = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(range(len(batch), len(batch) + len(rest))), collapsed_slice_dims=(nb,),
        start_index_map=(nb,), operand_batching_dims=tuple(range(nb)),
        start_indices_batching_dims=tuple(range(nb)))
    how = jax.lax.GatherScatterMode.FILL_OR_DROP if mode == "fill" else \
        jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS
    return jax.lax.gather(g, flat[..., None], dn, (1,) * (nb + 1) + rest, mode=how, fill_value=0)


def _simple(x_shape, axes, collapsed, slice_sizes, batching) -> bool:
    """jnp indexing's form: every indexed axis collapsed with size 1, the others whole."""
    return not batching and sorted(axes) == sorted(collapsed) and all(
        slice_sizes[d] == (1 if d in axes else x_shape[d]) for d in range(len(x_shape)))


def _inline(L, fn, dtypes, values):
    avals = [jax.ShapeDtypeStruct(tuple(v.type.shape), dt) for v, dt in zip(values, dtypes)]
    return L.inline(jax.make_jaxpr(fn)(*avals), values)[0]


def gather(L, eqn, x, idx, attrs) -> Optional[object]:
    """A gather at secret indices along several axes, or None if not of jnp's form."""
    axes = attrs["start_index_map"]
    if not _simple(x.type.shape, axes, attrs["collapsed_slice_dims"], attrs["slice_sizes"],
                   attrs["operand_batching_dims"]):
        return None
    comps = _components(L, idx)
    secret = [v.type.secret for v in comps]
    mode = {"clip": "clip", "fill_or_drop": "fill"}.get(attrs["mode"], "promise")
    fn = _gather_fn(tuple(x.type.shape), axes, secret, attrs["offset_dims"], mode)
    return _inline(L, fn, [eqn.invars[0].aval.dtype] + [np.int32] * len(comps), [x, *comps])


def _flat_scatter_fn(x_shape, axes, window_positions, mode):
    """jnp code adding u into x at the index components, all indexed axes merged into
    one (for integers, which jax.vjp does not transpose: an int 0/1 scatter of
    rules_scatter)."""
    rest = [d for d in range(len(x_shape)) if d not in axes]
    sizes = [x_shape[a] for a in axes]
    N = int(np.prod(sizes))

    def fn(x, u, *comps):
        c = [ci[..., 0] for ci in comps]
        if mode == "clip":
            c = [jnp.clip(ci, 0, sizes[t] - 1) for t, ci in enumerate(c)]
        flat = sum(ci * int(np.prod(sizes[t + 1:])) for t, ci in enumerate(c))
        if mode == "fill":
            ok = jnp.all(jnp.stack([(ci >= 0) & (ci < sizes[t]) for t, ci in enumerate(c)]), axis=0)
            flat = jnp.where(ok, flat, N)
        nb = flat.ndim
        perm = [p for p in range(u.ndim) if p not in window_positions] + list(window_positions)
        xt = jnp.transpose(x, list(axes) + rest)
        rest_shape = xt.shape[len(axes):]
        dn = jax.lax.ScatterDimensionNumbers(
            update_window_dims=tuple(range(nb, nb + len(rest_shape))), inserted_window_dims=(0,),
            scatter_dims_to_operand_dims=(0,))
        added = jax.lax.scatter_add(xt.reshape((N,) + rest_shape), flat[..., None],
                                    jnp.transpose(u, perm), dn,
                                    mode=jax.lax.GatherScatterMode.FILL_OR_DROP)
        back = np.argsort(list(axes) + rest)
        return jnp.transpose(added.reshape(xt.shape), back)
    return fn


def scatter_add(L, x, idx, upd, dn, mode) -> Optional[object]:
    """A scatter-add at secret indices along several axes (the gradient of such a
    gather): x plus the adjoint of the gather applied to upd; else None."""
    axes = list(dn.scatter_dims_to_operand_dims)
    shape = tuple(x.type.shape)
    if not _simple(
            shape, axes, list(dn.inserted_window_dims),
            [1 if d in axes else shape[d] for d in range(len(shape))], list(dn.operand_batching_dims)):
        return None
    rest = [d for d in range(len(shape)) if d not in axes]
    if [upd.type.shape[p] for p in dn.update_window_dims] != [shape[d] for d in rest]:
        return None                      # windows smaller than the axes: not jnp's form
    comps = _components(L, idx)
    mode = {"clip": "clip", "fill_or_drop": "fill"}.get(mode, "promise")
    if not (x.type.dtype.is_fxp or upd.type.dtype.is_fxp):
        fn = _flat_scatter_fn(shape, axes, list(dn.update_window_dims), mode)
        return _inline(L, fn, [np.int32, np.int32] + [np.int32] * len(comps), [x, upd, *comps])
    read = _gather_fn(shape, axes, [v.type.secret for v in comps], list(dn.update_window_dims), mode)

    def fn(x, u, *c):
        _, adjoint = jax.vjp(lambda z: read(z, *c), jnp.zeros_like(x))
        return x + adjoint(u)[0]
    return _inline(L, fn, [np.float32, np.float32] + [np.int32] * len(comps), [x, L.as_fxp(upd), *comps])


def dynamic_slice(L, eqn, x, starts, sizes):
    """lax.dynamic_slice with several secret starts: public starts first, then one secret
    axis at a time (each start clamped to [0, n - size], as JAX clamps it)."""
    secret = [s.type.secret for s in starts]

    def fn(x, *st):
        full = list(x.shape)
        y = jax.lax.dynamic_slice(x, [0 if secret[d] else st[d] for d in range(x.ndim)],
                                  [full[d] if secret[d] else sizes[d] for d in range(x.ndim)])
        for a in (d for d in range(x.ndim) if secret[d]):
            y = jax.lax.dynamic_slice_in_dim(y, st[a], sizes[a], axis=a)
        return y
    return _inline(L, fn, [eqn.invars[0].aval.dtype] + [v.aval.dtype for v in eqn.invars[1:]],
                   [x, *starts])


def dynamic_update_slice(L, eqn, x, upd, starts):
    """lax.dynamic_update_slice with several secret starts: the slab of x along the first
    secret axis (clamped as JAX clamps that start), updated at the other starts, written
    back at the first."""
    secret = [s.type.secret for s in starts]

    def dus(x, u, st, axes):
        if len(axes) <= 1:
            return jax.lax.dynamic_update_slice(x, u, st)
        a = axes[0]
        at = [st[d] if d == a else 0 for d in range(x.ndim)]
        slab = jax.lax.dynamic_slice(x, at, [u.shape[d] if d == a else x.shape[d] for d in range(x.ndim)])
        slab = dus(slab, u, [0 if d == a else st[d] for d in range(x.ndim)], axes[1:])
        return jax.lax.dynamic_update_slice(x, slab, at)

    def fn(x, u, *st):
        return dus(x, u, list(st), [d for d in range(x.ndim) if secret[d]])
    dts = [v.aval.dtype for v in eqn.invars]
    return _inline(L, fn, dts, [x, upd, *starts])
