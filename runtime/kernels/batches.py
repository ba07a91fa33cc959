"""Batched kernels: the ops of one IR batch (attribute `batch`, decided by the compiler's
scheduler, compiler/passes/rounds.py) as one protocol call of concatenated operands
(runtime/fxp/batch.py), so n independent ops cost the rounds of one. BATCHED maps a
batching kind (compiler/ir/ops_fused.py BATCH_KINDS) to fn(K, ops, inputs) -> outputs.
Each op gives the same result as its own kernel (up to truncation randomness); public
operands, which the compiler's types rule out for batched ops, take the ops' own
kernels where the shared call needs secrets."""
from __future__ import annotations

import numpy as np

from ..fxp import basic as B
from ..fxp.batch import elementwise_many, mul_many, mul_trunc_many, trunc_many
from ..fxp.compare import msb
from .arith import dot_dims
from .registry import KERNELS, batched


def _all_secret(values) -> bool:
    return all(B.is_secret(a) for a in values)


def _one_by_one(K, ops, ins):
    return [KERNELS[op.name](K, op, *args) for op, args in zip(ops, ins)]


def batch_kernel(kind):
    """Register fn as the batched kernel of `kind`, each result in arrays of its own:
    the pieces of a shared call's result are views of one buffer, which one long-lived
    piece (a parameter carried to the next step) would keep whole (MNIST training:
    +100 MB of resident memory). Cost: one copy of the outputs."""
    def deco(fn):
        def own(K, ops, ins):
            return [v.map(np.copy) if B.is_secret(v) else v for v in fn(K, ops, ins)]
        batched(kind)(own)
        return fn
    return deco


@batch_kernel("trunc")
def _truncs(K, ops, ins):
    return trunc_many(K.P, [x for (x,) in ins], ops[0].attrs["bits"])


@batch_kernel("mul_trunc")
def _mul_truncs(K, ops, ins):
    if not _all_secret(a for args in ins for a in args):
        return _one_by_one(K, ops, ins)
    return mul_trunc_many(K.P, [tuple(args) for args in ins], ops[0].attrs["bits"])


@batch_kernel("dot")
def _dots(K, ops, ins):
    if not _all_secret(a for args in ins for a in args):
        return _one_by_one(K, ops, ins)
    return K.P.dot_many([(x, y, dot_dims(op)) for op, (x, y) in zip(ops, ins)])


def _shared(K, ops, ins, parts, call):
    """parts[op.name](P, *inputs) -> (operand tuples, finish(results) -> output); one
    call(all tuples) for all ops."""
    split = [parts[op.name](K.P, *args) for op, args in zip(ops, ins)]
    res = call([t for tuples, _ in split for t in tuples])
    outs, k = [], 0
    for tuples, finish in split:
        outs.append(finish(res[k:k + len(tuples)]))
        k += len(tuples)
    return outs


class _BitTimes(tuple):
    """(c, d) whose product is select's: c a 0/1 value (fxp/compare.py bit_product)."""


# One ring product each (fxp/compare.py select; kernels/arith.py logic on 0/1 values).
PRODUCT_PARTS = {
    "mul": lambda P, x, y: ([(x, y)], lambda r: r[0]),
    "and": lambda P, x, y: ([(x, y)], lambda r: r[0]),
    "select": lambda P, c, a, b: ([_BitTimes((c, B.sub(P, a, b)))], lambda r: B.add(P, b, r[0])),
    "or": lambda P, a, b: ([(a, b)], lambda r: B.sub(P, B.add(P, a, b), r[0])),
    "xor": lambda P, a, b: ([(a, b)], lambda r: B.sub(P, B.add(P, a, b), B.add(P, r[0], r[0]))),
}


def _mul_or_mux_many(P, pairs):
    """All products of a batch: select's by the protocol's multiplexer if it has one
    (P.mux, one call), the others by ring products (one call; a batch mixing the two
    then takes two rounds)."""
    bits = [i for i, p in enumerate(pairs) if P.mux is not None and isinstance(p, _BitTimes)
            and _all_secret(p)]
    if not bits:
        return mul_many(P, pairs)
    out = [None] * len(pairs)
    rest = sorted(set(range(len(pairs))) - set(bits))
    for i, r in zip(rest, mul_many(P, [pairs[i] for i in rest])):
        out[i] = r
    for i, r in zip(bits, elementwise_many(P, [pairs[i] for i in bits], P.mux)):
        out[i] = r
    return out


@batch_kernel("product")
def _products(K, ops, ins):
    return _shared(K, ops, ins, PRODUCT_PARTS, lambda pairs: _mul_or_mux_many(K.P, pairs))


def _eq_parts(P, x, y):
    """x == y is 1 - [x < y] - [y < x] (fxp/compare.py equal)."""
    d = B.sub(P, x, y)
    ones = np.ones(d.shape, P.ring.dtype)
    return [(d,), (B.neg(P, d),)], lambda r: B.add(P, B.neg(P, B.add(P, r[0], r[1])), ones)


# Sign bits: x < y is msb(x - y) (fxp/compare.py less).
SIGN_PARTS = {"less": lambda P, x, y: ([(B.sub(P, x, y),)], lambda r: r[0]), "eq": _eq_parts}


@batch_kernel("sign")
def _signs(K, ops, ins):
    def call(items):
        if not _all_secret(d for (d,) in items):
            return [msb(K.P, d) for (d,) in items]
        return elementwise_many(K.P, items, lambda d: msb(K.P, d))
    return _shared(K, ops, ins, SIGN_PARTS, call)
