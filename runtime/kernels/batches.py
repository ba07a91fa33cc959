"""Batched kernels: the ops of one IR batch (attribute `batch`, decided by the compiler's
scheduler, compiler/passes/rounds.py) as one protocol call of concatenated operands
(runtime/fxp/batch.py), so n independent ops cost the rounds of one. Each kernel returns
what the ops' own kernels would (up to truncation randomness); public operands, which
the compiler's types rule out for batched ops, take the ops' own kernels."""
from __future__ import annotations

from ..fxp import basic as B
from ..fxp.batch import elementwise_many, mul_many, mul_trunc_many, trunc_many
from ..fxp.compare import msb
from .arith import dot_dims
from .registry import KERNELS, batched


def _all_secret(ins) -> bool:
    return all(B.is_secret(a) for args in ins for a in args)


def _one_by_one(K, ops, ins):
    return [KERNELS[op.name](K, op, *args) for op, args in zip(ops, ins)]


@batched("trunc")
def _truncs(K, ops, ins):
    return trunc_many(K.P, [x for (x,) in ins], ops[0].attrs["bits"])


@batched("mul")
def _muls(K, ops, ins):
    return mul_many(K.P, [tuple(args) for args in ins])


@batched("mul_trunc")
def _mul_truncs(K, ops, ins):
    if not _all_secret(ins):
        return _one_by_one(K, ops, ins)
    return mul_trunc_many(K.P, [tuple(args) for args in ins], ops[0].attrs["bits"])


@batched("dot")
def _dots(K, ops, ins):
    if not _all_secret(ins):
        return _one_by_one(K, ops, ins)
    return K.P.dot_many([(x, y, dot_dims(op)) for op, (x, y) in zip(ops, ins)])


@batched("less")
def _less(K, ops, ins):
    """x < y is msb(x - y) (fxp/compare.py): one msb of all the differences."""
    d = [B.sub(K.P, x, y) for x, y in ins]
    if not all(B.is_secret(v) for v in d):
        return _one_by_one(K, ops, ins)
    return elementwise_many(K.P, [(v,) for v in d], lambda v: msb(K.P, v))


@batched("select")
def _selects(K, ops, ins):
    """c ? a : b is b + c * (a - b) (fxp/compare.py): one round of products."""
    prods = mul_many(K.P, [(c, B.sub(K.P, a, b)) for c, a, b in ins])
    return [B.add(K.P, b, p) for (_, _, b), p in zip(ins, prods)]
