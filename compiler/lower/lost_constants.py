"""A float constant of the user's program that its fixed-point format cannot hold.

Every constant is encoded as round(c 2^frac) at the format of the op that reads it
(docs/fixed-point.md, rule 2): a product keeps a small constant's bits (it is encoded at
f + e bits), but a value on its own -- an initial state (optax.contrib.prodigy's
d0 = 1e-6, dadapt_adamw's), a `where` branch, a returned constant -- is encoded at f
bits, where 1e-6 is 0.26 ulp and reads 0. Nothing fails; the program computes with 0
(prodigy's steps came out -1 where float JAX's were -3e-6, dadapt_adamw divided 0 by 0).
This check finds such constants when compiling and warns (LostConstantWarning, a
FixedPointWarning) with the constant's line.

Lost: a nonzero element whose encoding is more than 25% off (below ~1.6 ulps; 1e-6,
1e-8 at 18 bits). Not reported, because the rounding cannot matter there:
  - a positive constant added to or subtracted from a value (eps in `log(p + eps)`,
    `x / (norm + eps)`, `var + 1e-6`, jnp.finfo(float32).eps, ...),
  - a threshold of a comparison (`x > 1e-7`) and the bound of a clamp
    (`jnp.maximum(x, 1e-12)`, `jnp.clip(p, eps, 1 - eps)`: a select whose predicate
    compares with the same constant).
The constant is followed through the ops that only move it (broadcast, reshape, ...).
"""
from __future__ import annotations

import warnings
from typing import Dict, List

import numpy as np

from .errors import FixedPointWarning

_MOVES = ("broadcast", "reshape", "transpose", "slice", "rev", "to_secret")
_HARMLESS_ADD = ("add", "sub")
_COMPARE = ("less", "eq")


class LostConstantWarning(FixedPointWarning):
    """A nonzero float constant of the program reads (almost) 0 at its fixed-point format.
    Carries what spu.check reports: loc (the constant's line), value, reads (what its
    encoding reads), frac and use (the first op that reads it, or "returned")."""

    def __init__(self, message: str, loc: str = "", value: float = 0.0, reads: float = 0.0,
                 frac: int = 0, use: str = ""):
        super().__init__(message)
        self.loc, self.value, self.reads, self.frac, self.use = loc, value, reads, frac, use


def _lost(value: np.ndarray, frac: int) -> np.ndarray:
    """Finite nonzero values whose rounding at frac bits moves them by over a quarter
    (inf and nan are encoded apart: not lost)."""
    scaled = np.asarray(value, np.float64) * 2.0 ** frac
    finite = np.isfinite(scaled)
    scaled = np.where(finite, scaled, 0.0)
    return finite & (scaled != 0) & (np.abs(np.round(scaled) - scaled) > 0.25 * np.abs(scaled))


def _uses(program) -> Dict[int, List]:
    uses: Dict[int, List] = {}
    for op in program.walk():
        for v in op.inputs:
            uses.setdefault(id(v), []).append(op)
        for b in op.blocks:
            for v in b.results:
                uses.setdefault(id(v), []).append(None)      # yielded: a value on its own
    return uses             # a constant the program returns is returned exactly (frontend)


def _block_params(op, k: int) -> List:
    """The block parameters that operand k of a loop or branch op becomes."""
    a, blocks = op.attrs, op.blocks
    if op.name == "for":
        return [blocks[0].params[k]]
    if op.name == "while":
        cn, bn = a["cond_nconsts"], a["body_nconsts"]
        if k < cn:
            return [blocks[0].params[k]]
        if k < cn + bn:
            return [blocks[1].params[k - cn]]
        return [blocks[0].params[k - bn], blocks[1].params[k - cn]]
    if op.name == "cond" and k > 0:
        return [b.params[k - 1] for b in blocks]
    return []


def _readers(uses, v) -> List:
    """The ops reading v, through ops that only move it and into the blocks of loops and
    branches (None: v leaves a block)."""
    out, todo, seen = [], [v], set()
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        for op in uses.get(id(w), []):
            if op is not None and op.name in _MOVES:
                todo.append(op.out)
            elif op is not None and op.blocks:
                params = [p for k, x in enumerate(op.inputs) if x is w for p in _block_params(op, k)]
                todo.extend(params)
                if not params:
                    out.append(op)
            else:
                out.append(op)
    return out


def _harmless(op, producer, constants, positive: bool) -> bool:
    if op is None:
        return False
    if op.name in _COMPARE:
        return True
    if op.name in _HARMLESS_ADD:
        return positive
    if op.name == "select":         # a clamp: the predicate compares with the constant
        test = producer.get(id(op.inputs[0]))
        mine = {constants.get(id(v)) for v in op.inputs[1:]} - {None}
        return test is not None and test.name in _COMPARE and \
            any(constants.get(id(v)) in mine for v in test.inputs)
    return False


def warn_lost_constants(program) -> None:
    """Warn once per source line about float constants their format reads as (about) 0
    where the value itself is used."""
    uses = _uses(program)
    producer, constants, lost_ops = {}, {}, []     # constants: value id -> its value's key
    for op in program.walk():
        for v in op.outputs:
            producer[id(v)] = op
        if op.name == "constant" and op.attrs["dtype"].is_fxp:
            value = np.unique(np.asarray(op.attrs["value"], np.float64))
            constants[id(op.out)] = value.tobytes() if value.size == 1 else id(op.out)
            if np.any(_lost(op.attrs["value"], op.attrs["dtype"].frac)):
                lost_ops.append(op)
        elif op.name in _MOVES and id(op.inputs[0]) in constants:
            constants[id(op.out)] = constants[id(op.inputs[0])]
    reported = set()
    for op in lost_ops:
        value, frac = np.asarray(op.attrs["value"], np.float64), op.attrs["dtype"].frac
        c = float(value[_lost(value, frac)].flat[0])
        bad = [r for r in _readers(uses, op.out)
               if not _harmless(r, producer, constants, bool(np.all(value >= 0)))]
        if not bad or op.loc in reported:
            continue
        reported.add(op.loc)
        use = bad[0].name if bad[0] is not None else "returned"
        reads = float(np.round(c * 2.0 ** frac) / 2.0 ** frac)
        warnings.warn(LostConstantWarning(
            f"{op.loc or '<unknown line>'}: the constant {c:.3g} reads {reads:.3g} at {frac} "
            f"fractional bits (one ulp is {2.0 ** -frac:.2g}) where its value is used "
            f"({'returned' if bad[0] is None else f'by `{use}`'}): scale it (work in units "
            f"where it is >= 1e-4) or compile with more fxp_bits (docs/fixed-point.md)",
            loc=op.loc or "", value=c, reads=reads, frac=frac, use=use), stacklevel=2)
