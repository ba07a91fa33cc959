"""Kernels: nonlinear functions. Public inputs are evaluated in float64 and
re-encoded; secret inputs use the fixed-point approximations of runtime/fxp/nonlinear."""
from __future__ import annotations

import math

import numpy as np

from ..fxp import basic as B
from ..fxp import nonlinear as N
from .registry import kernel

_PLAIN = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "reciprocal": lambda x: 1.0 / x,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "tanh": np.tanh,
    "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "erf": np.vectorize(math.erf, otypes=[np.float64]),
}


def _nonlinear(name):
    def run(K, op, x):
        fi, fo = op.inputs[0].type.dtype.frac, op.out.type.dtype.frac
        if not B.is_secret(x):
            with np.errstate(all="ignore"):
                v = _PLAIN[name](K.ring.decode(x, fi))
            lim = K.ring.max_abs_real(fo) * 0.5
            return K.ring.encode(np.clip(np.nan_to_num(v, nan=0.0, posinf=lim, neginf=-lim), -lim, lim), fo)
        if fo != fi:      # exp's finer result, log/roots of a finer input (compiler rules_math)
            return N.FUNCTIONS[name](K.P, x, fi, K.options, out_frac=fo)
        return N.FUNCTIONS[name](K.P, x, fi, K.options)
    return run


for _name in _PLAIN:
    kernel(_name)(_nonlinear(_name))
