"""Input formats: give a parameter more fractional bits when all its readers can use them.

An input is encoded by its owner, so its fixed-point format costs nothing to choose.
log, log1p, sqrt and rsqrt normalise their argument by its highest set bit, so they
take any input scale at no extra cost, and their error near small x is mostly the
rounding of x itself (d/dx log x = 1/x: at x = 0.01, 2^-19 of rounding is 1.9e-4 of
error). A parameter whose every reader is one of them is therefore encoded with
`CompileOptions.fine_frac` (26) fractional bits instead of fxp_bits; the readers still
return fxp_bits. Any other reader (a product, an addition, a program output) keeps the
parameter at fxp_bits, so nothing else changes. The caller says which parameters may
be refined (fresh inputs, not kept Secret handles whose scale is fixed).
Range: a 26-bit input must satisfy |x| < 2^36 = 2^(64 - 26 - 2) (checked at encoding,
like any input).
"""
from __future__ import annotations

from typing import Sequence

from ..ir.nonlinear import TABLE
from ..ir.program import Program

FINE_READERS = tuple(row.op for row in TABLE if row.any_input_scale)   # log, log1p, sqrt, rsqrt


def refine_inputs(program: Program, refine: Sequence[bool], fxp_bits: int, fine_frac: int) -> None:
    """In place: retype refinable fxp parameters read only by FINE_READERS."""
    if fine_frac <= fxp_bits:
        return
    readers = {}
    for op in program.walk():
        for v in op.inputs:
            readers.setdefault(id(v), []).append(op)
    results = {id(v) for v in program.results}
    for p, ok in zip(program.params, refine):
        dt = p.type.dtype
        ops = readers.get(id(p), [])
        if not ok or not dt.is_fxp or dt.frac != fxp_bits or id(p) in results or not ops:
            continue
        if all(op.name in FINE_READERS and op.inputs[0] is p for op in ops):
            p.type = p.type.replace(dtype=dt.with_frac(fine_frac))
            for op in ops:
                op.attrs["frac"] = fxp_bits          # the result stays at fxp_bits
