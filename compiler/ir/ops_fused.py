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


def product_attrs(op) -> dict:
    """The attributes of a fused op's product (without the truncation's `bits`)."""
    return {k: v for k, v in op.attrs.items() if k not in ("bits", BATCH)}


def batches(ops) -> List[Tuple[int, int]]:
    """(start, size) of every batch among `ops` (size > 1), in order."""
    return [(i, op.attrs[BATCH]) for i, op in enumerate(ops) if op.attrs.get(BATCH, 1) > 1]

