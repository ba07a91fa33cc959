"""Lowering rules: calls that are inlined (jit/pjit, custom_jvp/vjp, checkpoint) and
control flow: scan/fori_loop -> `for`, while_loop -> `while` (public predicate only),
cond/switch -> `cond` on a public index, or both branches and a select on a secret one."""
from __future__ import annotations

import warnings
from typing import List, Sequence

import jax.numpy as jnp
import numpy as np

from ..ir.program import Block, Value
from ..ir.types import PUBLIC, SECRET, Type
from . import wide
from .context import CompileError, Known, Lowerer, rule
from .rules_arith import select


@rule("pjit", "jit", "closed_call", "core_call")
def _call(L, eqn, *args):
    jaxpr = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
    if eqn.params.get("name") == "signbit" and len(args) == 1 and args[0].type.dtype.is_fxp:
        # jnp.signbit (and copysign) reads the float's bits (bitcast_convert_type); a
        # fixed-point value has no -0.0 or NaN, so its sign bit is x < 0
        return [L.emit("less", [args[0], L.const(0.0, args[0].type.dtype, args[0].type.shape)])]
    return L.inline(jaxpr, args)


@rule("custom_jvp_call")
def _custom_jvp(L, eqn, *args):
    return L.inline(eqn.params["call_jaxpr"], args)


@rule("custom_vjp_call", "custom_vjp_call_jaxpr")
def _custom_vjp(L, eqn, *args):
    closed = eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
    return L.inline(closed, args)


@rule("checkpoint", "remat", "remat2")
def _checkpoint(L, eqn, *args):
    from jax.extend.core import ClosedJaxpr
    jaxpr = eqn.params["jaxpr"]
    closed = jaxpr if hasattr(jaxpr, "consts") else ClosedJaxpr(jaxpr, ())
    return L.inline(closed, args)


# ---- regions ----------------------------------------------------------------------------

def _canonical(L: Lowerer, v: Value) -> Value:
    return L.to_frac(v, L.opt.fxp_bits) if v.type.dtype.is_fxp else v


def _lower_body(L: Lowerer, closed, param_types: Sequence[Type], states):
    """(sub-lowerer, fresh params, raw outputs) of a closed jaxpr; a param with a state
    format in `states` enters as a wide value (wide.py)."""
    sub = L.sub()
    sub.loc = L.loc
    params = [Value(L.names(), t) for t in param_types]
    for p, sf in zip(params, states):
        if sf is not None:
            wide.mark_state(sub, p, sf)
    return sub, params, sub.inline(closed, params)


def _block(L: Lowerer, closed, param_types: Sequence[Type], states=None, wanted=None):
    """Lower a closed jaxpr into a Block with fresh params of the given types.
    states[i]: param i (a loop carry) holds a moment at that state format (wide.py), and
    its yield comes back to it; wanted (a dict) collects carries a moment wanted wide."""
    states = list(states or []) + [None] * (len(param_types) - len(states or []))
    sub, params, outs = _lower_body(L, closed, param_types, states)
    n_carry = 0 if wanted is None else wanted.get("n_carry", 0)
    first = wanted.get("first", 0) if wanted is not None else 0
    res = []
    for i, v in enumerate(outs):
        sf = states[first + i] if i < n_carry and first + i < len(states) else None
        res.append(sub.to_frac(v, sf) if sf is not None else _canonical(sub, v))
        if wanted is not None and i < n_carry and (
                id(v) not in sub.wide or sf is None or sub.wide[id(v)] > wide.bound_of_state(sf)):
            wanted.setdefault("narrow", set()).add(first + i)    # its yield is no moment
    if wanted is not None:
        for i, p in enumerate(params):
            if id(p) in sub.want_wide:
                wanted[i] = sub.want_wide[id(p)]
    return Block(params, sub.ops, res)


def _seal(L: Lowerer, v: Value, vis: str) -> Value:
    if vis == SECRET and not v.type.secret:
        return L.emit("to_secret", [v])
    return v


def _entry_state(L: Lowerer, v: Value):
    """A carry entering at a wide format keeps a state format (wide.py)."""
    if id(v) in L.wide and v.type.dtype.is_fxp:
        return wide.state_frac(wide.state_bound(L.wide[id(v)]), L.opt.fxp_bits)
    return None


