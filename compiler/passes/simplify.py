"""Algebraic simplification of layout ops: identities and chains that collapse."""
from __future__ import annotations

from ..ir.ops import infer
from .rewrite import run_on_program


def _producers(p):
    return {id(o): op for op in p.walk() for o in op.outputs}


def simplify(p) -> bool:
    prod = _producers(p)

    def fn(op, em):
        x = op.inputs[0] if op.inputs else None
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
