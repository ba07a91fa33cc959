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
from ..protocols.base import Share
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
    "and": lambda P, x, y: ([_BitTimes((x, y))], lambda r: r[0]),
    "select": lambda P, c, a, b: ([_BitTimes((c, B.sub(P, a, b)))], lambda r: B.add(P, b, r[0])),
    "or": lambda P, a, b: ([_BitTimes((a, b))], lambda r: B.sub(P, B.add(P, a, b), r[0])),
    "xor": lambda P, a, b: ([_BitTimes((a, b))], lambda r: B.sub(P, B.add(P, a, b), B.add(P, r[0], r[0]))),
}


def _side_by_side(items):
    """Pairs of secret Shares -> both operands of all of them (each pair broadcast to its
    shape, flattened, concatenated) and split(result) -> one Share per pair."""
    shapes = [tuple(np.broadcast_shapes(x.shape, y.shape)) for x, y in items]
    cuts = np.cumsum([int(np.prod(s, dtype=np.int64)) for s in shapes])[:-1]
    cols = [Share([np.concatenate([np.broadcast_to(o.parts[k], s).reshape(-1)
                                   for o, s in zip(col, shapes)])
                   for k in range(len(col[0].parts))]) for col in zip(*items)]

    def split(res):
        pieces = [np.split(p, cuts) for p in res.parts]
        return [Share([pp[i].reshape(s) for pp in pieces]) for i, s in enumerate(shapes)]
    return cols, split


def _mul_or_mux_many(P, pairs):
    """All products of a batch, one round: select's by the protocol's multiplexer if it
    has one (P.mux), the other secret products by ring products in the same round
    (P.mux's `products`); without a multiplexer, all by P.mul (mul_many)."""
    bits = [i for i, p in enumerate(pairs) if P.mux is not None and isinstance(p, _BitTimes)
            and _all_secret(p)]
    if not bits:
        return mul_many(P, pairs)
    rest = sorted(set(range(len(pairs))) - set(bits))
    secret = [i for i in rest if _all_secret(pairs[i])]
    public = [i for i in rest if i not in secret]
    out = [None] * len(pairs)
    for i, r in zip(public, mul_many(P, [pairs[i] for i in public])):    # local
        out[i] = r
    (c, d), split_bits = _side_by_side([pairs[i] for i in bits])
    if not secret:
        results = [(bits, split_bits(P.mux(c, d)))]
    else:
        (x, y), split_rest = _side_by_side([pairs[i] for i in secret])
        zb, zr = P.mux(c, d, products=(x, y))
        results = [(bits, split_bits(zb)), (secret, split_rest(zr))]
    for idx, res in results:
        for i, r in zip(idx, res):
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
