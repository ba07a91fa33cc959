"""Refuse, at compile time, ops whose approximation cannot work in the program's ring
at its fractional bits (compiler/ir/fields.py: OP_MAX_FXP), at the user's line."""
from __future__ import annotations

from ..ir import Program
from ..ir.fields import op_problem
from ..lower import CompileError


def check_ring_limits(program: Program) -> Program:
    for op in program.walk():
        if op.inputs and op.inputs[0].type.secret:
            msg = op_problem(op.name, program.field, program.fxp_bits)
            if msg:
                raise CompileError(f"{msg} (at {op.loc or 'no location'})")
    return program
