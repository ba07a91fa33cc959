"""Lowering rules: convolutions and pooling (windowed reductions).

conv_general_dilated becomes one `conv` op: a fixed-point product like `dot` (one
truncation afterwards), which the runtime computes as patches (local) times the kernel
(one dot). Its gradients are convolutions too (JAX transposes them with lhs dilation,
kernel dilation and a reversed kernel), so training a CNN needs nothing more.
reduce_window_sum / max / min (avg_pool, max_pool) become one `reduce_window` op.
"""
from __future__ import annotations

from .context import CompileError, rule


def _ints(xs):
    return [int(x) for x in xs]


def _pairs(ps):
    return [[int(lo), int(hi)] for lo, hi in ps]


@rule("conv_general_dilated")
def _conv(L, eqn, lhs, rhs):
    p = eqn.params
    F, Bg = int(p["feature_group_count"]), int(p["batch_group_count"])
    if F > 1 and Bg > 1:
        raise CompileError("a convolution with both feature and batch groups is not supported")
    dn = p["dimension_numbers"]
    return L.fmul(lhs, rhs, op="conv", window_strides=_ints(p["window_strides"]),
                  padding=_pairs(p["padding"]), lhs_dilation=_ints(p["lhs_dilation"]),
                  rhs_dilation=_ints(p["rhs_dilation"]), lhs_spec=_ints(dn.lhs_spec),
                  rhs_spec=_ints(dn.rhs_spec), out_spec=_ints(dn.out_spec),
                  feature_group_count=F, batch_group_count=Bg,
                  out_shape=_ints(eqn.outvars[0].aval.shape))


def _window(kind):
    def lower(L, eqn, x):
        p = eqn.params
        return L.emit("reduce_window", [x], kind=kind, window=_ints(p["window_dimensions"]),
                      strides=_ints(p["window_strides"]), padding=_pairs(p["padding"]),
                      base_dilation=_ints(p["base_dilation"]),
                      window_dilation=_ints(p["window_dilation"]),
                      out_shape=_ints(eqn.outvars[0].aval.shape))
    return lower


@rule("select_and_scatter_add")
def _select_and_scatter_add(L, eqn, source, operand):
    """The gradient of max_pool (min_pool): source values go to each window's first max."""
    p = eqn.params
    kind = {"ge": "max", "le": "min"}.get(p["select_prim"].name)
    if kind is None or any(lo < 0 or hi < 0 for lo, hi in p["padding"]):
        raise CompileError("select_and_scatter_add: only max / min pooling gradients with "
                           "non-negative padding are supported")
    return L.emit("select_and_scatter_add", [source, operand], kind=kind,
                  window=_ints(p["window_dimensions"]), strides=_ints(p["window_strides"]),
                  padding=_pairs(p["padding"]))


rule("reduce_window_sum")(_window("sum"))
rule("reduce_window_max")(_window("max"))
rule("reduce_window_min")(_window("min"))
