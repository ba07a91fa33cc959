"""Lowering rules: scatter with set / mul / min / max (x.at[i].set(v), .multiply(v),
.min(v), .max(v)), built from scatter_add (public or secret indices, rules_shape) and
0/1 weights, so they need no kernel of their own.

For updates landing on distinct positions:
    S = scatter_add(0, idx, upd)     each written position's update, 0 elsewhere
    H = scatter_add(0, idx, 1)       1 where a position is written, else 0 (an int)
    out = x + H (combine(x, S) - x)  combine: S (set), x S (mul), max(x, S), min(x, S)
H is public for public indices (local work); for secret indices it comes from the
one-hot method of scatter_add_secret_index, and H (...) is one product of an int by a
value (no truncation). Cost beyond scatter_add: mul one product (+ truncation), min /
max one comparison, over the whole operand.

Duplicate positions: with indices known when compiling, the updates are split into
ranks (the r-th update aimed at each position), one step per rank, in order: set keeps
the last one (as JAX does on CPU), mul / min / max combine them all. Indices known only
at run time must be one index or promised unique (JAX's unique_indices); anything else
is a CompileError.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .context import CompileError, rule
from .rules_shape import scatter_add

_COMBINE = {"scatter": "set", "scatter-mul": "mul", "scatter_mul": "mul",
            "scatter-min": "min", "scatter_min": "min", "scatter-max": "max", "scatter_max": "max"}


def _positions(params, operand_shape, upd_shape, idx):
    """Flat operand position of each update element (-1: dropped), from a gather of an
    iota with the scatter's dimension numbers."""
    dn = params["dimension_numbers"]
    window = iter(dn.update_window_dims)
    skip = set(dn.inserted_window_dims) | set(dn.operand_batching_dims)
    sizes = tuple(1 if d in skip else upd_shape[next(window)] for d in range(len(operand_shape)))
    gdn = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(dn.update_window_dims), collapsed_slice_dims=tuple(dn.inserted_window_dims),
        start_index_map=tuple(dn.scatter_dims_to_operand_dims),
        operand_batching_dims=tuple(dn.operand_batching_dims),
        start_indices_batching_dims=tuple(dn.scatter_indices_batching_dims))
    mode = "fill" if "FILL" in str(params["mode"]).upper() else "clip"
    iota = jnp.arange(int(np.prod(operand_shape)), dtype=jnp.int32).reshape(operand_shape)
    pos = jax.lax.gather(iota, jnp.asarray(idx, jnp.int32), gdn, sizes, mode=mode, fill_value=-1)
    return np.asarray(pos).reshape(upd_shape)


def _ranks(pos):
    """rank[i]: how many earlier updates aim at the same position (-1: dropped)."""
    flat, seen = pos.reshape(-1), {}
    rank = np.full(flat.shape, -1)
    for i, p in enumerate(flat):
        if p >= 0:
            rank[i] = seen.get(p, 0)
            seen[p] = rank[i] + 1
    return rank.reshape(pos.shape)


def _combine(L, how, x, s):
    """combine(x, s) at a common scale."""
    if how == "mul":
        return L.fmul(x, s)
    if x.type.dtype.is_fxp or s.type.dtype.is_fxp:
        x, s = L.as_fxp(x), L.as_fxp(s)
        frac = L.common_frac([x, s])
        x, s = L.to_frac(x, frac), L.to_frac(s, frac)
    if how == "set":
        return s
    s_wins = L.emit("less", [x, s] if how == "max" else [s, x])
    return L.emit("select", [s_wins, s, x])


def _step(L, params, how, x, idx, upd, written):
    """x + H (combine(x, S) - x) for one rank of distinct positions; `written` is H as a
    numpy 0/1 array when it is known when compiling, else None (computed by scatter_add)."""
    shape = x.type.shape
    s = scatter_add(L, params, L.const(0, x.type.dtype, shape), idx, upd)
    if written is None:
        written = scatter_add(L, params, L.const(0, L.opt.int, shape), idx,
                              L.const(1, L.opt.int, upd.type.shape))
    elif not written.any():
        return x
    else:
        written = L.const(written.astype(np.int64), L.opt.int)
    new = _combine(L, how, x, s)
    x = L.to_frac(L.as_fxp(x), new.type.dtype.frac) if new.type.dtype.is_fxp else x
    return L.emit("add", [x, L.emit("mul", [written, L.emit("sub", [new, x])])])


def _distinct_rows(L, idx) -> bool:
    """Whether one component of the index vectors is known when compiling and distinct
    for every update (`x.at[jnp.arange(n), labels].set(v)`: one update per row), so
    the positions are distinct whatever the secret components are."""
    op = L.producer(idx)
    if op is None or op.name != "concat" or op.attrs["axis"] != len(idx.type.shape) - 1:
        return False
    for part in op.inputs:
        known = L.const_value(part)
        if known is not None and part.type.shape[-1] == 1:
            rows = np.broadcast_to(known, part.type.shape).reshape(-1)
            if len(np.unique(rows)) == rows.size:
                return True
    return False


@rule(*_COMBINE)
def _scatter(L, eqn, x, idx, upd):
    how, params = _COMBINE[eqn.primitive.name], eqn.params
    if x.type.dtype.is_bool or upd.type.dtype.is_bool:
        # as 0/1 integers (set keeps 0/1; mul is and, max or, min and), then != 0: one
        # equality beyond the int scatter (jnp.unique(size=...) scatters a bool mask)
        as_int = lambda v: L.emit("convert", [v], to=L.opt.int) if v.type.dtype.is_bool else v
        out = _scatter_ints(L, eqn, how, params, as_int(x), idx, as_int(upd))
        return L.emit("not", [L.emit("eq", [out, L.const(0, out.type.dtype, out.type.shape)])])
    return _scatter_ints(L, eqn, how, params, x, idx, upd)


def _scatter_ints(L, eqn, how, params, x, idx, upd):
    known = L.known_value(eqn.invars[1])
    if known is None:
        n_indices = int(np.prod(idx.type.shape[:-1])) if idx.type.shape else 1
        if n_indices != 1 and not params.get("unique_indices", False) and not _distinct_rows(L, idx):
            raise CompileError(f"`{eqn.primitive.name}` (x.at[idx].{how}) with several indices not "
                               f"known when compiling: duplicates cannot be ordered; promise distinct "
                               f"indices (x.at[idx].{how}(v, unique_indices=True)), use indices fixed "
                               f"in the program, or one index per update")
        return _step(L, params, how, x, idx, upd, None)
    pos = _positions(params, x.type.shape, upd.type.shape, known)
    rank = _ranks(pos)
    out = x
    for r in range(int(rank.max()) + 1):
        mask = rank == r
        written = np.zeros(int(np.prod(x.type.shape)), np.int64)
        written[pos[mask]] = 1
        u = upd if mask.all() else L.emit("mul", [L.const(mask.astype(np.int64), L.opt.int), upd])
        out = _step(L, params, how, out, idx, u, written.reshape(x.type.shape))
    return out