def _carry_fixpoint(L, n_fixed, fixed, carry, lower_body, carry_out_slice, states):
    """Lower a loop body until carry visibilities and formats are stable: a carry the
    body makes secret must be secret from the first iteration on, and a carry the body
    averages as a moment (wide.moment) gets a state format on entry and exit. Warnings
    of the passes before the last are dropped."""
    vis = [v.type.vis for v in carry]
    banned = set()
    for _ in range(3 * len(carry) + 2):
        types = [v.type for v in fixed] + [
            c.type.replace(vis=s, dtype=c.type.dtype.with_frac(sf) if sf is not None else
                           c.type.dtype.with_frac(L.opt.fxp_bits) if c.type.dtype.is_fxp else c.type.dtype)
            for c, s, sf in zip(carry, vis, states)]
        wanted = {}
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            block = lower_body(types, [None] * n_fixed + list(states), wanted)
        outs = block.results[carry_out_slice]
        new = [SECRET if (s == SECRET or o.type.secret) else PUBLIC for s, o in zip(vis, outs)]
        narrow = wanted.get("narrow", set())
        # a state format only where the body's yield is a wide value (a moment): a carry
        # that entered wide but is not averaged goes back to f bits, for good
        banned.update(i for i, sf in enumerate(states) if sf is not None and n_fixed + i in narrow)
        new_states = [None if i in banned else sf if sf is not None else
                      (wide.state_frac(wanted[n_fixed + i], L.opt.fxp_bits)
                       if n_fixed + i in wanted and carry[i].type.dtype.is_fxp else None)
                      for i, sf in enumerate(states)]
        if new == vis and new_states == states:
            for w in seen:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            # yields must carry exactly the param types (seal public yields of secret carries)
            return block, vis, states
        vis, states = new, new_states
    raise CompileError("loop carry types do not settle")


def _enter(L: Lowerer, v: Value, sf):
    return L.to_frac(v, sf) if sf is not None else _canonical(L, v)


def _mark_outs(L: Lowerer, outs, states):
    for o, sf in zip(outs, states):
        if sf is not None:
            wide.mark_state(L, o, sf)
    return outs


def _seal_results(L, block: Block, start: int, vis: List[str]):
    sub = L.sub()
    sub.ops = block.ops
    for i, s in enumerate(vis):
        block.results[start + i] = _seal(sub, block.results[start + i], s)


#: the most steps of a scan over known keys that are unrolled (_unrolled)
MAX_UNROLLED = 512


def _unrolled(L, eqn, args):
    """A scan with operands the IR cannot hold, known when compiling (PRNG keys: an
    nnx.scan over layers with Dropout, a fori_loop that splits a key each step) runs
    unrolled: each step's body inlined with its slice of the known values, so its draws
    are constants. Cost: the body's ops `length` times in the program, not one loop."""
    p = eqn.params
    nc, nk, n = p["num_consts"], p["num_carry"], int(p["length"])
    if n > MAX_UNROLLED:
        raise CompileError(f"a loop over PRNG keys fixed when compiling runs unrolled, and "
                           f"{n} steps are more than {MAX_UNROLLED}: draw the random numbers "
                           f"outside spu.jit and pass them in")
    consts, carry, xs = list(args[:nc]), list(args[nc:nc + nk]), list(args[nc + nk:])

    def row(x, i):
        if isinstance(x, Known):
            return Known(x.value[i])
        known = L.const_value(x)            # a constant stays one (nnx's rng counts)
        if known is not None:
            return L.const(np.broadcast_to(known, x.type.shape)[i], x.type.dtype)
        shape = list(x.type.shape)
        cut = L.emit("slice", [x], start=[i] + [0] * (len(shape) - 1), limit=[i + 1] + shape[1:],
                     strides=[1] * len(shape))
        return L.emit("reshape", [cut], shape=shape[1:])
    steps = []
    for i in (reversed(range(n)) if p["reverse"] else range(n)):
        outs = L.inline(p["jaxpr"], consts + carry + [row(x, i) for x in xs])
        carry = list(outs[:nk])
        steps.append(outs[nk:])
    steps = steps[::-1] if p["reverse"] else steps
    ys = []
    for col in zip(*steps):
        if isinstance(col[0], Known):
            ys.append(Known(jnp.stack([c.value for c in col])))
            continue
        col = [L.as_fxp(c) for c in col] if any(c.type.dtype.is_fxp for c in col) else list(col)
        frac = L.common_frac(col) if col[0].type.dtype.is_fxp else None
        rows = [L.emit("reshape", [L.to_frac(c, frac) if frac is not None else c],
                       shape=[1] + list(c.type.shape)) for c in col]
        ys.append(rows[0] if len(rows) == 1 else L.emit("concat", rows, axis=0))
    return carry + ys


