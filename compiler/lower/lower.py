"""jaxpr -> IR: walk the equations, one registered rule per primitive."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from jax._src import source_info_util
from jax.extend import core as jcore

from ..ir.program import Program, Value
from ..ir.types import Type
from .context import RULES, CompileError, CompileOptions, Lowerer
from .input_formats import refine_inputs
from . import rules_arith, rules_shape, rules_reduce, rules_math, rules_control, rules_conv  # noqa: F401 (registers rules)
from . import rules_extra  # noqa: F401 (registers rules)


def _loc(eqn) -> str:
    try:
        return source_info_util.summarize(eqn.source_info)
    except Exception:  # pragma: no cover - jax internals vary
        return "<unknown>"


def lower_eqns(L: Lowerer, jaxpr, consts: Sequence, args: Sequence[Value]) -> List[Value]:
    """Lower an open jaxpr whose invars are bound to `args` and constvars to `consts`."""
    env = {}

    def read(atom):
        if isinstance(atom, jcore.Literal):
            return L.const(np.asarray(atom.val), L.dtype_of(atom.aval))
        return env[atom]

    for var, c in zip(jaxpr.constvars, consts):
        env[var] = c if isinstance(c, Value) else L.const(np.asarray(c), L.dtype_of(var.aval))
    for var, a in zip(jaxpr.invars, args):
        env[var] = a
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        loc = _loc(eqn)
        if loc and not loc.startswith("<unknown"):
            L.loc = loc          # nested calls without a location keep the caller's
        if name not in RULES:
            raise CompileError(f"unsupported primitive `{name}` at {L.loc}")
        ins = [read(a) for a in eqn.invars]
        try:
            outs = RULES[name](L, eqn, *ins)
        except CompileError as e:
            msg = str(e)
            raise CompileError(msg if " at " in msg else f"{msg} (primitive `{name}` at {L.loc})") from None
        if isinstance(outs, Value):
            outs = [outs]
        for var, v in zip(eqn.outvars, outs):
            env[var] = v
    return [read(v) for v in jaxpr.outvars]


def lower_jaxpr(closed_jaxpr, in_types: Sequence[Type], options: CompileOptions,
                name: str = "main", refine: Optional[Sequence[bool]] = None) -> Program:
    """Lower a ClosedJaxpr with the given (flat) parameter types to a Program.
    refine[i]: parameter i may get a finer input format (see input_formats)."""
    L = Lowerer(options)
    params = [Value(L.names(), t) for t in in_types]
    outs = lower_eqns(L, closed_jaxpr.jaxpr, closed_jaxpr.consts, params)
    L.loc = None
    # Results leave at their own scale (exp's is finer); callers decode by the type.
    program = Program(name, params, L.ops, outs, options.field, options.fxp_bits)
    if refine is not None:
        refine_inputs(program, refine, options.fxp_bits, options.fine_frac)
    return program
