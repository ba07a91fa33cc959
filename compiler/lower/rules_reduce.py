"""Lowering rules: dot_general, reductions and sorting."""
from __future__ import annotations

from .context import CompileError, rule


def _ints(xs):
    return [int(x) for x in xs]


@rule("dot_general")
def _dot_general(L, eqn, a, b):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    both_bool = a.type.dtype.is_bool and b.type.dtype.is_bool
    if both_bool:               # JAX: any(a & b) over the contraction: a count, then != 0
        a, b = (L.emit("convert", [v], to=L.opt.int) for v in (a, b))
    out = L.fmul(a, b, op="dot", lhs_contract=_ints(lc), rhs_contract=_ints(rc),
                 lhs_batch=_ints(lb), rhs_batch=_ints(rb))
    if both_bool:
        return L.emit("not", [L.emit("eq", [out, L.const(0, out.type.dtype, out.type.shape)])])
    return out


GUARD_BITS = 6   # a sum of products keeps this many more fractional bits than fxp_bits


@rule("reduce_sum")
def _reduce_sum(L, eqn, x):
    return reduce_sum(L, x, _ints(eqn.params["axes"]))


def reduce_sum(L, x, axes):
    """A sum of elementwise products (variances, norms, sums of squares) adds the
    products truncated to f + GUARD_BITS bits, not to f and not at 2f: the accumulator
    (range 2^(k-f-GUARD_BITS-1), 2.7e11 at the defaults) cannot wrap the way one at 2f
    bits did past 2^(k-2f-1) = 1.3e8, and terms as small as a variance of values with
    std 1e-2 (1e-4) keep 2^-(f+6) of precision. The sum stays at f + GUARD_BITS bits;
    a division by a count keeps them (Lowerer.scale), sqrt / rsqrt / log read them."""
    op = L.producer(x)
    f = L.opt.fxp_bits
    if op is not None and op.name == "trunc" and op.attrs["bits"] == f and x.type.secret:
        mul = L.producer(op.inputs[0])
        if mul is not None and mul.name == "mul" and mul.outputs[0].type.dtype.frac == 2 * f:
            x = L.emit("trunc", [mul.outputs[0]], bits=f - GUARD_BITS)
    return L.emit("reduce_sum", [x], axes=list(axes))


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


@rule("sort")
def _sort(L, eqn, *operands):
    """jnp.sort / argsort (a second operand: the iota) / lax.sort by one key. By several
    keys (jnp.lexsort, lax.sort(num_keys=k)): one stable sort per key, the last key first
    (least significant digit first, as a radix sort): k sorts where one would do with a
    lexicographic comparator."""
    ops, axis = list(operands), int(eqn.params["dimension"])
    for k in reversed(range(int(eqn.params["num_keys"]))):
        order = [k] + [i for i in range(len(ops)) if i != k]
        out = L.emit_multi("sort", [ops[i] for i in order], axis=axis, descending=False)
        ops = [out[order.index(i)] for i in range(len(ops))]
    return ops


@rule("top_k")
def _top_k(L, eqn, x):
    """The k largest along `axis` (the last by default), in descending order, and their
    indices: a descending sort of (x, iota), then the first k."""
    shape = list(x.type.shape)
    axis = int(eqn.params.get("axis", len(shape) - 1))
    if axis < 0:
        axis += len(shape)
    k = int(eqn.params["k"])
    iota = L.emit("iota", [], shape=shape, dim=axis, dtype=L.dtype_of(eqn.outvars[1].aval))
    vals, idx = L.emit_multi("sort", [x, iota], axis=axis, descending=True)
    hi = list(shape)
    hi[axis] = k
    cut = dict(start=[0] * len(shape), limit=hi, strides=[1] * len(shape))
    return [L.emit("slice", [vals], **cut), L.emit("slice", [idx], **cut)]
