"""Lowering rules: calls that are inlined (jit/pjit, custom_jvp/vjp, checkpoint) and
control flow: scan/fori_loop -> `for`, while_loop -> `while` (public predicate only),
cond/switch -> `cond` on a public index, or both branches and a select on a secret one."""
from __future__ import annotations

from typing import List, Sequence

from ..ir.program import Block, Value
from ..ir.types import PUBLIC, SECRET, Type
from .context import CompileError, Lowerer, rule
from .rules_arith import select


@rule("pjit", "jit", "closed_call", "core_call")
def _call(L, eqn, *args):
    jaxpr = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
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


def _block(L: Lowerer, closed, param_types: Sequence[Type]):
    """Lower a closed jaxpr into a Block with fresh params of the given types."""
    sub = L.sub()
    sub.loc = L.loc
    params = [Value(L.names(), t) for t in param_types]
    outs = [_canonical(sub, v) for v in sub.inline(closed, params)]
    return Block(params, sub.ops, outs)


def _seal(L: Lowerer, v: Value, vis: str) -> Value:
    if vis == SECRET and not v.type.secret:
        return L.emit("to_secret", [v])
    return v


def _carry_fixpoint(L, n_fixed, fixed, carry, lower_body, carry_out_slice):
    """Lower a loop body until carry visibilities are stable: a carry the body makes
    secret must be secret from the first iteration on."""
    vis = [v.type.vis for v in carry]
    for _ in range(len(carry) + 1):
        types = [v.type for v in fixed] + [c.type.replace(vis=s) for c, s in zip(carry, vis)]
        block = lower_body(types)
        outs = block.results[carry_out_slice]
        new = [SECRET if (s == SECRET or o.type.secret) else PUBLIC for s, o in zip(vis, outs)]
        if new == vis:
            # yields must carry exactly the param types (seal public yields of secret carries)
            return block, vis
        vis = new
    raise CompileError("loop carry types do not settle")


def _seal_results(L, block: Block, start: int, vis: List[str]):
    sub = L.sub()
    sub.ops = block.ops
    for i, s in enumerate(vis):
        block.results[start + i] = _seal(sub, block.results[start + i], s)


@rule("scan")
def _scan(L, eqn, *args):
    p = eqn.params
    nc, nk, length = p["num_consts"], p["num_carry"], int(p["length"])
    consts, carry, xs = args[:nc], [_canonical(L, v) for v in args[nc:nc + nk]], args[nc + nk:]
    x_types = [x.type.replace(shape=x.type.shape[1:]) for x in xs]

    def body(types):
        return _block(L, p["jaxpr"], types + x_types)

    block, vis = _carry_fixpoint(L, nc, list(consts), carry, body, slice(0, nk))
    _seal_results(L, block, 0, vis)
    carry = [_seal(L, c, s) for c, s in zip(carry, vis)]
    y_types = [v.type.replace(shape=(length,) + v.type.shape) for v in block.results[nk:]]
    out_types = [v.type for v in block.results[:nk]] + y_types
    return L.emit_multi("for", [*consts, *carry, *xs], blocks=[block], out_types=out_types,
                        num_consts=nc, num_carry=nk, length=length, reverse=bool(p["reverse"]))


@rule("while")
def _while(L, eqn, *args):
    p = eqn.params
    cn, bn = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, carry = args[:cn], args[cn:cn + bn], [_canonical(L, v) for v in args[cn + bn:]]

    def body(types):
        return _block(L, p["body_jaxpr"], types)

    block, vis = _carry_fixpoint(L, bn, list(bconsts), carry, body, slice(0, None))
    _seal_results(L, block, 0, vis)
    carry = [_seal(L, c, s) for c, s in zip(carry, vis)]
    cond = _block(L, p["cond_jaxpr"], [v.type for v in cconsts] + [c.type for c in carry])
    if cond.results[0].type.secret:
        raise CompileError("while_loop with a secret predicate cannot run under MPC (the trip "
                           "count would reveal it); use a public bound, e.g. fori_loop")
    return L.emit_multi("while", [*cconsts, *bconsts, *carry], blocks=[cond, block],
                        out_types=[c.type for c in carry], cond_nconsts=cn, body_nconsts=bn)


@rule("cond")
def _cond(L, eqn, index, *ops):
    branches = eqn.params["branches"]
    if not index.type.secret:
        blocks = [_block(L, br, [v.type for v in ops]) for br in branches]
        vis = [SECRET if any(b.results[i].type.secret for b in blocks) else PUBLIC
               for i in range(len(blocks[0].results))]
        for b in blocks:
            _seal_results(L, b, 0, vis)
        return L.emit_multi("cond", [index, *ops], blocks=blocks,
                            out_types=[v.type for v in blocks[0].results])
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
