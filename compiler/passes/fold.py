"""Constant folding: public ops whose inputs are all constants become constants.

Values are folded in their natural numpy form (float64 for fxp, int64 for int,
bool for bool); the runtime encodes them once.
"""
from __future__ import annotations

import numpy as np

from .rewrite import run_on_program

_FOLD = {
    "neg": lambda x, a: -x,
    "add": lambda x, y, a: x + y,
    "sub": lambda x, y, a: x - y,
    "mul": lambda x, y, a: x * y,
    "reshape": lambda x, a: x.reshape(a["shape"]),
    "transpose": lambda x, a: x.transpose(a["perm"]),
    "slice": lambda x, a: x[tuple(slice(s, l, k) for s, l, k in zip(a["start"], a["limit"], a["strides"]))],
    "not": lambda x, a: ~x,
    "trunc": lambda x, a: x,
    "lshift": lambda x, a: x if np.issubdtype(x.dtype, np.floating) else x * (1 << a["bits"]),
    "convert": lambda x, a: x,   # int/bool -> fxp or int only (see _foldable)
}
_MAX_FOLDED = 1 << 16


def _bcast(x, a):
    shape = a["shape"]
    expanded = np.expand_dims(x, tuple(i for i in range(len(shape)) if i not in a["dims"])) \
        if x.ndim else x
    return np.broadcast_to(expanded, shape)


def fold_constants(p) -> bool:
    const = {}
    for op in p.walk():
        if op.name == "constant":
            const[id(op.out)] = op.attrs["value"]

    def fn(op, em):
        if op.name == "constant" or op.blocks or len(op.outputs) != 1:
            return None
        if not op.inputs or any(id(v) not in const for v in op.inputs):
            return None
        if op.name not in _FOLD and op.name != "broadcast":
            return None
        if op.name == "convert" and (op.inputs[0].type.dtype.is_fxp or op.out.type.dtype.is_bool):
            return None   # fxp -> int rounds and -> bool compares: left to the runtime
        if op.out.type.size > max(v.type.size for v in op.inputs) or op.out.type.size > _MAX_FOLDED:
            return None   # folding must not grow constants (broadcasts stay lazy views)
        args = [const[id(v)] for v in op.inputs]
        fold = _bcast if op.name == "broadcast" else _FOLD[op.name]
        natural = {"fxp": np.float64, "int": np.int64, "bool": np.bool_}[op.out.type.dtype.kind]
        val = np.array(fold(*args, op.attrs), dtype=natural).reshape(op.out.type.shape)  # 0-d stays 0-d
        v = em.emit(op, "constant", [], op.out.type, value=val, dtype=op.out.type.dtype)
        const[id(v)] = val
        return [v]

    return run_on_program(p, fn)
