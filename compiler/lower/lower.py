"""jaxpr -> IR: walk the equations, one registered rule per primitive."""
from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence

import numpy as np
from jax._src import source_info_util
from jax.extend import core as jcore

from ..ir.program import Program, Value
from ..ir.types import Type
from .context import RULES, CompileError, CompileOptions, Known, Lowerer
from .input_formats import refine_inputs
from .lost_constants import warn_lost_constants
from . import rules_arith, rules_shape, rules_reduce, rules_math, rules_control  # noqa: F401
from . import rules_conv  # noqa: F401 (registers rules)
from . import rules_arctan, rules_extra, rules_linalg  # noqa: F401 (registers rules)
from . import rules_int, rules_prod, rules_scatter  # noqa: F401 (registers rules)
from . import wide


_FRONTEND = os.path.join("spu_lite", "frontend.py")   # the wrapper that calls the user's fn
_RULES_DIR = os.path.dirname(os.path.abspath(__file__))   # rule bodies traced from jnp code


def _loc(eqn) -> str:
    """The user's line of an equation; "<unknown>" when JAX saw none, only the
    frontend's call (a library function such as jnp.arctan passed straight to spu.jit),
    or a line of a rule's own jnp body (rules_linalg.py): the caller's line stays."""
    try:
        loc = source_info_util.summarize(eqn.source_info)
    except Exception:  # pragma: no cover - jax internals vary
        return "<unknown>"
    path = loc.split(":", 1)[0]
    if path.endswith(_FRONTEND) or os.path.abspath(path).startswith(_RULES_DIR + os.sep):
        return "<unknown>"
    return loc


_UNKNOWN = object()

#: calls whose rule only inlines the body: an operand the IR cannot hold (a PRNG key)
#: that is known when compiling enters the body as that known value
_CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr", "checkpoint", "remat", "remat2", "scan")   # scan: unrolled




def _representable(aval) -> bool:
    dt = getattr(aval, "dtype", None)
    try:
        dt = np.dtype(dt)
    except TypeError:                        # PRNG key types and other extended dtypes
        return False
    return dt == np.bool_ or np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)


def _is_count(aval) -> bool:
    """A small integer or bool value: folded by JAX when its operands are known (step
    counts, the predicates made of them), so the rules see it as a constant."""
    dt = getattr(aval, "dtype", None)
    return _representable(aval) and not np.issubdtype(np.dtype(dt), np.floating) and \
        int(np.prod(aval.shape)) <= 64


