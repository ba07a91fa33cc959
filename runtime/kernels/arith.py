"""Kernels: ring arithmetic, fixed-point scale changes and conversions."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.compare import bit_product, less, equal, select
from .registry import kernel


@kernel("add")
def _add(K, op, x, y):
    return B.add(K.P, x, y)


@kernel("sub")
def _sub(K, op, x, y):
    return B.sub(K.P, x, y)


@kernel("neg")
def _neg(K, op, x):
    return B.neg(K.P, x)


@kernel("mul")
def _mul(K, op, x, y):
    return B.mul(K.P, x, y)


def dot_dims(op):
    a = op.attrs
    return (a["lhs_contract"], a["rhs_contract"], a["lhs_batch"], a["rhs_batch"])


def _reuse_rhs(K, op) -> bool:
    """The compiler marked y loop-invariant and the config allows reusing its mask."""
    return bool(op.attrs.get("reuse_rhs")) and K.options.get("reuse_masks", True)


@kernel("dot")
def _dot(K, op, x, y):
    if _reuse_rhs(K, op) and B.is_secret(x) and B.is_secret(y):
        return K.P.dot_reusing_rhs(x, y, dot_dims(op))
    return B.dot(K.P, x, y, dot_dims(op))


@kernel("mul_trunc")
def _mul_trunc(K, op, x, y):
    if B.is_secret(x) and B.is_secret(y):
        return K.P.mul_trunc(x, y, op.attrs["bits"])
    return B.trunc(K.P, B.mul(K.P, x, y), op.attrs["bits"])


@kernel("dot_trunc")
def _dot_trunc(K, op, x, y):
    if B.is_secret(x) and B.is_secret(y):
        return K.P.dot_trunc(x, y, dot_dims(op), op.attrs["bits"], reuse_rhs=_reuse_rhs(K, op))
    return B.trunc(K.P, B.dot(K.P, x, y, dot_dims(op)), op.attrs["bits"])


@kernel("trunc")
def _trunc(K, op, x):
    return B.trunc(K.P, x, op.attrs["bits"])


@kernel("arshift")
def _arshift(K, op, x):
    return B.trunc(K.P, x, op.attrs["bits"])


@kernel("lshift")
def _lshift(K, op, x):
    return B.lshift(K.P, x, op.attrs["bits"])


@kernel("convert")
def _convert(K, op, x):
    src, dst = op.inputs[0].type.dtype, op.out.type.dtype
    if dst.is_fxp:
        if src.is_fxp:                       # rescale
            d = dst.frac - src.frac
            return B.lshift(K.P, x, d) if d >= 0 else B.trunc(K.P, x, -d)
        return B.lshift(K.P, x, dst.frac)    # int/bool -> fxp: exact
    if dst.is_int:
        if src.is_fxp:                       # fxp -> int: floor (the lowering handles signs)
            return B.trunc(K.P, x, src.frac)
        return x                             # bool -> int: same ring value
    raise NotImplementedError(f"convert {src} -> {dst}")


@kernel("less")
def _less(K, op, x, y):
    return less(K.P, x, y)


@kernel("eq")
def _eq(K, op, x, y):
    return equal(K.P, x, y)


@kernel("select")
def _select(K, op, c, a, b):
    return select(K.P, c, a, b)


# Logic on bools held as arithmetic 0/1: and = a*b, or = a+b-ab, xor = a+b-2ab, not = 1-a.
# a*b is a product by a 0/1 value: the protocol's multiplexer if it has one.
@kernel("and")
def _and(K, op, a, b):
    return bit_product(K.P, a, b)


@kernel("or")
def _or(K, op, a, b):
    return B.sub(K.P, B.add(K.P, a, b), bit_product(K.P, a, b))


@kernel("xor")
def _xor(K, op, a, b):
    ab = bit_product(K.P, a, b)
    return B.sub(K.P, B.add(K.P, a, b), B.add(K.P, ab, ab))


@kernel("not")
def _not(K, op, a):
    return B.add(K.P, B.neg(K.P, a), np.ones(a.shape, K.ring.dtype))


@kernel("int_div")
def _int_div(K, op, a, b):
    x, y = K.ring.decode_int(a), K.ring.decode_int(b)
    q = np.abs(x) // np.maximum(np.abs(y), 1) * np.sign(x) * np.sign(y)
    return K.ring.encode_int(q)


@kernel("fdiv")
def _fdiv(K, op, a, b):
    f = op.out.type.dtype.frac
    return K.ring.encode(K.ring.decode(a, f) / K.ring.decode(b, f), f)


@kernel("reveal")
def _reveal(K, op, x):
    return K.P.reveal(x) if B.is_secret(x) else x
