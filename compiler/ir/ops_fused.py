"""Ops that the scheduling pass (compiler/passes/rounds.py) writes into the IR.

Fused products: `mul_trunc`, `dot_trunc`, `conv_trunc` are a product of secrets and the
truncation that alone reads it, one protocol call (aby3 truncates while it reshares:
one reshare less than the pair; the other protocols run the pair). Attributes: the
product's, plus the truncation's `bits`; type: trunc(product).

Batches: an op whose attribute `batch` is n > 1 runs as one protocol call together with
the n - 1 ops that follow it (the same kind in BATCH_KINDS, the same truncation amount,
none reading another's result): their operands are concatenated, so the n ops cost the
rounds of one. Kinds group ops that reduce to the same protocol call: `mul`, `select`
(b + c * (a - b)) and the logic ops on 0/1 values are one ring product each; `less`
(msb(x - y)) and `eq` (two msbs) are sign bits. The attribute is what the scheduler
decided; the runtime only follows it.
"""
from __future__ import annotations

from typing import List, Tuple

from .ops import defop, infer

FUSED = {"mul": "mul_trunc", "dot": "dot_trunc", "conv": "conv_trunc"}
BATCH = "batch"
#: op name -> the protocol call that a batch of such ops shares
BATCH_KINDS = {"trunc": "trunc", "mul_trunc": "mul_trunc", "dot": "dot",
               "mul": "product", "select": "product", "and": "product", "or": "product",
               "xor": "product", "less": "sign", "eq": "sign"}


def _fused_rule(product: str):
    def rule(ts, attrs):
        inner = {k: v for k, v in attrs.items() if k != "bits"}
        return infer("trunc", infer(product, ts, inner), {"bits": attrs["bits"]})
    return rule


for _product, _name in FUSED.items():
    defop(_name, 2, f"trunc({_product}(x, y), bits) as one protocol call "
                    f"(attrs: {_product}'s and `bits`)")(_fused_rule(_product))


def batches(ops) -> List[Tuple[int, int]]:
    """(start, size) of every batch among `ops` (size > 1), in order."""
    return [(i, op.attrs[BATCH]) for i, op in enumerate(ops) if op.attrs.get(BATCH, 1) > 1]



def batch_error(ops) -> str:
    """Why the `batch` marks of a block's ops are not runnable ("" if they are): a batch
    is n >= 2 ops that fit in the block, of one batching kind and truncation amount,
    none marked again and none reading another's result."""
    i = 0
    while i < len(ops):
        n = ops[i].attrs.get(BATCH, 1)
        if type(n) is not int or n < 1 or i + n > len(ops):
            return f"batch={n} at op {i} is not a count of the ops that follow"
        group = ops[i:i + n]
        kinds = {(BATCH_KINDS.get(op.name), op.attrs.get("bits")) for op in group}
        if n > 1 and (len(kinds) > 1 or next(iter(kinds))[0] is None):
            return f"batch at op {i} holds ops that cannot share a call"
        if any(BATCH in op.attrs for op in group[1:]):
            return f"batch at op {i} holds another batch"
        made = {id(v) for op in group for v in op.outputs}
        if n > 1 and any(id(v) in made for op in group for v in op.inputs):
            return f"batch at op {i} reads its own results"
        i += n
    return ""
