"""Kernels: nonlinear functions, one per row of compiler/ir/nonlinear.py. Public inputs
are evaluated in float64 (the row's `plain`) and re-encoded; secret inputs use the
fixed-point approximations of runtime/fxp/nonlinear."""
from __future__ import annotations

import numpy as np

from spu_lite.compiler.ir.nonlinear import TABLE

from ..fxp import basic as B
from ..fxp import nonlinear as N
from ..fxp.reciprocal import reciprocal_parts, reciprocal_parts_public
from .registry import kernel


def _nonlinear(row):
    name = row.op

    def run(K, op, x):
        fi, fo = op.inputs[0].type.dtype.frac, op.out.type.dtype.frac
        if not B.is_secret(x):
            with np.errstate(all="ignore"):
                v = row.plain(K.ring.decode(x, fi))
            lim = K.ring.max_abs_real(fo) * 0.5
            return K.ring.encode(np.clip(np.nan_to_num(v, nan=0.0, posinf=lim, neginf=-lim), -lim, lim), fo)
        if fo != fi:      # exp's finer result, log/roots of a finer input (compiler rules_math)
            return N.FUNCTIONS[name](K.P, x, fi, K.options, out_frac=fo)
        return N.FUNCTIONS[name](K.P, x, fi, K.options)
    return run


for _row in TABLE:
    kernel(_row.op)(_nonlinear(_row))


@kernel("recip_parts")
def _recip_parts(K, op, x):
    """(r, s) with a / x = trunc(trunc(a r, f) s, f + 2) (runtime/fxp/reciprocal.py)."""
    frac = op.inputs[0].type.dtype.frac
    if not B.is_secret(x):
        return list(reciprocal_parts_public(K.ring, x, frac))
    return list(reciprocal_parts(K.P, x, frac, K.options))
