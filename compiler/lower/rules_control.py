"""Lowering rules: calls that are inlined (jit/pjit, custom_jvp/vjp, checkpoint)."""
from __future__ import annotations

from .context import rule


def _inline(L, closed, args):
    from .lower import lower_eqns
    return lower_eqns(L, closed.jaxpr, closed.consts, args)


@rule("pjit", "jit", "closed_call", "core_call")
def _call(L, eqn, *args):
    jaxpr = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
    return _inline(L, jaxpr, args)


@rule("custom_jvp_call")
def _custom_jvp(L, eqn, *args):
    return _inline(L, eqn.params["call_jaxpr"], args)


@rule("custom_vjp_call", "custom_vjp_call_jaxpr")
def _custom_vjp(L, eqn, *args):
    closed = eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
    return _inline(L, closed, args)


@rule("checkpoint", "remat", "remat2")
def _checkpoint(L, eqn, *args):
    from jax.extend.core import ClosedJaxpr
    jaxpr = eqn.params["jaxpr"]
    closed = jaxpr if hasattr(jaxpr, "consts") else ClosedJaxpr(jaxpr, ())
    return _inline(L, closed, args)
