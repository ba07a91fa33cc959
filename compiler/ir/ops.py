"""The IR's op table: every op is defined here once (name, arity, type rule).

Type rules take the input Types and the op's attributes and return the output
Types. Visibility follows one rule everywhere: an output is secret iff an input is
(`join_vis`), except where an op says otherwise. Fixed-point bookkeeping is explicit:
`mul`/`dot` of fxp<f1> and fxp<f2> give fxp<f1+f2>; `trunc{bits}` takes it back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .nonlinear import TABLE as NONLINEAR_TABLE
from .types import DType, Type, join_vis, PUBLIC


class IRTypeError(TypeError):
    pass


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: Optional[int]              # None: variadic
    rule: Callable[[Sequence[Type], dict], List[Type]]
    doc: str
    has_blocks: bool = False


OPS: Dict[str, OpDef] = {}


def defop(name: str, arity: Optional[int], doc: str, has_blocks: bool = False):
    def deco(rule):
        OPS[name] = OpDef(name, arity, rule, doc, has_blocks)
        return rule
    return deco


def infer(name: str, in_types: Sequence[Type], attrs: dict) -> List[Type]:
    """Output types of op `name`; raises IRTypeError on a mismatch."""
    if name not in OPS:
        raise IRTypeError(f"unknown op {name!r}")
    d = OPS[name]
    if d.arity is not None and len(in_types) != d.arity:
        raise IRTypeError(f"{name} takes {d.arity} inputs, got {len(in_types)}")
    return d.rule(list(in_types), attrs)


def _vis(ts):
    return join_vis(*(t.vis for t in ts))


def _same_shape(name, ts):
    if len({t.shape for t in ts}) > 1:
        raise IRTypeError(f"{name}: shapes differ: {[t.shape for t in ts]}")


def _same_dtype(name, ts):
    if len({t.dtype for t in ts}) > 1:
        raise IRTypeError(f"{name}: dtypes differ: {[str(t.dtype) for t in ts]}")


def _product_dtype(name, a: DType, b: DType) -> DType:
    """fxp*fxp adds fractions; int/bool operands carry no fraction."""
    if a.bits != b.bits:
        raise IRTypeError(f"{name}: ring widths differ")
    if a.is_fxp or b.is_fxp:
        return DType("fxp", a.bits, a.frac + b.frac)
    if a.is_bool and b.is_bool:
        return a
    return DType("int", a.bits)


# ---- elementwise arithmetic -------------------------------------------------------

def _binary_same(name):
    def rule(ts, attrs):
        _same_shape(name, ts)
        _same_dtype(name, ts)
        return [ts[0].replace(vis=_vis(ts))]
    return rule


for _n, _doc in [("add", "x + y in the ring"), ("sub", "x - y in the ring")]:
    defop(_n, 2, _doc)(_binary_same(_n))


@defop("neg", 1, "-x in the ring")
def _neg(ts, attrs):
    return [ts[0]]


@defop("mul", 2, "ring product; fxp fractions add (truncate separately)")
def _mul(ts, attrs):
    _same_shape("mul", ts)
    return [ts[0].replace(vis=_vis(ts), dtype=_product_dtype("mul", ts[0].dtype, ts[1].dtype))]


@defop("dot", 2, "dot_general: attrs lhs_contract, rhs_contract, lhs_batch, rhs_batch")
def _dot(ts, attrs):
    a, b = ts
    lc, rc = attrs["lhs_contract"], attrs["rhs_contract"]
    lb, rb = attrs["lhs_batch"], attrs["rhs_batch"]
    if [a.shape[i] for i in lc] != [b.shape[i] for i in rc]:
        raise IRTypeError(f"dot: contracting dims differ: {a.shape} {b.shape}")
    if [a.shape[i] for i in lb] != [b.shape[i] for i in rb]:
        raise IRTypeError(f"dot: batch dims differ: {a.shape} {b.shape}")
    batch = [a.shape[i] for i in lb]
    lfree = [d for i, d in enumerate(a.shape) if i not in lc and i not in lb]
    rfree = [d for i, d in enumerate(b.shape) if i not in rc and i not in rb]
    return [Type(_vis(ts), _product_dtype("dot", a.dtype, b.dtype), batch + lfree + rfree)]


@defop("conv", 2, "conv_general_dilated: attrs window_strides, padding, lhs_dilation, "
                  "rhs_dilation, lhs_spec, rhs_spec, out_spec, feature_group_count, "
                  "batch_group_count, out_shape")
def _conv(ts, attrs):
    a, b = ts
    groups = attrs.get("feature_group_count", 1)
    if a.shape[attrs["lhs_spec"][1]] != b.shape[attrs["rhs_spec"][1]] * groups:
        raise IRTypeError(f"conv: input features differ: {a.shape} {b.shape}")
    return [Type(_vis(ts), _product_dtype("conv", a.dtype, b.dtype), tuple(attrs["out_shape"]))]


@defop("trunc", 1, "fixed-point truncation by `bits`: fxp<f> -> fxp<f-bits>")
def _trunc(ts, attrs):
    t = ts[0]
    if not t.dtype.is_fxp or t.dtype.frac < attrs["bits"]:
        raise IRTypeError(f"trunc of {t}")
    return [t.replace(dtype=t.dtype.with_frac(t.dtype.frac - attrs["bits"]))]


@defop("lshift", 1, "x * 2^bits (exact, local): fxp<f> -> fxp<f+bits>, int stays int")
def _lshift(ts, attrs):
    t = ts[0]
    if t.dtype.is_fxp:
        return [t.replace(dtype=t.dtype.with_frac(t.dtype.frac + attrs["bits"]))]
    return [t.replace(dtype=DType("int", t.dtype.bits))]


@defop("arshift", 1, "arithmetic right shift of an int by `bits`")
def _arshift(ts, attrs):
    if not ts[0].dtype.is_int:
        raise IRTypeError("arshift takes an int")
    return [ts[0]]


@defop("convert", 1, "change dtype to attrs `to` (a DType)")
def _convert(ts, attrs):
    return [ts[0].replace(dtype=attrs["to"])]


# ---- comparison, logic, selection -------------------------------------------------

def _compare(name):
    def rule(ts, attrs):
        _same_shape(name, ts)
        _same_dtype(name, ts)
        return [Type(_vis(ts), DType("bool", ts[0].dtype.bits), ts[0].shape)]
    return rule


for _n, _doc in [("less", "x < y (signed) -> bool"), ("eq", "x == y -> bool")]:
    defop(_n, 2, _doc)(_compare(_n))


def _logic(name, arity):
    def rule(ts, attrs):
        _same_shape(name, ts)
        for t in ts:
            if not t.dtype.is_bool:
                raise IRTypeError(f"{name} takes bools (secret ints have no bitwise ops), got {t}")
        return [ts[0].replace(vis=_vis(ts))]
    return rule


for _n, _a in [("and", 2), ("or", 2), ("xor", 2), ("not", 1)]:
    defop(_n, _a, f"logical {_n} of bools")(_logic(_n, _a))


def _bitwise(name, arity):
    def rule(ts, attrs):
        for t in ts:
            if t.dtype.is_fxp:
                raise IRTypeError(f"{name} takes integers, got {t}")
        _same_shape(name, ts)
        _same_dtype(name, ts)
        return [ts[0].replace(vis=_vis(ts))]
    return rule


for _n, _a in [("bit_and", 2), ("bit_or", 2), ("bit_xor", 2), ("bit_not", 1)]:
    defop(_n, _a, f"bitwise {_n[4:]} of integers (secret ones through boolean shares)")(
        _bitwise(_n, _a))


@defop("select", 3, "pred ? on_true : on_false (pred bool)")
def _select(ts, attrs):
    p, a, b = ts
    if not p.dtype.is_bool:
        raise IRTypeError("select predicate must be bool")
    _same_shape("select", ts)
    _same_dtype("select", [a, b])
    return [a.replace(vis=_vis(ts))]


# ---- reductions ---------------------------------------------------------------------

def _reduced_shape(shape, axes):
    return tuple(d for i, d in enumerate(shape) if i not in axes)


for _n in ("reduce_sum", "reduce_max", "reduce_min"):
    defop(_n, 1, f"{_n} over attrs `axes`")(
        lambda ts, attrs: [ts[0].replace(shape=_reduced_shape(ts[0].shape, attrs["axes"]))])


def _arg_rule(ts, attrs):
    t = ts[0]
    return [Type(t.vis, DType("int", t.dtype.bits), _reduced_shape(t.shape, [attrs["axis"]]))]


defop("argmax", 1, "index of the max along `axis` (first on ties)")(_arg_rule)
defop("argmin", 1, "index of the min along `axis` (first on ties)")(_arg_rule)


@defop("select_and_scatter_add", 2, "max_pool's gradient: each window's source value added at "
                                    "the window's first max (`kind` max) or min of operand")
def _select_and_scatter_add(ts, attrs):
    src, operand = ts
    return [Type(_vis(ts), src.dtype, operand.shape)]


@defop("reduce_window", 1, "sum / max / min (`kind`) over windows: attrs window, strides, "
                           "padding, base_dilation, window_dilation, out_shape")
def _reduce_window(ts, attrs):
    return [ts[0].replace(shape=tuple(attrs["out_shape"]))]


@defop("sort", None, "sort along `axis` by the first operand (`descending`); the other "
                     "operands are permuted alike")
def _sort(ts, attrs):
    if not ts:
        raise IRTypeError("sort needs at least one operand")
    _same_shape("sort", ts)
    key = ts[0]
    return [t.replace(vis=join_vis(t.vis, key.vis)) for t in ts]


# ---- layout -------------------------------------------------------------------------

@defop("reshape", 1, "reshape to attrs `shape`")
def _reshape(ts, attrs):
    shape = tuple(attrs["shape"])
    if int(np.prod(shape)) != ts[0].size:
        raise IRTypeError(f"reshape {ts[0].shape} -> {shape}")
    return [ts[0].replace(shape=shape)]


@defop("transpose", 1, "permute axes by attrs `perm`")
def _transpose(ts, attrs):
    return [ts[0].replace(shape=[ts[0].shape[p] for p in attrs["perm"]])]


@defop("broadcast", 1, "broadcast_in_dim: attrs `shape`, `dims` (operand axis -> out axis)")
def _broadcast(ts, attrs):
    shape, dims = attrs["shape"], attrs["dims"]
    for i, d in enumerate(dims):
        if ts[0].shape[i] not in (1, shape[d]):
            raise IRTypeError(f"broadcast {ts[0].shape} -> {shape} via {dims}")
    return [ts[0].replace(shape=shape)]


@defop("slice", 1, "static slice: attrs `start`, `limit`, `strides`")
def _slice(ts, attrs):
    st = attrs.get("strides") or [1] * len(attrs["start"])
    shape = [max(0, -(-(l - s) // k)) for s, l, k in zip(attrs["start"], attrs["limit"], st)]
    return [ts[0].replace(shape=shape)]


@defop("concat", None, "concatenate along attrs `axis`")
def _concat(ts, attrs):
    ax = attrs["axis"]
    _same_dtype("concat", ts)
    shape = list(ts[0].shape)
    shape[ax] = sum(t.shape[ax] for t in ts)
    return [Type(_vis(ts), ts[0].dtype, shape)]


@defop("pad", 2, "pad x with scalar value: attrs `low`, `high`, `interior`")
def _pad(ts, attrs):
    x, v = ts
    _same_dtype("pad", ts)
    shape = [lo + hi + d + max(d - 1, 0) * it for d, lo, hi, it in
             zip(x.shape, attrs["low"], attrs["high"], attrs["interior"])]
    return [x.replace(vis=_vis(ts), shape=shape)]


@defop("rev", 1, "reverse along attrs `dims`")
def _rev(ts, attrs):
    return [ts[0]]


@defop("gather", 2, "x[public indices]: jax gather dimension numbers in attrs, out `shape`")
def _gather(ts, attrs):
    if ts[1].secret:
        raise IRTypeError("gather indices must be public")
    return [ts[0].replace(shape=attrs["shape"])]


@defop("gather_secret_index", 2, "x[secret indices] along one axis (attrs as gather): a "
                                 "one-hot of each index times every candidate slice")
def _gather_secret_index(ts, attrs):
    return [Type(_vis(ts), ts[0].dtype, tuple(attrs["shape"]))]


@defop("scatter_add", 3, "x with updates added at public indices (jax scatter dnums in attrs)")
def _scatter_add(ts, attrs):
    if ts[1].secret:
        raise IRTypeError("scatter indices must be public")
    _same_dtype("scatter_add", [ts[0], ts[2]])
    return [ts[0].replace(vis=join_vis(ts[0].vis, ts[2].vis))]


@defop("scatter_add_secret_index", 3, "x with updates added at secret indices along one axis "
                                      "(attrs as scatter_add): one-hot weighted updates")
def _scatter_add_secret_index(ts, attrs):
    _same_dtype("scatter_add_secret_index", [ts[0], ts[2]])
    return [ts[0].replace(vis=_vis(ts))]


@defop("dynamic_slice", None, "x[starts : starts+sizes] with public scalar starts")
def _dynamic_slice(ts, attrs):
    if any(t.secret for t in ts[1:]):
        raise IRTypeError("dynamic_slice start indices must be public")
    return [ts[0].replace(shape=attrs["sizes"])]


@defop("dynamic_update_slice", None, "x with update written at public scalar starts")
def _dynamic_update_slice(ts, attrs):
    if any(t.secret for t in ts[2:]):
        raise IRTypeError("dynamic_update_slice start indices must be public")
    _same_dtype("dynamic_update_slice", ts[:2])
    return [ts[0].replace(vis=join_vis(ts[0].vis, ts[1].vis))]


@defop("dynamic_slice_secret_start", None, "dynamic_slice with one secret start: a clamped "
                                           "one-hot over the candidate starts")
def _dynamic_slice_secret_start(ts, attrs):
    if sum(t.secret for t in ts[1:]) != 1:
        raise IRTypeError("dynamic_slice_secret_start: exactly one secret start index")
    return [ts[0].replace(shape=attrs["sizes"], vis=_vis(ts))]


@defop("dynamic_update_slice_secret_start", None, "dynamic_update_slice with one secret "
                                                  "start: a clamped one-hot over the starts")
def _dynamic_update_slice_secret_start(ts, attrs):
    if sum(t.secret for t in ts[2:]) != 1:
        raise IRTypeError("dynamic_update_slice_secret_start: exactly one secret start index")
    _same_dtype("dynamic_update_slice_secret_start", ts[:2])
    return [ts[0].replace(vis=_vis(ts))]


# ---- sources and boundaries ------------------------------------------------------------

@defop("constant", 0, "a public constant: attrs `value` (numpy array) and `dtype`")
def _constant(ts, attrs):
    return [Type(PUBLIC, attrs["dtype"], attrs["value"].shape)]


@defop("iota", 0, "public 0, 1, 2, ... along `dim` of `shape`, dtype `dtype`")
def _iota(ts, attrs):
    return [Type(PUBLIC, attrs["dtype"], attrs["shape"])]


@defop("reveal", 1, "open a secret to every party (result public)")
def _reveal(ts, attrs):
    return [ts[0].replace(vis=PUBLIC)]


# ---- nonlinear functions (fixed-point approximations live in runtime/fxp) -------------

NONLINEAR = tuple(row.op for row in NONLINEAR_TABLE)


def _nonlinear_type(ts, attrs):
    """Same type as the input, except `frac`: the output's fractional bits, if given."""
    t = ts[0]
    if "frac" in attrs:
        if not t.dtype.is_fxp:
            raise IRTypeError("nonlinear functions take fxp values")
        return [t.replace(dtype=t.dtype.with_frac(int(attrs["frac"])))]
    return [t]


