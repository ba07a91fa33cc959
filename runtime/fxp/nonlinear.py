"""Fixed-point approximations of nonlinear functions: the registry the IR kernels use,
built from the one table of them (compiler/ir/nonlinear.py: op, implementation, domain
and documented error).

Every function takes (P, x, frac, options): x a secret Share holding round(v 2^frac) in
Z_2^k, options the runtime config of spu.jit(..., **config); it returns a Share at the
same scale. exp, log, log1p, sqrt and rsqrt also take out_frac, a different output
scale (the IR op's `frac` attribute: exp's result has 26 bits, and so may the input of
log / log1p / sqrt / rsqrt, see compiler/lower/input_formats.py). They are written once
over the kernel interface and the helpers of runtime/fxp, so every protocol runs them.

    module          what                                 method
    exp_log.py      exp, log, log1p                      (p(x/32))^32 with a guard, or 2^n 2^r;
                                                         normalise + polynomial
    reciprocal.py   reciprocal                           normalise + Goldschmidt
    roots.py        rsqrt, sqrt                          normalise (even exponent) + Goldschmidt
    activations.py  logistic (sigmoid), tanh, erf        sign/|x| bits + e^-|x| or piecewise polynomials
    trig.py         sin, cos                             reduction to turns + one polynomial
    helpers         bits.py (a2b, OR trees, positions), narrow.py (sign of a small value on
                    packed words), normalize.py, poly.py, batch.py

Accuracy at k = 64, f = 18 (the defaults): about one unit in the last place of the
output against float64 at the rounded input, for every input in each function's domain
(exp: 3.6e-6 relative; see the docstrings). Measured figures next to SPU's:
docs/precision.md, written by `spu-lite precision`.

Options (spu.jit keywords), with their defaults:
    exp_mode      "squaring" (default, 64-bit ring): (p(x/32))^32 with a guard that
                  zeroes x below the output resolution; -4e9 < x <= 16, 3.6e-6 relative.
                  "accurate" (default in a 32-bit ring): 2^n 2^r with n from the bits
                  of x; -4.7e10 < x < 22.18, 1e-8 relative, ~1.5x the time.
                  "taylor": (p(x/256))^256, x in [-600, 16], 2.5e-6 relative, no
                  comparison: wrong for masks like -1e4.
    sigmoid_mode  "accurate": 1 ulp everywhere.
                  "segmented": piecewise quartic, 2.9e-4 max error, 63% of the bytes.
"""
from __future__ import annotations

from typing import Callable, Dict

from spu_lite.compiler.ir.nonlinear import TABLE

from . import activations, exp_log, reciprocal, roots, trig

_MODULES = {"activations": activations, "exp_log": exp_log, "reciprocal": reciprocal,
            "roots": roots, "trig": trig}


def _implementation(path: str) -> Callable:
    module, name = path.split(".")
    return getattr(_MODULES[module], name)


FUNCTIONS: Dict[str, Callable] = {row.op: _implementation(row.fxp) for row in TABLE}