def lower_eqns(L: Lowerer, jaxpr, consts: Sequence, args: Sequence[Value]) -> List[Value]:
    """Lower an open jaxpr whose invars are bound to `args` and constvars to `consts`.

    Compile-time constants: an equation that no rule covers (or whose operands are of a
    type the IR has no form for, like PRNG keys) but whose operands are all known when
    compiling -- literals, closed-over constants, results of such equations -- is
    evaluated by JAX here and becomes a public constant (e.g. a dropout mask drawn
    from a fixed key, `jnp.arange(n) % 2`). Anything that depends on an input still
    needs a rule."""
    env, known, producer, unknown = {}, {}, {}, set()

    def read(atom):
        if isinstance(atom, jcore.Literal):
            return L.const(np.asarray(atom.val), L.dtype_of(atom.aval))
        if atom not in env and atom in known:
            env[atom] = L.const(np.asarray(known[atom]), L.dtype_of(atom.aval))
        return env[atom]

    def concrete(atom):
        """The value of atom if it is known at compile time, else _UNKNOWN."""
        if isinstance(atom, jcore.Literal):
            return atom.val
        if atom in known:
            return known[atom]
        eqn = producer.get(atom)
        if eqn is None or atom in unknown:
            return _UNKNOWN
        vals = [concrete(a) for a in eqn.invars]
        if any(v is _UNKNOWN for v in vals):
            unknown.add(atom)            # asked again for every count-like equation
            return _UNKNOWN
        outs = eqn.primitive.bind(*vals, **eqn.params)
        for var, o in zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs]):
            known[var] = o
        return known[atom]

    for var, c in zip(jaxpr.constvars, consts):
        if isinstance(c, Value):
            env[var] = c
        elif _representable(var.aval):
            known[var] = c
            env[var] = L.const(np.asarray(c), L.dtype_of(var.aval))
        else:
            known[var] = c                   # e.g. a PRNG key closed over
    for var, a in zip(jaxpr.invars, args):
        if isinstance(a, Known):
            known[var] = a.value
            continue
        env[var] = a
        c = L.const_value(a) if _is_count(var.aval) else None
        if c is not None:       # an inlined body's constant int operand (a step count)
            known[var] = np.broadcast_to(c, var.aval.shape).astype(var.aval.dtype)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        loc = _loc(eqn)
        if loc and not loc.startswith("<unknown"):
            L.loc = loc          # nested calls without a location keep the caller's
        for var in eqn.outvars:
            producer[var] = eqn
        if name not in RULES or not all(_representable(v.aval) for v in eqn.invars):
            vals = [concrete(a) for a in eqn.invars]
            if all(v is not _UNKNOWN for v in vals):
                for var in eqn.outvars:      # evaluated now; emitted when read
                    concrete(var)
                continue
            if name in _CALLS and all(v is not _UNKNOWN or _representable(a.aval)
                                      for a, v in zip(eqn.invars, vals)):
                ins = [read(a) if _representable(a.aval) else Known(v) for a, v in zip(eqn.invars, vals)]
                for var, v in zip(eqn.outvars, RULES[name](L, eqn, *ins)):
                    if isinstance(v, Known):
                        known[var] = v.value
                    else:
                        env[var] = v
                continue
            hint = (" (random numbers under MPC: use a key fixed when compiling, or draw "
                    "them outside and pass them in)" if name.startswith("random_") else
                    "" if name not in RULES else " (an operand of a type the IR cannot hold, "
                    "e.g. a PRNG key, that depends on an input)")
            raise CompileError(f"unsupported primitive `{name}` at {L.loc}{hint}")
        if eqn.outvars and all(_is_count(v.aval) for v in eqn.outvars) and \
                all(concrete(a) is not _UNKNOWN for a in eqn.invars):
            for var in eqn.outvars:      # integer and bool arithmetic of constants (counts)
                concrete(var)
            continue
        ins = [read(a) for a in eqn.invars]
        L.known_value = lambda atom: (None if (v := concrete(atom)) is _UNKNOWN else np.asarray(v))
        try:
            outs = RULES[name](L, eqn, *ins)
        except CompileError as e:
            if all(concrete(a) is not _UNKNOWN for a in eqn.invars):
                for var in eqn.outvars:      # e.g. a jitted helper around an unsupported op
                    concrete(var)
                continue
            msg = str(e)
            located = (L.loc and L.loc in msg) or re.search(r"\S+:\d+:\d+", msg)
            raise CompileError(msg if located else f"{msg} (primitive `{name}` at {L.loc})") from None
        if isinstance(outs, Value):
            outs = [outs]
        for var, v in zip(eqn.outvars, outs):
            env[var] = v
    return [read(v) if isinstance(v, jcore.Literal) or _representable(v.aval) else _known_out(v, concrete)
            for v in jaxpr.outvars]


def _known_out(var, concrete):
    """A body's result the IR cannot hold (a key), as its value known when compiling."""
    v = concrete(var)
    if v is _UNKNOWN:
        raise CompileError("a PRNG key computed from an input leaves a jitted function; "
                           "keep keys fixed when compiling")
    return Known(v)


def lower_jaxpr(closed_jaxpr, in_types: Sequence[Type], options: CompileOptions,
                name: str = "main", refine: Optional[Sequence[bool]] = None) -> Program:
    """Lower a ClosedJaxpr with the given (flat) parameter types to a Program.
    refine[i]: parameter i may get a finer input format (see input_formats)."""
    L = Lowerer(options, lower_eqns=lower_eqns)
    L.loc = f"`{name}` (the function passed to spu.jit; no line of its own)"
    params = [Value(L.names(), t) for t in in_types]
    for p in params:     # optimizer state encoded at a state format (wide.state_frac)
        if p.type.secret and p.type.dtype.is_fxp and p.type.dtype.frac > options.fine_frac:
            wide.mark_state(L, p, p.type.dtype.frac)
    outs = lower_eqns(L, closed_jaxpr.jaxpr, closed_jaxpr.consts, params)
    L.loc = None
    # Results leave at their own scale (exp's is finer); callers decode by the type.
    program = Program(name, params, L.ops, outs, options.field, options.fxp_bits)
    warn_lost_constants(program)
    if refine is not None:
        refine_inputs(program, refine, options.fxp_bits, options.fine_frac)
    return program
