"""Lowering rules: dot_general and reductions."""
from __future__ import annotations

from .context import CompileError, rule


def _ints(xs):
    return [int(x) for x in xs]


@rule("dot_general")
def _dot_general(L, eqn, a, b):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    out = L.fmul(a, b, op="dot", lhs_contract=_ints(lc), rhs_contract=_ints(rc),
                 lhs_batch=_ints(lb), rhs_batch=_ints(rb))
    if a.type.dtype.is_bool and b.type.dtype.is_bool:
        raise CompileError("dot_general of two bool arrays is not supported")
    return out


@rule("reduce_sum")
def _reduce_sum(L, eqn, x):
    return L.emit("reduce_sum", [x], axes=_ints(eqn.params["axes"]))


@rule("reduce_max")
def _reduce_max(L, eqn, x):
    return L.emit("reduce_max", [x], axes=_ints(eqn.params["axes"]))


@rule("reduce_min")
def _reduce_min(L, eqn, x):
    return L.emit("reduce_min", [x], axes=_ints(eqn.params["axes"]))


@rule("reduce_and")
def _reduce_and(L, eqn, x):
    # all(x) == (sum of not-x) == 0, i.e. min over bools
    return L.emit("reduce_min", [x], axes=_ints(eqn.params["axes"]))


@rule("reduce_or")
def _reduce_or(L, eqn, x):
    return L.emit("reduce_max", [x], axes=_ints(eqn.params["axes"]))


def _arg(name):
    def lower(L, eqn, x):
        axes = _ints(eqn.params["axes"])
        if len(axes) != 1:
            raise CompileError(f"{name} over several axes")
        return L.emit(name, [x], axis=axes[0])
    return lower


rule("argmax")(_arg("argmax"))
rule("argmin")(_arg("argmin"))