for _row in NONLINEAR_TABLE:
    defop(_row.op, 1, f"{_row.op}(x), fxp in and out (out at `frac` bits if given); "
                      f"error {_row.error}")(_nonlinear_type)


def op_names() -> List[str]:
    return sorted(OPS)


@defop("cumsum", 1, "running sum along `axis` (`reverse` from the end); linear, so local")
def _cumsum(ts, attrs):
    return [ts[0]]


@defop("to_secret", 1, "treat a public value as secret (trivial sharing, no communication)")
def _to_secret(ts, attrs):
    from .types import SECRET
    return [ts[0].replace(vis=SECRET)]


# ---- regions: loops and branches (output types are given by their blocks) -----------

def _region_rule(name):
    def rule(ts, attrs):
        raise IRTypeError(f"{name}: output types come from its blocks")
    return rule


defop("for", None, "run block ^0 `length` times over (consts, carry, x slices) -> "
      "(carry, y slices); attrs num_consts, num_carry, length, reverse", True)(_region_rule("for"))
defop("while", None, "while block ^0 (public bool) holds, carry = block ^1(carry); "
      "attrs cond_nconsts, body_nconsts, max_trips", True)(_region_rule("while"))
defop("cond", None, "run block ^index on the operands (public index)", True)(_region_rule("cond"))
