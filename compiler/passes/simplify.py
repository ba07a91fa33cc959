"""Algebraic simplification: identities and chains of layout ops that collapse, and
truncations undone by a shift.

    lshift(trunc(x, t), s), the trunc read only here, s <= t -> trunc(x, t - s), or x
        The bits the truncation dropped are the ones the shift wants back (a mean
        squared at f bits, then lifted to a variance's f + 6): truncating less gives
        them exactly, for the same one truncation (or none).
"""
from __future__ import annotations

from ..ir.ops import infer
from .rewrite import run_on_program, uses


def _producers(p):
    return {id(o): op for op in p.walk() for o in op.outputs}


def simplify(p) -> bool:
    prod = _producers(p)
    n_uses = uses(p.ops, p.results)

    def fn(op, em):
        x = op.inputs[0] if op.inputs else None
        if op.name == "lshift" and x.type.dtype.is_fxp:
            inner = prod.get(id(x))
            if inner is not None and inner.name == "trunc" and n_uses.get(id(x)) == 1 \
                    and op.attrs["bits"] <= inner.attrs["bits"]:
                left = inner.attrs["bits"] - op.attrs["bits"]
                if left == 0:
                    return [inner.inputs[0]]
                v = em.emit(op, "trunc", [inner.inputs[0]], op.out.type, bits=left)
                prod[id(v)] = em.ops[-1]
                return [v]
        if op.name in ("reshape", "broadcast") and x.type == op.out.type:
            return [x]
        if op.name == "transpose" and list(op.attrs["perm"]) == sorted(op.attrs["perm"]):
            return [x]
        inner = prod.get(id(x)) if x is not None else None
        if op.name == "reshape" and inner is not None and inner.name == "reshape":
            v = em.emit(op, "reshape", [inner.inputs[0]], op.out.type, shape=op.attrs["shape"])
            prod[id(v)] = em.ops[-1]
            return [v]
        if op.name == "broadcast" and inner is not None and inner.name == "broadcast":
            # b2(b1(y)): y's axis i went to b1 axis d1[i], then to b2 axis d2[d1[i]].
            d1, d2 = inner.attrs["dims"], op.attrs["dims"]
            y = inner.inputs[0]
            dims = [d2[d] for d in d1]
            # only when the composite is a valid broadcast of y directly
            try:
                t = infer("broadcast", [y.type], {"shape": op.attrs["shape"], "dims": dims})[0]
            except Exception:
                return None
            v = em.emit(op, "broadcast", [y], t, shape=op.attrs["shape"], dims=dims)
            prod[id(v)] = em.ops[-1]
            return [v]
        return None

    return run_on_program(p, fn)
