"""Which lanes of an op's output come from bad lanes of its inputs: how spu.check
tells a bad value that reaches a result from one a `where` throws away.

`follow(op, inputs, masks)` takes one boolean mask per input (None: no bad lane, else
the input's shape) and returns the output's mask, or None when the op mixes lanes (a
sum, a dot, a gather: then the observer marks every output lane bad). A select
keeps the bad lanes of the branch it picks, lane by lane, plus those of a bad
predicate; a product by an exact 0 clears a lane; other elementwise ops join their
inputs' lanes; broadcast, reshape and transpose move them.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from spu_lite.runtime.protocols.base import Share

#: ops whose output lane i depends only on lane i of each input (inputs and output of
#: one shape, as the IR's type rules require for them)
ELEMENTWISE = frozenset([
    "add", "sub", "mul", "mul_trunc", "neg", "trunc", "lshift", "arshift", "convert",
    "fdiv", "int_div", "and", "or", "xor", "not", "bit_and", "bit_or", "bit_xor",
    "bit_not", "eq", "less", "to_secret", "exp", "log", "log1p", "logistic",
    "reciprocal", "recip_parts", "rsqrt", "sqrt", "sin", "cos", "tanh", "erf"])


def nested_ops(program) -> set:
    """ids of the ops inside loop and branch bodies (their lanes are not followed)."""
    out = set()

    def walk(ops, inside):
        for op in ops:
            if inside:
                out.add(id(op))
            for b in op.blocks:
                walk(b.ops, True)
    walk(program.ops, False)
    return out


def _values(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    return x.parts[0] if isinstance(x, Share) else np.asarray(x)


_MOVES = frozenset(["select", "broadcast", "reshape", "transpose"])


def _one_shape_out(op) -> bool:
    """One output, or several of one shape (recip_parts): each gets the same lanes."""
    return len(op.outputs) == 1 or (len(op.outputs) > 1 and op.name in ELEMENTWISE and
                                    len({tuple(v.type.shape) for v in op.outputs}) == 1)


def followable(op) -> bool:
    """Whether follow() tracks this op's lanes (cheap: no values looked at)."""
    if not _one_shape_out(op) or op.blocks:
        return False
    if op.name in ELEMENTWISE:
        shape = tuple(op.outputs[0].type.shape)
        return all(tuple(v.type.shape) == shape for v in op.inputs)
    return op.name in _MOVES


def follow(op, inputs, masks: Sequence[Optional[np.ndarray]]) -> Optional[np.ndarray]:
    """The outputs' bad lanes (see the module doc); None if the op mixes lanes."""
    if not _one_shape_out(op) or op.blocks:
        return None
    shape = tuple(op.outputs[0].type.shape)
    none = np.zeros(shape, bool)
    if op.name == "select":
        pred = _values(inputs[0]) if inputs else None
        if pred is None or np.shape(pred) != shape:
            return None
        on_true, on_false = (none if m is None else m for m in masks[1:3])
        out = np.where(pred != 0, on_true, on_false)
        return out | masks[0] if masks[0] is not None else out
    if op.name in ELEMENTWISE:
        if any(tuple(v.type.shape) != shape for v in op.inputs):
            return None
        if op.name in ("mul", "mul_trunc", "and") and len(masks) == 2:
            # a factor of exactly 0 makes the lane 0 whatever the other holds (a ladder
            # that multiplies every rung by a 0/1 choice, then sums them)
            a, b = (_values(x) for x in inputs[:2])
            if a is not None and b is not None and np.shape(a) == np.shape(b) == shape:
                keep = [m & (np.asarray(other) != 0) if m is not None else None
                        for m, other in ((masks[0], b), (masks[1], a))]
                return (none if keep[0] is None else keep[0]) | (none if keep[1] is None else keep[1])
        out = none
        for m in masks:
            if m is not None:
                out = out | m
        return out
    m = masks[0] if masks else None
    if op.name == "broadcast":
        if m is None:
            return none
        dims = tuple(op.attrs["dims"])
        keep = np.expand_dims(m, tuple(i for i in range(len(shape)) if i not in dims))
        return np.broadcast_to(keep, shape)
    if op.name == "reshape":
        return none if m is None else m.reshape(shape)
    if op.name == "transpose":
        return none if m is None else m.transpose(tuple(op.attrs["perm"]))
    return None


def reaching(op, inputs, masks: Sequence[Optional[np.ndarray]]) -> list:
    """Per input: whether any of its bad lanes reaches the output (a select's branch
    that is never picked on its bad lanes does not)."""
    reach = [m is not None and bool(m.any()) for m in masks]
    if op.name in ("mul", "mul_trunc", "and") and len(masks) == 2:
        out = follow(op, inputs, masks)
        if out is not None and not out.any():
            return [False, False]
    if op.name == "select" and len(masks) == 3:
        pred = _values(inputs[0]) if inputs else None
        if pred is not None and np.shape(pred) == tuple(op.outputs[0].type.shape):
            picked = np.asarray(pred) != 0
            for i, side in ((1, picked), (2, ~picked)):
                if masks[i] is not None:
                    reach[i] = bool((masks[i] & side).any())
    return reach