@rule("scan")
def _scan(L, eqn, *args):
    if any(isinstance(a, Known) for a in args):
        return _unrolled(L, eqn, args)
    p = eqn.params
    nc, nk, length = p["num_consts"], p["num_carry"], int(p["length"])
    consts, raw, xs = args[:nc], args[nc:nc + nk], args[nc + nk:]
    states = [_entry_state(L, v) for v in raw]
    carry = [_enter(L, v, sf) for v, sf in zip(raw, states)]
    x_types = [x.type.replace(shape=x.type.shape[1:]) for x in xs]

    def body(types, sts, wanted):
        wanted.update(n_carry=nk, first=nc)
        return _block(L, p["jaxpr"], types + x_types, sts, wanted)

    block, vis, states = _carry_fixpoint(L, nc, list(consts), carry, body, slice(0, nk), states)
    _seal_results(L, block, 0, vis)
    carry = [_seal(L, _enter(L, v, sf), s) for v, s, sf in zip(raw, vis, states)]
    y_types = [v.type.replace(shape=(length,) + v.type.shape) for v in block.results[nk:]]
    out_types = [v.type for v in block.results[:nk]] + y_types
    outs = L.emit_multi("for", [*consts, *carry, *xs], blocks=[block], out_types=out_types,
                        num_consts=nc, num_carry=nk, length=length, reverse=bool(p["reverse"]))
    _mark_outs(L, outs[:nk], states)
    return outs


@rule("while")
def _while(L, eqn, *args):
    p = eqn.params
    cn, bn = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, raw = args[:cn], args[cn:cn + bn], args[cn + bn:]
    states = [_entry_state(L, v) for v in raw]
    carry = [_enter(L, v, sf) for v, sf in zip(raw, states)]

    def body(types, sts, wanted):
        wanted.update(n_carry=len(raw), first=bn)
        return _block(L, p["body_jaxpr"], types, sts, wanted)

    block, vis, states = _carry_fixpoint(L, bn, list(bconsts), carry, body, slice(0, None), states)
    _seal_results(L, block, 0, vis)
    carry = [_seal(L, _enter(L, v, sf), s) for v, s, sf in zip(raw, vis, states)]
    cond = _block(L, p["cond_jaxpr"], [v.type for v in cconsts] + [c.type for c in carry],
                  [None] * cn + list(states))
    if cond.results[0].type.secret:
        raise CompileError("while_loop with a secret predicate cannot run under MPC (the trip "
                           "count would reveal it); use a public bound, e.g. fori_loop")
    outs = L.emit_multi("while", [*cconsts, *bconsts, *carry], blocks=[cond, block],
                        out_types=[c.type for c in carry], cond_nconsts=cn, body_nconsts=bn)
    return _mark_outs(L, outs, states)


def _public_branches(L: Lowerer, branches, ops):
    """The branches of a cond on a public index, as Blocks, and each result's state
    format. An operand at a state format (an optimizer moment, wide.py) enters every
    branch as wide; a result that every branch yields wide leaves at the state format
    of the largest bound, any other at f bits. (optax.MultiSteps updates its inner
    Adam in such a cond: without this its moments left at 18 bits.)"""
    states = [_entry_state(L, v) for v in ops]
    lowered = [_lower_body(L, br, [v.type for v in ops], states) for br in branches]
    out_states = []
    for i in range(len(lowered[0][2])):
        bounds = [sub.wide.get(id(outs[i])) for sub, _, outs in lowered]
        fxp = all(outs[i].type.dtype.is_fxp for _, _, outs in lowered)
        out_states.append(wide.state_frac(wide.state_bound(max(bounds)), L.opt.fxp_bits)
                          if fxp and None not in bounds else None)
    blocks = [Block(params, sub.ops, [sub.to_frac(v, sf) if sf is not None else _canonical(sub, v)
                                      for v, sf in zip(outs, out_states)])
              for sub, params, outs in lowered]
    return blocks, out_states


@rule("cond")
def _cond(L, eqn, index, *ops):
    branches = eqn.params["branches"]
    known = L.known_value(eqn.invars[0])
    if known is not None and np.ndim(known) == 0:
        # an index fixed in the program (optax.MultiSteps' mini_step in a Python loop of
        # steps): that branch, inlined as straight-line code, where moments are seen
        return L.inline(branches[int(np.clip(known, 0, len(branches) - 1))], ops)
    if not index.type.secret:
        blocks, out_states = _public_branches(L, branches, ops)
        vis = [SECRET if any(b.results[i].type.secret for b in blocks) else PUBLIC
               for i in range(len(blocks[0].results))]
        for b in blocks:
            _seal_results(L, b, 0, vis)
        outs = L.emit_multi("cond", [index, *ops], blocks=blocks,
                            out_types=[v.type for v in blocks[0].results])
        return _mark_outs(L, outs, out_states)
    # secret predicate: evaluate every branch, then select (no branch is skipped)
    outs = [[_canonical(L, v) for v in L.inline(br, ops)] for br in branches]
    result = outs[0]
    for i, branch_outs in enumerate(outs[1:], start=1):
        if index.type.dtype.is_bool:
            hit = index
        else:
            hit = L.emit("eq", L.same_shape(index, L.const(i, index.type.dtype)))
        result = [select(L, L.broadcast_to(hit, b.type.shape), b, r) for b, r in zip(branch_outs, result)]
    return result
