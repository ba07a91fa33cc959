"""Kernels: convolution and windowed reductions (pooling).

Both start from the same local step, `window_patches`: every output position's window
of (dilated, padded) input elements, gathered along a new last axis. It is a fixed
rearrangement of the array, so each party applies it to each piece of its share.
  conv:          patches (N, C, out..., K) . kernel (O, C, K) -> one dot (ring matmul),
                 then the output layout; with its truncation, the fused dot_trunc.
                 Cost: that of one dot of N*out rows; memory K times the input.
  reduce_window: sum: local. max / min: a tournament over the last axis (log2(K)
                 comparison levels); padding stands for -/+2^30 (a public offset).
  select_and_scatter_add (max_pool's gradient): the tournament's index, one batched
                 equality for its one-hot, one product with the source, a local scatter.
"""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.compare import equal, less, tree_reduce_last
from .layout import INFINITY_STAND_IN, encode_value
from .registry import kernel


def window_patches(a: np.ndarray, window, strides, padding, base_dilation, window_dilation,
                   pad_value=0) -> np.ndarray:
    """out_shape + (prod(window),): for each output position the window's elements, the
    window offsets in C order. Padding (negative: cropping) after base dilation, whose
    holes hold pad_value too, as in XLA's reduce_window / conv_general_dilated."""
    if any(d > 1 for d in base_dilation):
        shape = tuple((s - 1) * d + 1 if s else 0 for s, d in zip(a.shape, base_dilation))
        b = np.full(shape, pad_value, a.dtype)
        b[tuple(slice(None, None, d) for d in base_dilation)] = a
        a = b
    a = np.pad(a, [(max(lo, 0), max(hi, 0)) for lo, hi in padding], constant_values=pad_value)
    a = a[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(padding, a.shape))]
    eff = [(w - 1) * d + 1 for w, d in zip(window, window_dilation)]
    out = [max(0, (n - e) // s + 1) for n, e, s in zip(a.shape, eff, strides)]
    cols = []
    for off in np.ndindex(*window):
        cols.append(a[tuple(slice(o * d, o * d + (m - 1) * s + 1, s) if m else slice(0, 0)
                            for o, d, m, s in zip(off, window_dilation, out, strides))])
    return np.stack(cols, axis=-1)


def _conv_parts(op, x, w):
    """(patches, kernel matrix, dot dims, finish): conv = finish(dot(patches, kernel)).
    Feature groups (depthwise convolutions) and batch groups (their kernel gradients)
    become a batch dimension of the dot: group g of the input features (or of the batch)
    meets group g of the output features."""
    a = op.attrs
    d = len(a["window_strides"])
    lhs_spec, rhs_spec, out_spec = a["lhs_spec"], a["rhs_spec"], a["out_spec"]
    ksize = [w.shape[i] for i in rhs_spec[2:]]
    F, Bg = a.get("feature_group_count", 1), a.get("batch_group_count", 1)

    def patches(s):                                   # (N, C, out..., K)
        s = np.transpose(s, lhs_spec)
        p = window_patches(s, [1, 1] + ksize, [1, 1] + list(a["window_strides"]),
                           [[0, 0], [0, 0]] + [list(q) for q in a["padding"]],
                           [1, 1] + list(a["lhs_dilation"]), [1, 1] + list(a["rhs_dilation"]))
        n, c = p.shape[:2]
        if F > 1:                                     # (N, F, C/F, out..., K)
            return p.reshape((n, F, c // F) + p.shape[2:])
        if Bg > 1:                                    # (Bg, N/Bg, C, out..., K)
            return p.reshape((Bg, n // Bg) + p.shape[1:])
        return p

    def kernel_matrix(s):                             # (O, C, K), grouped: (G, O/G, C, K)
        s = np.transpose(s, rhs_spec)
        m = np.ascontiguousarray(s).reshape(s.shape[0], s.shape[1], -1)
        G = max(F, Bg)
        return m.reshape((G, m.shape[0] // G) + m.shape[1:]) if G > 1 else m
    if F > 1:       # dot gives (F, N, out..., O/F)
        dims = ([2, d + 3], [2, 3], [1], [0])
        group = lambda s: np.moveaxis(s, 0, -2).reshape(s.shape[1:-1] + (-1,))
    elif Bg > 1:    # dot gives (Bg, N/Bg, out..., O/Bg)
        dims = ([2, d + 3], [2, 3], [0], [0])
        group = lambda s: np.moveaxis(s, 0, -2).reshape(s.shape[1:-1] + (-1,))
    else:           # dot gives (N, out..., O)
        dims = ([1, d + 2], [1, 2], [], [])
        group = lambda s: s
    perm = [0] * (d + 2)
    for logical, axis in enumerate(out_spec):         # logical: N, O, spatial...
        perm[axis] = {0: 0, 1: d + 1}.get(logical, logical - 1)
    finish = lambda v: B.map_local(v, lambda s: np.transpose(group(s), perm))
    return B.map_local(x, patches), B.map_local(w, kernel_matrix), dims, finish


@kernel("conv")
def _conv(K, op, x, w):
    px, wm, dims, finish = _conv_parts(op, x, w)
    return finish(B.dot(K.P, px, wm, dims))


@kernel("conv_trunc")
def _conv_trunc(K, op, x, w):
    px, wm, dims, finish = _conv_parts(op, x, w)
    if B.is_secret(px) and B.is_secret(wm):
        return finish(K.P.dot_trunc(px, wm, dims, op.attrs["bits"]))
    return finish(B.trunc(K.P, B.dot(K.P, px, wm, dims), op.attrs["bits"]))


def _window_extreme(K, op, x, args, kind, with_index=False):
    """Max (min) over each window of x, padding and dilation holes standing for -(+)2^30
    (a public offset added where they are: a sharing of a constant is not the constant
    in every piece). with_index: also the window position of the first max (min)."""
    px = B.map_local(x, lambda s: window_patches(s, *args))
    big = encode_value(K.ring, np.array(INFINITY_STAND_IN), op.inputs[-1].type.dtype)
    holes = 1 - window_patches(np.ones(op.inputs[-1].type.shape, K.ring.dtype), *args)
    if holes.any():
        px = B.add(K.P, px, holes * (K.ring.dtype(0) - big if kind == "max" else big))
    pick = (lambda lo, hi: less(K.P, lo, hi)) if kind == "max" else \
        (lambda lo, hi: less(K.P, hi, lo))
    idx = None
    if with_index:
        idx = np.broadcast_to(np.arange(px.shape[-1]).astype(K.ring.dtype), px.shape)
    return tree_reduce_last(K.P, px, pick, index=idx)


@kernel("reduce_window")
def _reduce_window(K, op, x):
    a = op.attrs
    args = (a["window"], a["strides"], a["padding"], a["base_dilation"], a["window_dilation"])
    if a["kind"] == "sum":
        return B.map_local(x, lambda s: window_patches(s, *args).sum(axis=-1, dtype=s.dtype))
    return _window_extreme(K, op, x, args, a["kind"])[0]


def _scatter_windows(c: np.ndarray, shape, window, strides, padding) -> np.ndarray:
    """The adjoint of window_patches (no dilation): c (out..., K) summed back into an
    array of `shape` (padding >= 0)."""
    padded = [n + lo + hi for n, (lo, hi) in zip(shape, padding)]
    acc = np.zeros(padded, c.dtype)
    out = c.shape[:-1]
    for j, off in enumerate(np.ndindex(*window)):
        at = tuple(slice(o, o + (m - 1) * s + 1, s) for o, m, s in zip(off, out, strides))
        acc[at] += c[..., j]
    return acc[tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, padding))]


@kernel("select_and_scatter_add")
def _select_and_scatter_add(K, op, src, x):
    """One-hot of each window's first max (its index from the tournament, compared with
    0..K-1: one batched equality), times the source value (a 0/1 product: no truncation),
    scattered back (local)."""
    a = op.attrs
    nd = len(a["window"])
    args = (a["window"], a["strides"], a["padding"], [1] * nd, [1] * nd)
    _, index = _window_extreme(K, op, x, args, a["kind"], with_index=True)
    n = int(np.prod(a["window"]))
    ks = np.broadcast_to(np.arange(n).astype(K.ring.dtype), tuple(index.shape) + (n,))
    onehot = equal(K.P, B.map_local(index, lambda s: np.broadcast_to(s[..., None], ks.shape)), ks)
    srcs = B.map_local(src, lambda s: np.broadcast_to(s[..., None], ks.shape))
    c = B.mul(K.P, onehot, srcs)
    return B.map_local(c, lambda s: _scatter_windows(s, op.inputs[1].type.shape, a["window"],
                                                      a["strides"], a["padding"]))
